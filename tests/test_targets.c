/* trainer/anchors, trainer/box_coder, trainer/assign: the anchor rows of the
 * Lyft layout against the spec's formula; nearest-BEV IoU and the MaxIoU
 * rules on hand-made cases on a 4 x 4 toy grid (centres 0.5 .. 3.5); the
 * pruned assignment against a brute-force reference (every anchor x GT pair,
 * written here from the spec) on random scenes; the box coder on hand values.
 * Also prints the assignment time of one Lyft sample with 30 GTs. */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "trainer/anchors.h"
#include "trainer/assign.h"
#include "trainer/box_coder.h"

/* ---- helpers ---------------------------------------------------------------- */

typedef struct tgt {
    int64_t n;
    l3d_ssn_targets t;
} tgt;

static void tgt_alloc(tgt *a, int64_t n)
{
    a->n = n;
    a->t.labels = malloc((size_t)n * 4);
    a->t.label_weights = malloc((size_t)n * 4);
    a->t.bbox_targets = malloc((size_t)n * 28);
    a->t.bbox_weights = malloc((size_t)n * 4);
    a->t.dir_targets = malloc((size_t)n * 4);
    a->t.dir_weights = malloc((size_t)n * 4);
    assert_non_null(a->t.dir_weights);
    /* garbage, so that "every row is written" is observable */
    memset(a->t.labels, 0x55, (size_t)n * 4);
    memset(a->t.label_weights, 0x55, (size_t)n * 4);
    memset(a->t.bbox_targets, 0x55, (size_t)n * 28);
    memset(a->t.bbox_weights, 0x55, (size_t)n * 4);
    memset(a->t.dir_targets, 0x55, (size_t)n * 4);
    memset(a->t.dir_weights, 0x55, (size_t)n * 4);
}

static void tgt_free(tgt *a)
{
    free(a->t.labels);
    free(a->t.label_weights);
    free(a->t.bbox_targets);
    free(a->t.bbox_weights);
    free(a->t.dir_targets);
    free(a->t.dir_weights);
}

static uint64_t rng_state = 88172645463325252ull;
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

/* ---- anchors -------------------------------------------------------------- */

static void expect_anchor(const float *a, double x, double y, double z, const double s[3],
                          double rot)
{
    const double want[7] = {x, y, z, s[0], s[1], s[2], rot};
    for (int j = 0; j < 7; j++)
        if (a[j] != (float)want[j])
            fail_msg("anchor column %d: %.9g, want %.9g", j, a[j], (float)want[j]);
}

static void test_lyft_anchors(void **state)
{
    (void)state;
    l3d_head_layout L;
    l3d_head_layout_lyft(&L);
    assert_int_equal(L.num_anchors, 1680000);
    assert_int_equal(L.num_classes, 9);
    assert_int_equal(L.num_groups, 4);
    const int64_t goff[4] = {0, 640000, 1280000, 1440000};
    const int gmap[4] = {400, 400, 200, 200};
    for (int g = 0; g < 4; g++) {
        assert_int_equal(L.group[g].offset, goff[g]);
        assert_int_equal(L.group[g].H, gmap[g]);
        assert_int_equal(L.group[g].W, gmap[g]);
    }
    const int64_t coff[9] = {0, 320000, 640000, 960000, 1280000, 1360000, 1440000, 1520000, 1600000};
    /* spec §6.1 */
    const double size[9][3] = {{1.76, 0.63, 1.44}, {2.35, 0.96, 1.59}, {0.80, 0.76, 1.76},
                               {0.73, 0.35, 0.50}, {4.75, 1.92, 1.71}, {6.52, 2.42, 2.34},
                               {12.70, 2.92, 3.42}, {8.17, 2.75, 3.20}, {10.24, 2.84, 3.44}};
    const double z[9] = {-1.0709302, -1.3220503, -0.9122268, -1.8012227, -1.0715024,
                         -0.8871424, -0.3519405, -0.6276341, -0.3033737};
    const double thr[9] = {0.55, 0.55, 0.55, 0.55, 0.60, 0.55, 0.60, 0.55, 0.60};
    float *an = malloc((size_t)L.num_anchors * 7 * sizeof(float));
    assert_non_null(an);
    l3d_anchors_generate(&L, an);
    for (int k = 0; k < 9; k++) {
        const l3d_anchor_class *c = &L.cls[k];
        int M = k < 4 ? 400 : 200;
        assert_int_equal(c->offset, coff[k]);
        assert_int_equal(c->count, 2 * M * M);
        assert_true(c->pos_thr == (float)thr[k]);
        assert_true(c->neg_thr == (float)(thr[k] - 0.15));
        assert_true(c->min_pos == (float)(thr[k] - 0.15));
        double h0 = -100 + 0.5 * 200.0 / M;
        /* first row, first row of rotation 1.57, last row */
        expect_anchor(an + 7 * coff[k], h0, h0, z[k], size[k], 0);
        expect_anchor(an + 7 * (coff[k] + (int64_t)M * M), h0, h0, z[k], size[k], 1.57);
        expect_anchor(an + 7 * (coff[k] + 2 * (int64_t)M * M - 1), -h0, -h0, z[k], size[k], 1.57);
        /* every row: x[w] = -100 + (w + 0.5) 200 / W (exact in float32) */
        for (int64_t i = 0; i < c->count; i++) {
            int64_t w = i % M, h = (i / M) % M, r = i / ((int64_t)M * M);
            const float *a = an + 7 * (coff[k] + i);
            if (a[0] != (float)(-100 + (w + 0.5) * 200.0 / M) ||
                a[1] != (float)(-100 + (h + 0.5) * 200.0 / M) || a[6] != (r ? 1.57f : 0.0f))
                fail_msg("class %d row %lld: (%g, %g, yaw %g)", k, (long long)i, a[0], a[1], a[6]);
        }
    }
    free(an);
}

