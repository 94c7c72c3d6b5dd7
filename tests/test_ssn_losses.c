/* kernels/cpu/ssn_losses: each loss against a double-precision reference
 * written here from spec §8 on random rows (several sizes, weights 0, 1 and
 * fractional, background label C), each gradient against central finite
 * differences of that reference and against the closed forms; hand values
 * (logits 0, the kernel's FLT_MIN clamp, the FLT_EPSILON in the normaliser),
 * ignored rows, determinism. */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/cpu/ssn_losses.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static float uni(float a, float b)
{
    return a + (b - a) * (float)((double)(rnd() >> 11) / 9007199254740992.0);
}

/* ---- a batch of random rows -------------------------------------------------- */

typedef struct batch {
    int64_t R;
    int C;
    float *cls, *bbox, *dir;   /* predictions */
    l3d_ssn_targets t;
} batch;

static float weight(void)
{
    uint64_t k = rnd() % 4;
    return k == 0 ? 0.0f : k == 3 ? uni(0.2f, 2.0f) : 1.0f;
}

static void batch_make(batch *b, int64_t R, int C)
{
    b->R = R;
    b->C = C;
    b->cls = malloc((size_t)R * C * 4);
    b->bbox = malloc((size_t)R * 28);
    b->dir = malloc((size_t)R * 8);
    b->t.labels = malloc((size_t)R * 4);
    b->t.label_weights = malloc((size_t)R * 4);
    b->t.bbox_targets = malloc((size_t)R * 28);
    b->t.bbox_weights = malloc((size_t)R * 4);
    b->t.dir_targets = malloc((size_t)R * 4);
    b->t.dir_weights = malloc((size_t)R * 4);
    assert_non_null(b->t.dir_weights);
    for (int64_t n = 0; n < R; n++) {
        for (int c = 0; c < C; c++)
            b->cls[n * C + c] = uni(-6, 6);
        b->t.labels[n] = (int32_t)(rnd() % (uint64_t)(C + 1));   /* C: background */
        b->t.label_weights[n] = weight();
        for (int j = 0; j < 7; j++) {
            b->t.bbox_targets[7 * n + j] = uni(-1, 1);
            /* half the rows within beta of the target (the quadratic part) */
            float d = (rnd() & 1) ? uni(-0.1f, 0.1f) : uni(-1, 1);
            b->bbox[7 * n + j] = b->t.bbox_targets[7 * n + j] + d;
        }
        b->t.bbox_targets[7 * n + 6] = uni(-3.1f, 3.1f);
        b->bbox[7 * n + 6] = uni(-3.1f, 3.1f);
        b->t.bbox_weights[n] = weight();
        b->dir[2 * n] = uni(-4, 4);
        b->dir[2 * n + 1] = uni(-4, 4);
        b->t.dir_targets[n] = (int32_t)(rnd() & 1);
        b->t.dir_weights[n] = weight();
    }
}

static void batch_free(batch *b)
{
    free(b->cls);
    free(b->bbox);
    free(b->dir);
    free(b->t.labels);
    free(b->t.label_weights);
    free(b->t.bbox_targets);
    free(b->t.bbox_weights);
    free(b->t.dir_targets);
    free(b->t.dir_weights);
}

/* ---- double references (spec §8), over double predictions ---------------------- */

static double D_of(double ntp)
{
    return ntp + FLT_EPSILON;
}

static double ref_focal_elem(double x, int pos)
{
    double p = 1 / (1 + exp(-x));
    return pos ? -0.25 * (1 - p) * (1 - p) * log(p) : -0.75 * p * p * log(1 - p);
}

static double ref_focal(const double *x, const batch *b, double ntp)
{
    double s = 0;
    for (int64_t n = 0; n < b->R; n++)
        for (int c = 0; c < b->C; c++)
            s += b->t.label_weights[n] * ref_focal_elem(x[n * b->C + c], b->t.labels[n] == c);
    return s / D_of(ntp);
}

static double ref_sl1(const double *p, const batch *b, double ntp)
{
    const double beta = 1.0 / 9;
    double s = 0;
    for (int64_t n = 0; n < b->R; n++)
        for (int j = 0; j < 7; j++) {
            double t = b->t.bbox_targets[7 * n + j], q = p[7 * n + j], u = q, v = t;
            if (j == 6) {
                u = sin(q) * cos(t);
                v = cos(q) * sin(t);
            }
            double e = fabs(u - v);
            s += b->t.bbox_weights[n] * (e < beta ? 0.5 * e * e / beta : e - 0.5 * beta);
        }
    return s / D_of(ntp);
}

static double ref_dir(const double *z, const batch *b, double ntp)
{
    double s = 0;
    for (int64_t n = 0; n < b->R; n++) {
        double m = fmax(z[2 * n], z[2 * n + 1]);
        double lse = m + log(exp(z[2 * n] - m) + exp(z[2 * n + 1] - m));
        s += b->t.dir_weights[n] * (lse - z[2 * n + b->t.dir_targets[n]]);
    }
    return 0.2 * s / D_of(ntp);
}

typedef double (*ref_fn)(const double *, const batch *, double);

static double *to_double(const float *x, int64_t n)
{
    double *d = malloc((size_t)n * sizeof(double));
    assert_non_null(d);
    for (int64_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

/* Central differences of the reference against the kernel's gradient g [n]. */
static void check_fd(ref_fn f, const float *x, int64_t n, const batch *b, double ntp,
                     const float *g, const char *what)
{
    double *d = to_double(x, n);
    const double h = 1e-5;
    for (int64_t i = 0; i < n; i++) {
        double keep = d[i];
        d[i] = keep + h;
        double up = f(d, b, ntp);
        d[i] = keep - h;
        double dn = f(d, b, ntp);
        d[i] = keep;
        double fd = (up - dn) / (2 * h);
        if (fabs(fd - g[i]) > 2e-5 * fabs(fd) + 2e-6 / D_of(ntp))
            fail_msg("%s: d/dx[%lld] = %.9g, finite differences %.9g", what, (long long)i, g[i], fd);
    }
    free(d);
}

static void check_close_abs(double got, double want, double rtol, double atol,
                            const char *what)
{
    if (!(fabs(got - want) <= rtol * fabs(want) + atol))
        fail_msg("%s: %.12g, reference %.12g", what, got, want);
}

static void check_close(double got, double want, double rtol, const char *what)
{
    if (!(fabs(got - want) <= rtol * fabs(want) + 1e-12))
        fail_msg("%s: %.12g, reference %.12g", what, got, want);
}

/* ---- random batches ------------------------------------------------------------ */

static void test_forward_vs_reference(void **state)
{
    (void)state;
    const int64_t sizes[] = {1, 7, 64, 1000};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        batch b;
        batch_make(&b, sizes[s], 9);
        double ntp = (double)(1 + rnd() % 50);
        double *x = to_double(b.cls, b.R * 9), *p = to_double(b.bbox, b.R * 7),
               *z = to_double(b.dir, b.R * 2);
        l3d_ssn_loss l = l3d_ssn_loss_forward(b.cls, b.bbox, b.dir, b.R, 9, &b.t, ntp);
        check_close(l.cls, ref_focal(x, &b, ntp), 1e-5, "focal");
        check_close(l.bbox, ref_sl1(p, &b, ntp), 1e-5, "smooth l1");
        check_close(l.dir, ref_dir(z, &b, ntp), 1e-5, "direction");
        check_close(l.total, l.cls + l.bbox + l.dir, 1e-15, "total");
        assert_true(l.cls == l3d_focal_loss_forward(b.cls, b.R, 9, &b.t, ntp));
        assert_true(l.bbox == l3d_smooth_l1_forward(b.bbox, b.R, &b.t, ntp));
        assert_true(l.dir == l3d_dir_loss_forward(b.dir, b.R, &b.t, ntp));
        free(x);
        free(p);
        free(z);
        batch_free(&b);
    }
}

static void test_backward_vs_finite_differences(void **state)
{
    (void)state;
    const int64_t sizes[] = {1, 5, 40};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        for (int C = 3; C <= 9; C += 6) {
            batch b;
            batch_make(&b, sizes[s], C);
            double ntp = 3;
            float *dc = malloc((size_t)b.R * C * 4), *db = malloc((size_t)b.R * 28),
                  *dd = malloc((size_t)b.R * 8);
            /* poison: the backward must assign every element */
            memset(dc, 0xff, (size_t)b.R * C * 4);
            memset(db, 0xff, (size_t)b.R * 28);
            memset(dd, 0xff, (size_t)b.R * 8);
            l3d_ssn_loss_backward(b.cls, b.bbox, b.dir, b.R, C, &b.t, ntp, dc, db, dd);
            check_fd(ref_focal, b.cls, b.R * C, &b, ntp, dc, "focal");
            check_fd(ref_sl1, b.bbox, b.R * 7, &b, ntp, db, "smooth l1");
            check_fd(ref_dir, b.dir, b.R * 2, &b, ntp, dd, "direction");
            free(dc);
            free(db);
            free(dd);
            batch_free(&b);
        }
    }
}