static void test_small_layout(void **state)
{
    (void)state;
    l3d_head_layout L;
    const char *why = NULL;
    const float range[4] = {-50.f, -40.f, 50.f, 40.f};
    assert_int_equal(l3d_head_layout_ssn(&L, range, 0.25f, &why), 0);
    /* pseudo-image 400 x 320: maps 200 x 160 (groups 0, 1), 100 x 80 (2, 3) */
    assert_int_equal(L.group[0].W, 200);
    assert_int_equal(L.group[0].H, 160);
    assert_int_equal(L.group[3].W, 100);
    assert_int_equal(L.group[3].H, 80);
    assert_int_equal(L.num_anchors, 4 * 2 * 200 * 160 + 5 * 2 * 100 * 80);
    assert_int_equal(L.cls[4].offset, 4 * 2 * 200 * 160);
    float xs[100], ys[80];
    l3d_anchor_centres(range[0], range[2], 100, xs);
    l3d_anchor_centres(range[1], range[3], 80, ys);
    assert_true(xs[0] == -49.5f && xs[99] == 49.5f && ys[0] == -39.5f && ys[79] == 39.5f);
    /* a non-multiple of 8 and bad values are refused with a reason */
    const float odd[4] = {-50.f, -50.f, 50.f, 51.f};
    why = NULL;
    assert_int_equal(l3d_head_layout_ssn(&L, odd, 0.25f, &why), -1);
    assert_non_null(why);
    assert_int_equal(l3d_head_layout_ssn(&L, range, 0.0f, NULL), -1);
    const float inv[4] = {50.f, -40.f, -50.f, 40.f};
    assert_int_equal(l3d_head_layout_ssn(&L, inv, 0.25f, NULL), -1);
}

/* ---- box coder ---------------------------------------------------------------- */

static void test_box_coder(void **state)
{
    (void)state;
    /* diag = 5; za' = -1 + 1 = 0, zg' = 0 + 2 = 2 */
    const float a[7] = {0, 0, -1, 3, 4, 2, 0}, g[7] = {5, -10, 0, 6, 2, 4, 1.0f};
    const double want[7] = {1, -2, 1, log(2.0), log(0.5), log(2.0), 1.0};
    float t[7], b[7];
    l3d_box_encode(a, g, t);
    for (int j = 0; j < 7; j++)
        assert_float_equal(t[j], want[j], 1e-6);
    l3d_box_decode(a, t, b);
    for (int j = 0; j < 7; j++)
        assert_float_equal(b[j], g[j], 1e-5);
    /* angle residual not wrapped */
    const float a2[7] = {0, 0, 0, 1, 1, 1, 1.57f}, g2[7] = {0, 0, 0, 1, 1, 1, -3.0f};
    l3d_box_encode(a2, g2, t);
    assert_true(t[6] == -3.0f - 1.57f);
    /* random round trips */
    for (int i = 0; i < 1000; i++) {
        float an[7] = {uni(-100, 100), uni(-100, 100), uni(-2, 1), uni(0.3f, 13), uni(0.3f, 3),
                       uni(0.4f, 4), (rnd() & 1) ? 1.57f : 0.0f};
        float gt[7] = {an[0] + uni(-3, 3), an[1] + uni(-3, 3), uni(-3, 1), uni(0.2f, 15),
                       uni(0.2f, 4), uni(0.3f, 5), uni(-3.14159f, 3.14159f)};
        l3d_box_encode(an, gt, t);
        l3d_box_decode(an, t, b);
        for (int j = 0; j < 7; j++)
            assert_float_equal(b[j], gt[j], 2e-5 * (1 + fabsf(gt[j])));
    }
}