/* The closed forms of spec §8, in double, against the kernel's gradients. */
static void test_backward_closed_forms(void **state)
{
    (void)state;
    batch b;
    batch_make(&b, 500, 9);
    double ntp = 17, D = D_of(ntp);
    float *dc = malloc((size_t)b.R * 36), *db = malloc((size_t)b.R * 28), *dd = malloc((size_t)b.R * 8);
    l3d_focal_loss_backward(b.cls, b.R, 9, &b.t, ntp, dc);
    l3d_smooth_l1_backward(b.bbox, b.R, &b.t, ntp, db);
    l3d_dir_loss_backward(b.dir, b.R, &b.t, ntp, dd);
    for (int64_t n = 0; n < b.R; n++) {
        double w = b.t.label_weights[n];
        for (int c = 0; c < 9; c++) {
            double p = 1 / (1 + exp(-(double)b.cls[n * 9 + c])), g;
            if (b.t.labels[n] == c)
                g = -0.25 * (1 - p) * (1 - p) * (1 - p - 2 * p * log(p));
            else
                g = -0.75 * p * p * (2 * (1 - p) * log(1 - p) - p);
            check_close(dc[n * 9 + c], g * w / D, 2e-5, "focal closed form");
        }
        /* column 6: g(u - v) cos(p6 - t6) */
        double p6 = b.bbox[7 * n + 6], t6 = b.t.bbox_targets[7 * n + 6];
        double d = sin(p6) * cos(t6) - cos(p6) * sin(t6);
        double gd = fabs(d) < 1.0 / 9 ? d * 9 : (d > 0 ? 1 : -1);
        check_close(db[7 * n + 6], gd * cos(p6 - t6) * b.t.bbox_weights[n] / D, 1e-4, "angle");
        double z0 = b.dir[2 * n], z1 = b.dir[2 * n + 1], s1 = 1 / (1 + exp(z0 - z1));
        double oh = b.t.dir_targets[n], sc = 0.2 * b.t.dir_weights[n] / D;
        /* softmax - 1 cancels in float32 near p = 1: absolute tolerance */
        check_close_abs(dd[2 * n + 1], sc * (s1 - oh), 2e-5, 1e-6 * sc, "dir");
        check_close_abs(dd[2 * n], sc * ((1 - s1) - (1 - oh)), 2e-5, 1e-6 * sc, "dir");
    }
    free(dc);
    free(db);
    free(dd);
    batch_free(&b);
}

/* ---- hand values ---------------------------------------------------------------- */

static void test_hand_values(void **state)
{
    (void)state;
    float cls[2 * 9] = {0};
    int32_t labels[2] = {9, 3}, dirt[2] = {0, 1};
    float lw[2] = {1, 1}, bt[14] = {0}, bw[2] = {0, 0}, dw[2] = {0, 0};
    l3d_ssn_targets t = {labels, lw, bt, bw, dirt, dw};
    /* logits 0, p = 1/2: a negative term is 0.75 * 0.25 * ln 2, a positive
     * 0.25 * 0.25 * ln 2. Row 0 (background): 9 negatives; row 1: 8 + 1. */
    double neg = 0.75 * 0.25 * M_LN2, pos = 0.25 * 0.25 * M_LN2;
    check_close(l3d_focal_loss_forward(cls, 1, 9, &t, 1), 9 * neg / (1 + FLT_EPSILON), 1e-6, "bg");
    check_close(l3d_focal_loss_forward(cls, 2, 9, &t, 2), (17 * neg + pos) / (2 + FLT_EPSILON),
                1e-6, "bg + pos");
    /* gradients at 0: negative -0.75 * 0.25 * (2 * 0.5 * ln 0.5 - 0.5) =
     * 0.1875 (0.5 + ln 2); positive -0.25 * 0.25 * (0.5 - 2 * 0.5 * ln 0.5) =
     * -0.0625 (0.5 + ln 2) */
    float g[18];
    l3d_focal_loss_backward(cls, 2, 9, &t, 1, g);
    for (int c = 0; c < 9; c++)
        check_close(g[c], 0.1875 * (0.5 + M_LN2) / (1 + FLT_EPSILON), 1e-6, "grad bg");
    check_close(g[9 + 3], -0.0625 * (0.5 + M_LN2) / (1 + FLT_EPSILON), 1e-6, "grad pos");

    /* the kernel clamps log at FLT_MIN: logit 30 (p == 1 in float32) against
     * the background costs 0.75 * 126 ln 2, not 0.75 * 30 */
    float big[9] = {30, 30, 30, 30, 30, 30, 30, 30, 30};
    check_close(l3d_focal_loss_forward(big, 1, 9, &t, 1), 9 * 0.75 * 126 * M_LN2 / (1 + FLT_EPSILON),
                1e-6, "clamp");
    l3d_focal_loss_backward(big, 1, 9, &t, 1, g);
    check_close(g[0], 0.75 / (1 + FLT_EPSILON), 1e-6, "clamp grad");
    /* and logit -100 (p == 0) for the target class costs 0.25 * 126 ln 2 (the
     * other classes, p == 0, cost 0); its gradient is -alpha */
    float tiny[18];
    for (int i = 0; i < 18; i++)
        tiny[i] = -100.0f;
    l3d_ssn_targets t1 = l3d_ssn_targets_at(&t, 1);
    check_close(l3d_focal_loss_forward(tiny, 1, 9, &t1, 1), 0.25 * 126 * M_LN2 / (1 + FLT_EPSILON),
                1e-6, "clamp pos");
    l3d_focal_loss_backward(tiny, 1, 9, &t1, 1, g);
    check_close(g[3], -0.25 / (1 + FLT_EPSILON), 1e-6, "clamp pos grad");

    /* the normaliser is num_total_pos + FLT_EPSILON: one element of the
     * linear part, |u - v| = 1, costs 1 - 1/18 */
    float pred[7] = {1, 0, 0, 0, 0, 0, 0};
    bw[0] = 1;
    double want = (double)(1.0f - (float)(0.5 / 9.0)) / (3.0 + FLT_EPSILON);
    double got = l3d_smooth_l1_forward(pred, 1, &t, 3);
    if (fabs(got - want) > 1e-15)
        fail_msg("smooth l1 normaliser: %.17g, want %.17g", got, want);
    /* direction: equal logits cost 0.2 ln 2 / D */
    float z[2] = {0.5f, 0.5f};
    dw[0] = 1;
    check_close(l3d_dir_loss_forward(z, 1, &t, 1), 0.2 * M_LN2 / (1 + FLT_EPSILON), 1e-6, "dir");
}