static void test_direction(void **state)
{
    (void)state;
    /* bin 0 <=> (theta + 0.7854) mod 2 pi < pi */
    assert_int_equal(l3d_dir_target(0.0f, 0.0f), 0);
    assert_int_equal(l3d_dir_target(3.0f, 0.0f), 1);
    assert_int_equal(l3d_dir_target(-1.0f, 0.0f), 1);
    assert_int_equal(l3d_dir_target(-0.7f, 0.0f), 0);
    assert_int_equal(l3d_dir_target(2.3f, 0.0f), 0);
    assert_int_equal(l3d_dir_target(2.4f, 0.0f), 1);
    /* the literal 0.7854, not pi/4 = 0.78539816: these sit between the two */
    assert_int_equal(l3d_dir_target(-0.785399f, 0.0f), 0);    /* -pi/4 would give 1 */
    assert_int_equal(l3d_dir_target(-0.785401f, 0.0f), 1);
    assert_int_equal(l3d_dir_target(2.3561945f, 0.0f), 1);    /* pi/4 would give 0 */
    assert_int_equal(l3d_dir_target(2.3561900f, 0.0f), 0);
    /* theta = t6 + anchor yaw */
    assert_int_equal(l3d_dir_target(3.0f - 1.57f, 1.57f), 1);
    assert_int_equal(l3d_dir_target(-1.57f, 1.57f), 0);
    /* direction fix: yaw + k pi with yaw + 0.7854 - k pi in [0, pi), + pi * dir */
    assert_float_equal(l3d_dir_fix(0.1f, 0), 0.1, 1e-6);
    assert_float_equal(l3d_dir_fix(0.1f, 1), 0.1 + M_PI, 1e-6);
    assert_float_equal(l3d_dir_fix(3.0f, 0), 3.0 - M_PI, 1e-6);
    assert_float_equal(l3d_dir_fix(-1.0f, 1), -1.0 + 2 * M_PI, 1e-5);
    assert_float_equal(l3d_dir_fix(-0.78f, 0), -0.78, 1e-6);
    assert_float_equal(l3d_dir_fix(-0.79f, 0), -0.79 + M_PI, 1e-6);
}

/* ---- nearest BEV ---------------------------------------------------------------- */

static void test_nearest_bev(void **state)
{
    (void)state;
    float r[4];
    const float b0[7] = {1, 2, 0, 4, 2, 1, 0};
    l3d_nearest_bev(b0, r);
    assert_true(r[0] == -1 && r[1] == 1 && r[2] == 3 && r[3] == 3);
    /* swapped when |wrapped yaw| > pi/4 (float32 pi/4 = 0.78539818) */
    const float yaws_swap[] = {1.57f, -1.57f, 2.0f, -2.0f, nextafterf(0.78539818f, 1.f), 4.0f};
    for (size_t i = 0; i < sizeof yaws_swap / sizeof *yaws_swap; i++) {
        float b[7] = {1, 2, 0, 4, 2, 1, yaws_swap[i]};
        l3d_nearest_bev(b, r);
        if (!(r[0] == 0 && r[1] == 0 && r[2] == 2 && r[3] == 4))
            fail_msg("yaw %.9g should swap", yaws_swap[i]);
    }
    const float yaws_keep[] = {0.78539818f, -0.78539818f, 3.14159274f, 2.5f, -2.5f, 0.7f, 6.2f};
    for (size_t i = 0; i < sizeof yaws_keep / sizeof *yaws_keep; i++) {
        float b[7] = {1, 2, 0, 4, 2, 1, yaws_keep[i]};
        l3d_nearest_bev(b, r);
        if (!(r[0] == -1 && r[1] == 1 && r[2] == 3 && r[3] == 3))
            fail_msg("yaw %.9g should not swap", yaws_keep[i]);
    }
    /* IoU by hand: [0,2]x[0,1] and [1,3]x[0,2]: overlap 1, union 2 + 4 - 1 */
    const float ra[4] = {0, 0, 2, 1}, rb[4] = {1, 0, 3, 2}, rc[4] = {2, 0, 3, 1};
    assert_true(l3d_rect_iou(ra, rb) == 1.0f / 5.0f);
    assert_true(l3d_rect_iou(ra, ra) == 1.0f);
    assert_true(l3d_rect_iou(ra, rc) == 0.0f);    /* touching edge */
    const float rd[4] = {0.5f, 0.25f, 1.5f, 0.75f}; /* inside ra: 0.5 / 2 */
    assert_true(l3d_rect_iou(ra, rd) == 0.25f);
    const float z[4] = {1, 1, 1, 1};               /* empty: union clamped at 1e-6 */
    assert_true(l3d_rect_iou(z, z) == 0.0f);
}