/* Rows with weight 0 neither cost nor get gradient, whatever their predictions;
 * positive-only terms stay 0 for negatives. */
static void test_ignored_rows(void **state)
{
    (void)state;
    batch b;
    batch_make(&b, 200, 9);
    for (int64_t n = 0; n < b.R; n += 2) {
        b.t.label_weights[n] = 0;
        b.t.bbox_weights[n] = 0;
        b.t.dir_weights[n] = 0;
    }
    l3d_ssn_loss l0 = l3d_ssn_loss_forward(b.cls, b.bbox, b.dir, b.R, 9, &b.t, 5);
    float *dc = malloc((size_t)b.R * 36), *db = malloc((size_t)b.R * 28), *dd = malloc((size_t)b.R * 8);
    l3d_ssn_loss_backward(b.cls, b.bbox, b.dir, b.R, 9, &b.t, 5, dc, db, dd);
    for (int64_t n = 0; n < b.R; n += 2) {
        for (int c = 0; c < 9; c++)
            assert_true(dc[n * 9 + c] == 0.0f);
        for (int j = 0; j < 7; j++)
            assert_true(db[n * 7 + j] == 0.0f);
        assert_true(dd[2 * n] == 0.0f && dd[2 * n + 1] == 0.0f);
        for (int c = 0; c < 9; c++)
            b.cls[n * 9 + c] += 3.0f;
        b.bbox[7 * n] += 1.0f;
        b.dir[2 * n] -= 2.0f;
    }
    /* an odd (weighted) row does get gradient */
    assert_true(dc[9] != 0.0f && dd[2] != 0.0f);
    l3d_ssn_loss l1 = l3d_ssn_loss_forward(b.cls, b.bbox, b.dir, b.R, 9, &b.t, 5);
    assert_true(l0.cls == l1.cls && l0.bbox == l1.bbox && l0.dir == l1.dir);
    free(dc);
    free(db);
    free(dd);
    batch_free(&b);
}

static void test_deterministic(void **state)
{
    (void)state;
    batch b;
    batch_make(&b, 3000, 9);
    l3d_ssn_loss a = l3d_ssn_loss_forward(b.cls, b.bbox, b.dir, b.R, 9, &b.t, 40);
    l3d_ssn_loss c = l3d_ssn_loss_forward(b.cls, b.bbox, b.dir, b.R, 9, &b.t, 40);
    assert_memory_equal(&a, &c, sizeof a);
    float *g1 = malloc((size_t)b.R * 36), *g2 = malloc((size_t)b.R * 36);
    float *h1 = malloc((size_t)b.R * 28), *h2 = malloc((size_t)b.R * 28);
    float *k1 = malloc((size_t)b.R * 8), *k2 = malloc((size_t)b.R * 8);
    l3d_ssn_loss_backward(b.cls, b.bbox, b.dir, b.R, 9, &b.t, 40, g1, h1, k1);
    l3d_ssn_loss_backward(b.cls, b.bbox, b.dir, b.R, 9, &b.t, 40, g2, h2, k2);
    assert_memory_equal(g1, g2, (size_t)b.R * 36);
    assert_memory_equal(h1, h2, (size_t)b.R * 28);
    assert_memory_equal(k1, k2, (size_t)b.R * 8);
    free(g1);
    free(g2);
    free(h1);
    free(h2);
    free(k1);
    free(k2);
    batch_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_vs_reference),
        cmocka_unit_test(test_backward_vs_finite_differences),
        cmocka_unit_test(test_backward_closed_forms),
        cmocka_unit_test(test_hand_values),
        cmocka_unit_test(test_ignored_rows),
        cmocka_unit_test(test_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