/* ---- the reference: every anchor x GT pair, literally from the spec ---------- */

static void ref_rect(const float *b, float r[4])
{
    const float pi = (float)M_PI;
    float phi = fabsf(b[6] - floorf(b[6] / pi + 0.5f) * pi);
    int swap = phi > (float)(M_PI / 4);
    float wx = swap ? b[4] : b[3], wy = swap ? b[3] : b[4];
    r[0] = b[0] - wx / 2;
    r[1] = b[1] - wy / 2;
    r[2] = b[0] + wx / 2;
    r[3] = b[1] + wy / 2;
}

static float ref_iou(const float *g, const float *a)
{
    float ov = fmaxf(0.0f, fminf(g[2], a[2]) - fmaxf(g[0], a[0])) *
               fmaxf(0.0f, fminf(g[3], a[3]) - fmaxf(g[1], a[1]));
    float uni_ = (g[2] - g[0]) * (g[3] - g[1]) + (a[2] - a[0]) * (a[3] - a[1]) - ov;
    return ov / fmaxf(uni_, 1e-6f);
}

static void ref_encode(const float *a, const float *g, float t[7])
{
    float diag = sqrtf(a[3] * a[3] + a[4] * a[4]);
    t[0] = (g[0] - a[0]) / diag;
    t[1] = (g[1] - a[1]) / diag;
    t[2] = ((g[2] + g[5] / 2) - (a[2] + a[5] / 2)) / a[5];
    t[3] = logf(g[3] / a[3]);
    t[4] = logf(g[4] / a[4]);
    t[5] = logf(g[5] / a[5]);
    t[6] = g[6] - a[6];
}

static int ref_dir(float t6, float ra)
{
    float th = t6 + ra, v = th + 0.7854f, two_pi = (float)(2 * M_PI);
    float u = v - floorf(v / two_pi) * two_pi;
    int bin = (int)floorf(u / (float)M_PI);
    return bin < 0 ? 0 : bin > 1 ? 1 : bin;
}

/* want[row]: -1 ignored, 0 negative, g + 1 positive to input GT g. */
static void ref_assign(const l3d_head_layout *L, const float *an, const float *gt,
                       const int32_t *gl, int G, int *want)
{
    for (int k = 0; k < L->num_classes; k++) {
        const l3d_anchor_class *c = &L->cls[k];
        int ids[256], m = 0;
        for (int i = 0; i < G; i++)
            if (gl[i] == k)
                ids[m++] = i;
        if (m == 0) {
            for (int64_t n = 0; n < c->count; n++)
                want[c->offset + n] = 0;
            continue;
        }
        float *iou = malloc((size_t)c->count * m * sizeof(float)), gmax[256];
        float *best = malloc((size_t)c->count * sizeof(float));
        int *arg = malloc((size_t)c->count * sizeof(int));
        assert_non_null(arg);
        for (int g = 0; g < m; g++) {
            float gr[4], ar[4];
            ref_rect(gt + 7 * ids[g], gr);
            gmax[g] = 0;
            for (int64_t n = 0; n < c->count; n++) {
                ref_rect(an + 7 * (c->offset + n), ar);
                float v = ref_iou(gr, ar);
                iou[(size_t)g * c->count + n] = v;
                gmax[g] = v > gmax[g] ? v : gmax[g];
            }
        }
        for (int64_t n = 0; n < c->count; n++) {
            best[n] = iou[n];
            arg[n] = 0;
            for (int g = 1; g < m; g++)
                if (iou[(size_t)g * c->count + n] > best[n]) {
                    best[n] = iou[(size_t)g * c->count + n];
                    arg[n] = g;
                }
            int st = -1;
            if (best[n] >= 0 && best[n] < c->neg_thr)
                st = 0;
            if (best[n] >= c->pos_thr)
                st = ids[arg[n]] + 1;
            want[c->offset + n] = st;
        }
        for (int g = 0; g < m; g++)
            if (gmax[g] >= c->min_pos)
                for (int64_t n = 0; n < c->count; n++)
                    if (iou[(size_t)g * c->count + n] == gmax[g])
                        want[c->offset + n] = ids[g] + 1;
        free(iou);
        free(best);
        free(arg);
    }
}

/* Every row of T against want (bitwise for the targets). Returns positives. */
static int64_t check_rows(const l3d_head_layout *L, const float *an, const float *gt,
                          const tgt *T, const int *want)
{
    int64_t npos = 0;
    for (int k = 0; k < L->num_classes; k++)
        for (int64_t n = 0; n < L->cls[k].count; n++) {
            int64_t row = L->cls[k].offset + n;
            int w = want[row];
            float t[7] = {0, 0, 0, 0, 0, 0, 0};
            int dir = 0;
            if (w > 0) {
                ref_encode(an + 7 * row, gt + 7 * (w - 1), t);
                dir = ref_dir(t[6], an[7 * row + 6]);
                npos++;
            }
            int label = w > 0 ? k : L->num_classes;
            float lw = w >= 0 ? 1.f : 0.f, pw = w > 0 ? 1.f : 0.f;
            if (T->t.labels[row] != label || T->t.label_weights[row] != lw ||
                T->t.bbox_weights[row] != pw || T->t.dir_weights[row] != pw ||
                T->t.dir_targets[row] != dir ||
                memcmp(T->t.bbox_targets + 7 * row, t, sizeof t) != 0)
                fail_msg("row %lld (class %d): label %d w %g bw %g dir %d/%g t6 %g; want state "
                         "%d: label %d w %g dir %d t6 %g",
                         (long long)row, k, T->t.labels[row], T->t.label_weights[row],
                         T->t.bbox_weights[row], T->t.dir_targets[row], T->t.dir_weights[row],
                         T->t.bbox_targets[7 * row + 6], w, label, lw, dir, t[6]);
        }
    return npos;
}

/* ---- hand-made assignments on the toy layout -------------------------------- */

/* 4 x 4 map over [0,4]^2 (centres 0.5 .. 3.5), rotations {0, 1.57}:
 * class 0: 1 x 1 anchors, pos 0.6 / neg 0.45 / min_pos 0.3;
 * class 1: 2 x 1 anchors, pos 0.55 / neg 0.4 / min_pos 0.4.
 * Row of (class k, rotation r, y index h, x index w) = 32k + 16r + 4h + w. */
static void toy_layout(l3d_head_layout *L)
{
    memset(L, 0, sizeof *L);
    L->range[2] = L->range[3] = 4.0f;
    L->rotations[1] = 1.57f;
    L->num_classes = 2;
    L->num_groups = 1;
    L->group[0] = (l3d_anchor_group){0, 2, 4, 4, 0};
    L->cls[0] = (l3d_anchor_class){{1, 1, 1}, -1.0f, 0.6f, 0.45f, 0.3f, 0, 0, 0, 0, 0};
    L->cls[1] = (l3d_anchor_class){{2, 1, 1}, 0.0f, 0.55f, 0.4f, 0.4f, 0, 0, 0, 0, 0};
    assert_int_equal(l3d_head_layout_finish(L, NULL), 0);
    assert_int_equal(L->num_anchors, 64);
}

static int ROW(int k, int r, int h, int w)
{
    return 32 * k + 16 * r + 4 * h + w;
}

/* Runs the assignment and checks it against the hand-written states: all rows
 * negative except those listed (row, state). */
static void run_case(const l3d_head_layout *L, const float *gt, const int32_t *gl, int G,
                     const int (*pairs)[2], int np, int64_t want_pos)
{
    float an[64 * 7];
    l3d_anchors_generate(L, an);
    int want[64] = {0};
    for (int i = 0; i < np; i++)
        want[pairs[i][0]] = pairs[i][1];
    tgt T;
    tgt_alloc(&T, 64);
    assert_int_equal(l3d_assign_targets(L, an, gt, gl, G, &T.t), want_pos);
    assert_int_equal(check_rows(L, an, gt, &T, want), want_pos);
    /* the hand-written states agree with the reference too */
    int ref[64];
    ref_assign(L, an, gt, gl, G, ref);
    assert_memory_equal(ref, want, sizeof want);
    tgt_free(&T);
}

static void test_assign_by_hand(void **state)
{
    (void)state;
    l3d_head_layout L;
    toy_layout(&L);

    /* no GT at all: everything negative */
    run_case(&L, NULL, NULL, 0, NULL, 0, 0);

    /* one class-1 GT on a class-0 anchor's footprint: class 0 does not see it;
     * class 1: the rotation-0 and rotation-1.57 anchors at (1.5, 1.5) both
     * have IoU 0.5 (= its best) >= min_pos 0.4 -> positive; others 0.2 or 0 */
    {
        const float gt[7] = {1.5f, 1.5f, 0.25f, 1, 1, 1, 3.0f};
        const int32_t gl[1] = {1};
        const int p[][2] = {{ROW(1, 0, 1, 1), 1}, {ROW(1, 1, 1, 1), 1}};
        run_case(&L, gt, gl, 1, p, 2, 2);
        /* the targets by hand: z' 0.75 vs 0.5, dx 1 vs 2, yaw 3.0 (bin 1) */
        float an[64 * 7];
        l3d_anchors_generate(&L, an);
        tgt T;
        tgt_alloc(&T, 64);
        l3d_assign_targets(&L, an, gt, gl, 1, &T.t);
        const float *t0 = T.t.bbox_targets + 7 * ROW(1, 0, 1, 1);
        const float *t1 = T.t.bbox_targets + 7 * ROW(1, 1, 1, 1);
        const double want0[7] = {0, 0, 0.25, log(0.5), 0, 0, 3.0};
        for (int j = 0; j < 7; j++) {
            assert_float_equal(t0[j], want0[j], 1e-6);
            assert_float_equal(t1[j], j == 6 ? 3.0 - 1.57 : want0[j], 1e-6);
        }
        assert_int_equal(T.t.dir_targets[ROW(1, 0, 1, 1)], 1);
        assert_int_equal(T.t.dir_targets[ROW(1, 1, 1, 1)], 1);
        assert_int_equal(T.t.labels[ROW(1, 0, 1, 1)], 1);
        assert_int_equal(T.t.labels[ROW(0, 0, 1, 1)], 2);
        tgt_free(&T);
    }

    /* low-quality override in GT order. a = 2x1 at (2, 1.5): IoU 0.5 with the
     * class-0 anchors at (1.5, 1.5) and (2.5, 1.5) (its best, >= 0.3);
     * b = 1x1 at (2.5, 1.5): IoU 1 with (2.5, 1.5). Order (a, b): a takes
     * both, then b takes (2.5, 1.5) back. Order (b, a): a, coming last, takes
     * (2.5, 1.5) although its IoU with b is 1. Boxes labelled -1 and 7 are
     * invisible. */
    {
        const float gt[4 * 7] = {2.0f, 1.5f, 0, 2, 1, 1, 0,   2.5f, 1.5f, 0, 1, 1, 1, 0,
                                 2.5f, 1.5f, 0, 1, 1, 1, 0,   2.5f, 1.5f, 0, 1, 1, 1, 0};
        const int32_t gl[4] = {0, 0, -1, 7};
        const int p[][2] = {{ROW(0, 0, 1, 1), 1}, {ROW(0, 1, 1, 1), 1},
                            {ROW(0, 0, 1, 2), 2}, {ROW(0, 1, 1, 2), 2}};
        run_case(&L, gt, gl, 4, p, 4, 4);
        const float gt2[4 * 7] = {2.5f, 1.5f, 0, 1, 1, 1, 0,  2.0f, 1.5f, 0, 2, 1, 1, 0,
                                  2.5f, 1.5f, 0, 1, 1, 1, 0,  2.5f, 1.5f, 0, 1, 1, 1, 0};
        const int p2[][2] = {{ROW(0, 0, 1, 1), 2}, {ROW(0, 1, 1, 1), 2},
                             {ROW(0, 0, 1, 2), 2}, {ROW(0, 1, 1, 2), 2}};
        run_case(&L, gt2, gl, 4, p2, 4, 4);
    }

    /* ignored: 2x1 at (2.05, 1.5): (1.5, 1.5) has IoU 0.95/2.05 = 0.46 in
     * [0.45, 0.6) and is not the GT's best -> ignored; (2.5, 1.5) has 0.5, the
     * best -> positive; (3.5, 1.5) 0.05/2.95 -> negative */
    {
        const float gt[7] = {2.05f, 1.5f, 0, 2, 1, 1, 0};
        const int32_t gl[1] = {0};
        const int p[][2] = {{ROW(0, 0, 1, 1), -1}, {ROW(0, 1, 1, 1), -1},
                            {ROW(0, 0, 1, 2), 1}, {ROW(0, 1, 1, 2), 1}};
        run_case(&L, gt, gl, 1, p, 4, 2);
    }

    /* best IoU below min_pos: a 0.5 x 0.5 class-1 box at a cell corner has at
     * most 0.125 / 2.125 with any 2x1 anchor -> no positive, all negative */
    {
        const float gt[7] = {2.0f, 2.0f, 0, 0.5f, 0.5f, 0.5f, 0};
        const int32_t gl[1] = {1};
        run_case(&L, gt, gl, 1, NULL, 0, 0);
    }
}

/* Threshold comparisons at equality: a class-1 2x1 GT at (2, 1.5) has IoU
 * exactly 1.5 / 2.5 = 0.6f with the rotation-0 anchors at (1.5, 1.5) and
 * (2.5, 1.5) and at most 1/3 with every other anchor. */
static void test_assign_thresholds(void **state)
{
    (void)state;
    const float gt[2 * 7] = {2.0f, 1.5f, 0, 2, 1, 1, 0,  2.0f, 1.5f, 5.0f, 2, 1, 1, 0};
    const int32_t gl[2] = {1, 1};
    const int a = ROW(1, 0, 1, 1), b = ROW(1, 0, 1, 2);
    const float up = nextafterf(0.6f, 1.0f);
    const struct {
        float pos, neg, min_pos;
        int state;
    } cases[] = {
        {0.6f, 0.4f, 0.95f, 1},    /* best >= pos (equal): positive, first GT of a tie */
        {up, 0.4f, 0.95f, -1},     /* just below pos, above neg: ignored */
        {0.7f, 0.6f, 0.95f, -1},   /* best == neg is not < neg: ignored */
        {0.7f, up, 0.95f, 0},      /* best < neg: negative */
        {0.7f, 0.4f, 0.6f, 2},     /* gmax >= min_pos (equal): low quality, last GT wins */
        {0.7f, 0.4f, up, -1},      /* gmax < min_pos: stays ignored */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        l3d_head_layout L;
        toy_layout(&L);
        L.cls[1].pos_thr = cases[i].pos;
        L.cls[1].neg_thr = cases[i].neg;
        L.cls[1].min_pos = cases[i].min_pos;
        const int p[][2] = {{a, cases[i].state}, {b, cases[i].state}};
        run_case(&L, gt, gl, 2, p, 2, cases[i].state > 0 ? 2 : 0);
    }
}

/* ---- pruned assignment == brute force on random scenes ----------------------- */

/* G boxes: random classes (a few -1), centres over and beyond the range,
 * class-like sizes, any yaw (with exact multiples of pi/2, 1.57 and pi/4
 * mixed in), plus copies of anchors (IoU exactly 1, ties between anchors of
 * both rotations) and duplicated GTs (ties between GTs). */
static int random_scene(const l3d_head_layout *L, const float *an, float extent, float *gt,
                        int32_t *gl, int G)
{
    static const float special[] = {0.0f, 1.57f, -1.57f, 1.5707964f, -1.5707964f, 0.78539818f,
                                    -0.78539818f, 3.1415927f, -3.1415927f};
    for (int i = 0; i < G; i++) {
        float *b = gt + 7 * i;
        int k = (int)(rnd() % (uint64_t)L->num_classes);
        gl[i] = rnd() % 10 == 0 ? -1 : k;
        uint64_t kind = rnd() % 8;
        if (kind == 0) {            /* an anchor of the class, exactly */
            int64_t n = L->cls[k].offset + (int64_t)(rnd() % (uint64_t)L->cls[k].count);
            memcpy(b, an + 7 * n, 7 * sizeof(float));
        } else if (kind == 1 && i > 0) {   /* a duplicate of the previous GT */
            memcpy(b, b - 7, 7 * sizeof(float));
            gl[i] = gl[i - 1];
        } else {
            const float *s = L->cls[k].size;
            b[0] = uni(-extent, extent);
            b[1] = uni(-extent, extent);
            b[2] = uni(-2, 0);
            b[3] = s[0] * uni(0.6f, 1.5f);
            b[4] = s[1] * uni(0.6f, 1.5f);
            b[5] = s[2] * uni(0.8f, 1.2f);
            b[6] = kind == 2 ? special[rnd() % 9] : uni(-3.1415926f, 3.1415926f);
        }
    }
    return G;
}

static void compare_with_reference(const l3d_head_layout *L, const float *an, const float *gt,
                                   const int32_t *gl, int G)
{
    tgt T;
    tgt_alloc(&T, L->num_anchors);
    int *want = malloc((size_t)L->num_anchors * sizeof(int));
    assert_non_null(want);
    ref_assign(L, an, gt, gl, G, want);
    int64_t P = l3d_assign_targets(L, an, gt, gl, G, &T.t);
    assert_int_equal(P, check_rows(L, an, gt, &T, want));
    free(want);
    tgt_free(&T);
}

static void test_assign_vs_brute_force(void **state)
{
    (void)state;
    l3d_head_layout L;
    const float range[4] = {-16.f, -12.f, 16.f, 12.f};
    assert_int_equal(l3d_head_layout_ssn(&L, range, 0.25f, NULL), 0);
    float *an = malloc((size_t)L.num_anchors * 7 * sizeof(float));
    assert_non_null(an);
    l3d_anchors_generate(&L, an);
    float gt[7 * 80];
    int32_t gl[80];
    int64_t total_pos = 0;
    for (int seed = 0; seed < 12; seed++) {
        int G = 1 + (int)(rnd() % 80);
        random_scene(&L, an, 18.f, gt, gl, G);
        compare_with_reference(&L, an, gt, gl, G);
        for (int i = 0; i < G; i++)
            total_pos += gl[i] >= 0;
    }
    assert_true(total_pos > 100);   /* the scenes were not empty */
    free(an);
}

/* The full Lyft layout: one scene of 30 GTs against the brute force, then the
 * time of the pruned assignment (printed, not asserted). */
static void test_lyft_assign_and_time(void **state)
{
    (void)state;
    l3d_head_layout L;
    l3d_head_layout_lyft(&L);
    float *an = malloc((size_t)L.num_anchors * 7 * sizeof(float));
    assert_non_null(an);
    l3d_anchors_generate(&L, an);
    enum { G = 30 };
    float gt[7 * G];
    int32_t gl[G];
    /* a street scene: mostly cars, a few of everything else, within 60 m */
    static const int mix[G] = {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
                               2, 2, 2, 0, 1, 8, 8, 6, 7, 5};
    for (int i = 0; i < G; i++) {
        const float *s = L.cls[mix[i]].size;
        float b[7] = {uni(-60, 60), uni(-60, 60), uni(-2.5f, -1.5f), s[0] * uni(0.8f, 1.2f),
                      s[1] * uni(0.8f, 1.2f), s[2] * uni(0.9f, 1.1f), uni(-3.14f, 3.14f)};
        memcpy(gt + 7 * i, b, sizeof b);
        gl[i] = mix[i];
    }
    compare_with_reference(&L, an, gt, gl, G);

    tgt T;
    tgt_alloc(&T, L.num_anchors);
    int64_t P = 0;
    struct timespec t0, t1;
    const int reps = 5;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int r = 0; r < reps; r++)
        P = l3d_assign_targets(&L, an, gt, gl, G, &T.t);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) / reps;
    printf("   assignment, Lyft layout (1 680 000 anchors), %d GTs: %.1f ms/sample, %lld positives\n",
           G, ms, (long long)P);
    assert_true(P >= G);   /* every GT of these sizes finds at least one anchor */
    tgt_free(&T);
    free(an);
}

static void test_num_total_pos(void **state)
{
    (void)state;
    const int64_t P[3] = {0, 5, 1};
    assert_int_equal(l3d_num_total_pos(P, 3), 1 + 5 + 1);
    assert_int_equal(l3d_num_total_pos(P, 1), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lyft_anchors),        cmocka_unit_test(test_small_layout),
        cmocka_unit_test(test_box_coder),           cmocka_unit_test(test_direction),
        cmocka_unit_test(test_nearest_bev),         cmocka_unit_test(test_assign_by_hand),
        cmocka_unit_test(test_assign_thresholds),   cmocka_unit_test(test_assign_vs_brute_force),
        cmocka_unit_test(test_lyft_assign_and_time), cmocka_unit_test(test_num_total_pos),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
