/* trainer/postprocess: rotated IoU on hand-computed pairs and against an
 * independent reference (vertices inside + edge crossings, sorted by angle,
 * as mmcv builds the polygon) on random pairs; greedy NMS keeping and
 * suppressing by hand; top-k order and ties; the whole pipeline (top-k,
 * decode, per-class NMS, score threshold, concatenation, max_num, direction
 * fix) on a hand-made sample whose every output is known. */
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

#include "trainer/postprocess.h"

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
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

/* ---- rotated IoU ------------------------------------------------------------ */

static void expect_iou(const float a[5], const float b[5], double want, double tol)
{
    float g = l3d_rotated_iou(a, b), h = l3d_rotated_iou(b, a);
    if (fabs(g - want) > tol || fabs(h - want) > tol)
        fail_msg("IoU (%g,%g,%g,%g,%g) vs (%g,%g,%g,%g,%g): %.9g / %.9g, want %.9g", a[0], a[1],
                 a[2], a[3], a[4], b[0], b[1], b[2], b[3], b[4], g, h, want);
}

static void test_rotated_iou_by_hand(void **state)
{
    (void)state;
    const float a[5] = {1, 2, 4, 2, 0.3f};
    expect_iou(a, a, 1.0, 1e-6);
    const float far[5] = {9, 2, 4, 2, 1.1f};
    expect_iou(a, far, 0.0, 0);
    /* side-2 square and the same square turned 45 degrees: a regular octagon
     * of area 8 sqrt 2 - 8, IoU 1 / sqrt 2 */
    const float sq[5] = {0, 0, 2, 2, 0}, sq45[5] = {0, 0, 2, 2, (float)(M_PI / 4)};
    expect_iou(sq, sq45, M_SQRT1_2, 1e-6);
    /* the turned square moved to (1, 0): intersection 2 sqrt 2 - 1 */
    const float sq45b[5] = {1, 0, 2, 2, (float)(M_PI / 4)};
    expect_iou(sq, sq45b, (2 * M_SQRT2 - 1) / (8 - (2 * M_SQRT2 - 1)), 1e-6);
    /* axis-aligned [-2,2]x[-1,1] and [0,2]x[0,2]: overlap 2, union 10 */
    const float r1[5] = {0, 0, 4, 2, 0}, r2[5] = {1, 1, 2, 2, 0};
    expect_iou(r1, r2, 0.2, 1e-7);
    /* a 2x1 box and itself turned 90 degrees: 1 / (2 + 2 - 1) */
    const float l0[5] = {0, 0, 2, 1, 0}, l90[5] = {0, 0, 2, 1, (float)(M_PI / 2)};
    expect_iou(l0, l90, 1.0 / 3, 1e-6);
    /* yaw pi is the same rectangle; far from the origin too */
    const float p0[5] = {90, -80, 4, 1.5f, 0}, ppi[5] = {90, -80, 4, 1.5f, (float)M_PI};
    expect_iou(p0, ppi, 1.0, 1e-6);
    /* touching along an edge and at a corner: 0 */
    const float e1[5] = {2, 0, 2, 2, 0}, c1[5] = {2, 2, 2, 2, 0};
    expect_iou(sq, e1, 0.0, 1e-9);
    expect_iou(sq, c1, 0.0, 1e-9);
    /* one inside the other: 1 / 4 */
    const float in[5] = {0.1f, -0.2f, 1, 1, 0.7f};
    expect_iou(sq, in, 0.25, 1e-6);
    /* degenerate: 0 */
    const float z[5] = {0, 0, 0, 2, 0};
    expect_iou(sq, z, 0.0, 0);
}

/* Reference: the polygon from A's corners inside B, B's inside A and the
 * edge crossings, ordered by angle about their mean. */
static void ref_corners(const float b[5], double p[4][2])
{
    double c = cos(b[4]), s = sin(b[4]);
    const double sx[4] = {1, -1, -1, 1}, sy[4] = {1, 1, -1, -1};
    for (int i = 0; i < 4; i++) {
        double lx = sx[i] * b[2] / 2, ly = sy[i] * b[3] / 2;
        p[i][0] = b[0] + c * lx - s * ly;
        p[i][1] = b[1] + s * lx + c * ly;
    }
}

static int ref_inside(const double q[4][2], const double v[2])
{
    for (int i = 0; i < 4; i++) {
        const double *a = q[i], *b = q[(i + 1) % 4];
        if ((b[0] - a[0]) * (v[1] - a[1]) - (b[1] - a[1]) * (v[0] - a[0]) < -1e-12)
            return 0;
    }
    return 1;
}

static double ref_iou(const float a[5], const float b[5])
{
    double pa[4][2], pb[4][2], pts[24][2];
    int n = 0;
    ref_corners(a, pa);
    ref_corners(b, pb);
    for (int i = 0; i < 4; i++) {
        if (ref_inside(pb, pa[i]))
            memcpy(pts[n++], pa[i], sizeof pts[0]);
        if (ref_inside(pa, pb[i]))
            memcpy(pts[n++], pb[i], sizeof pts[0]);
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            const double *p = pa[i], *p2 = pa[(i + 1) % 4], *q = pb[j], *q2 = pb[(j + 1) % 4];
            double rx = p2[0] - p[0], ry = p2[1] - p[1], sx = q2[0] - q[0], sy = q2[1] - q[1];
            double den = rx * sy - ry * sx;
            if (fabs(den) < 1e-15)
                continue;
            double t = ((q[0] - p[0]) * sy - (q[1] - p[1]) * sx) / den;
            double u = ((q[0] - p[0]) * ry - (q[1] - p[1]) * rx) / den;
            if (t >= 0 && t <= 1 && u >= 0 && u <= 1) {
                pts[n][0] = p[0] + t * rx;
                pts[n][1] = p[1] + t * ry;
                n++;
            }
        }
    if (n < 3)
        return 0;
    double mx = 0, my = 0;
    for (int i = 0; i < n; i++)
        mx += pts[i][0] / n, my += pts[i][1] / n;
    double ang[24];
    for (int i = 0; i < n; i++)
        ang[i] = atan2(pts[i][1] - my, pts[i][0] - mx);
    for (int i = 1; i < n; i++)   /* insertion sort by angle */
        for (int j = i; j > 0 && ang[j] < ang[j - 1]; j--) {
            double t = ang[j], x = pts[j][0], y = pts[j][1];
            ang[j] = ang[j - 1], pts[j][0] = pts[j - 1][0], pts[j][1] = pts[j - 1][1];
            ang[j - 1] = t, pts[j - 1][0] = x, pts[j - 1][1] = y;
        }
    double area = 0;
    for (int i = 0; i < n; i++)
        area += pts[i][0] * pts[(i + 1) % n][1] - pts[i][1] * pts[(i + 1) % n][0];
    area = fabs(area) / 2;
    return area / ((double)a[2] * a[3] + (double)b[2] * b[3] - area);
}

static void test_rotated_iou_random(void **state)
{
    (void)state;
    int overlapping = 0;
    for (int i = 0; i < 5000; i++) {
        float a[5] = {uni(-3, 3), uni(-3, 3), uni(0.3f, 6), uni(0.3f, 3), uni(-4, 4)};
        float b[5] = {a[0] + uni(-3, 3), a[1] + uni(-3, 3), uni(0.3f, 6), uni(0.3f, 3), uni(-4, 4)};
        if (i % 10 == 0)
            b[4] = a[4] + (float)(M_PI / 2) * (float)(rnd() % 4);   /* parallel edges */
        double want = ref_iou(a, b);
        overlapping += want > 0;
        expect_iou(a, b, want, 2e-6);
    }
    assert_true(overlapping > 1000);
}

/* ---- NMS -------------------------------------------------------------------- */

static void test_nms(void **state)
{
    (void)state;
    /* A; B overlaps A (IoU 7/9): suppressed; C overlaps B (0.6) but A only
     * 1/15: kept, because B was suppressed before it could suppress C */
    const float boxes[3 * 5] = {0, 0, 4, 2, 0,  0.5f, 0, 4, 2, 0,  3.5f, 0, 4, 2, 0};
    int32_t keep[3];
    assert_int_equal(l3d_nms_rotated(boxes, 3, 0.2f, keep), 2);
    assert_int_equal(keep[0], 0);
    assert_int_equal(keep[1], 2);
    /* a higher threshold keeps B too (7/9 < 0.8) */
    assert_int_equal(l3d_nms_rotated(boxes, 3, 0.8f, keep), 3);
    /* IoU exactly 0.2 does not suppress (strict), 0.2024 does */
    const float eq[2 * 5] = {0, 0, 3, 1, 0,  2, 0, 3, 1, 0};
    assert_int_equal(l3d_nms_rotated(eq, 2, 0.2f, keep), 2);
    const float over[2 * 5] = {0, 0, 3, 1, 0,  1.99f, 0, 3, 1, 0};
    assert_int_equal(l3d_nms_rotated(over, 2, 0.2f, keep), 1);
    /* rotated: the 45-degree square over the square (0.707) is suppressed */
    const float rot[2 * 5] = {0, 0, 2, 2, 0,  0, 0, 2, 2, 0.78539816f};
    assert_int_equal(l3d_nms_rotated(rot, 2, 0.2f, keep), 1);
    assert_int_equal(l3d_nms_rotated(rot, 0, 0.2f, keep), 0);
}

/* ---- top-k ------------------------------------------------------------------ */

static void test_topk(void **state)
{
    (void)state;
    const float v[6] = {0.5f, 0.9f, 0.5f, 0.9f, 0.1f, 0.5f};
    int64_t idx[6];
    assert_int_equal(l3d_topk(v, 6, 4, idx), 4);
    const int64_t want[4] = {1, 3, 0, 2};
    assert_memory_equal(idx, want, sizeof want);
    const float w[4] = {0.1f, NAN, 0.7f, NAN};
    assert_int_equal(l3d_topk(w, 4, 3, idx), 3);
    assert_true(idx[0] == 1 && idx[1] == 3 && idx[2] == 2);
    /* many ties: values 0..15; the reference lists indices value by value */
    enum { N = 20000, K = 1000 };
    float *x = malloc(N * sizeof(float));
    int64_t *got = malloc(K * sizeof(int64_t));
    assert_non_null(got);
    for (int i = 0; i < N; i++)
        x[i] = (float)(rnd() % 16) / 16.0f;
    assert_int_equal(l3d_topk(x, N, K, got), K);
    int64_t k = 0;
    for (int val = 15; val >= 0 && k < K; val--)
        for (int i = 0; i < N && k < K; i++)
            if (x[i] == (float)val / 16.0f) {
                if (got[k] != i)
                    fail_msg("top-k position %lld: index %lld, want %d", (long long)k,
                             (long long)got[k], i);
                k++;
            }
    free(x);
    free(got);
}

/* ---- the pipeline ------------------------------------------------------------ */

static float sig(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* Six 2x1x1 anchors at x = 0, 0.5, 10, 20, 30, 40 (rows 0, 1 overlap with
 * IoU 0.6), three classes. Scores (logit):
 *   row 0: c0 2.0,  c2 -1.5               row 3: c1 -1.0, dir label 1
 *   row 1: c0 1.0,  c1 0.5                row 4: c0 -2.9, c2 -3.0 (0.047 < 0.05)
 *   row 2: c2 0.0, decoded with deltas    row 5: c1 -2.9 (ties row 4's max score)
 * everything else -10. Row 4 decodes to yaw 3.0 with tied direction logits. */
typedef struct sample {
    float cls[6 * 3], reg[6 * 7], dir[6 * 2], an[6 * 7];
} sample;

static void make_sample(sample *s)
{
    const float xs[6] = {0, 0.5f, 10, 20, 30, 40};
    for (int n = 0; n < 6; n++) {
        const float a[7] = {xs[n], 0, 0, 2, 1, 1, 0};
        memcpy(s->an + 7 * n, a, sizeof a);
        for (int c = 0; c < 3; c++)
            s->cls[3 * n + c] = -10;
        for (int j = 0; j < 7; j++)
            s->reg[7 * n + j] = 0;
        s->dir[2 * n] = 1;
        s->dir[2 * n + 1] = 0;
    }
    s->cls[0] = 2.0f, s->cls[2] = -1.5f;
    s->cls[3] = 1.0f, s->cls[4] = 0.5f;
    s->cls[8] = 0.0f;
    s->cls[10] = -1.0f, s->dir[7] = 2;
    s->cls[12] = -2.9f, s->cls[14] = -3.0f, s->reg[7 * 4 + 6] = 3.0f, s->dir[9] = 1;
    s->cls[16] = -2.9f;
    const float d2[7] = {0.1f, 0, 0, (float)M_LN2, 0, 0, 0.5f};
    memcpy(s->reg + 14, d2, sizeof d2);
}

typedef struct want_box {
    int row, label;
    float logit;
} want_box;

static void expect_out(const sample *s, const float *boxes, const float *scores,
                       const int32_t *labels, int n, const want_box *w, int nw)
{
    assert_int_equal(n, nw);
    for (int i = 0; i < n; i++) {
        assert_int_equal(labels[i], w[i].label);
        assert_true(scores[i] == sig(w[i].logit));
        const float *a = s->an + 7 * w[i].row, *b = boxes + 7 * i;
        double want[7] = {a[0], a[1], a[2], a[3], a[4], a[5], 0};
        if (w[i].row == 2) {   /* deltas: x + 0.1 sqrt 5, dx * 2, yaw 0.5 */
            want[0] = 10 + 0.1 * sqrt(5.0);
            want[3] = 4;
            want[6] = 0.5;
        }
        if (w[i].row == 3)     /* direction label 1: yaw 0 + pi */
            want[6] = M_PI;
        if (w[i].row == 4)     /* yaw 3.0, label 0: folded to 3 - pi */
            want[6] = 3.0 - M_PI;
        for (int j = 0; j < 7; j++)
            if (fabs(b[j] - want[j]) > 1e-5)
                fail_msg("box %d (row %d) column %d: %.7g, want %.7g", i, w[i].row, j, b[j],
                         want[j]);
    }
}

static void test_pipeline(void **state)
{
    (void)state;
    sample s;
    make_sample(&s);
    float boxes[20 * 7], scores[20];
    int32_t labels[20];
    /* nms_pre 5 < 6 rows: rows 4 and 5 tie on max score, row 5 (higher index)
     * is dropped. Class 0: row 0 kept, row 1 suppressed (IoU 0.6), row 4 kept;
     * class 1: rows 1, 3 (row 1 survives here); class 2: rows 2, 0. */
    l3d_nms_config cfg = {5, 0.2f, 0.05f, 500};
    const want_box w5[] = {{0, 0, 2.0f}, {4, 0, -2.9f}, {1, 1, 0.5f},
                           {3, 1, -1.0f}, {2, 2, 0.0f}, {0, 2, -1.5f}};
    int n = l3d_postprocess(&cfg, s.cls, s.reg, s.dir, s.an, 6, 3, boxes, scores, labels);
    expect_out(&s, boxes, scores, labels, n, w5, 6);
    /* all rows (nms_pre 6, or off): row 5 joins class 1 */
    const want_box w6[] = {{0, 0, 2.0f}, {4, 0, -2.9f}, {1, 1, 0.5f}, {3, 1, -1.0f},
                           {5, 1, -2.9f}, {2, 2, 0.0f}, {0, 2, -1.5f}};
    for (int pre = 6; pre >= 0; pre -= 6) {
        cfg.nms_pre = pre;
        n = l3d_postprocess(&cfg, s.cls, s.reg, s.dir, s.an, 6, 3, boxes, scores, labels);
        expect_out(&s, boxes, scores, labels, n, w6, 7);
    }
    /* nms_pre 3 ranks rows by their best class: rows 0, 1, 2 */
    cfg.nms_pre = 3;
    const want_box w3[] = {{0, 0, 2.0f}, {1, 1, 0.5f}, {2, 2, 0.0f}, {0, 2, -1.5f}};
    n = l3d_postprocess(&cfg, s.cls, s.reg, s.dir, s.an, 6, 3, boxes, scores, labels);
    expect_out(&s, boxes, scores, labels, n, w3, 4);
    /* a NaN logit ranks first in the top-k (torch.max and topk) but is never a
     * candidate: row 5 then displaces row 4 */
    cfg.nms_pre = 5;
    s.cls[17] = NAN;
    const want_box wn[] = {{0, 0, 2.0f}, {1, 1, 0.5f}, {3, 1, -1.0f},
                           {5, 1, -2.9f}, {2, 2, 0.0f}, {0, 2, -1.5f}};
    n = l3d_postprocess(&cfg, s.cls, s.reg, s.dir, s.an, 6, 3, boxes, scores, labels);
    expect_out(&s, boxes, scores, labels, n, wn, 6);
    s.cls[17] = -10;
    cfg.nms_pre = 0;
    /* max_num 4: the four best by score, across classes */
    cfg.max_num = 4;
    const want_box w4[] = {{0, 0, 2.0f}, {1, 1, 0.5f}, {2, 2, 0.0f}, {3, 1, -1.0f}};
    n = l3d_postprocess(&cfg, s.cls, s.reg, s.dir, s.an, 6, 3, boxes, scores, labels);
    expect_out(&s, boxes, scores, labels, n, w4, 4);
    /* equal scores keep the class order when cut: give row 0 class 2 the same
     * logit as class 0, keep 1 */
    s.cls[2] = 2.0f;
    cfg.max_num = 2;
    const want_box w2[] = {{0, 0, 2.0f}, {0, 2, 2.0f}};
    n = l3d_postprocess(&cfg, s.cls, s.reg, s.dir, s.an, 6, 3, boxes, scores, labels);
    expect_out(&s, boxes, scores, labels, n, w2, 2);
    /* a stricter NMS threshold (0.7 > 0.6) keeps row 1 in class 0 */
    s.cls[2] = -1.5f;
    cfg = (l3d_nms_config){0, 0.7f, 0.05f, 500};
    n = l3d_postprocess(&cfg, s.cls, s.reg, s.dir, s.an, 6, 3, boxes, scores, labels);
    assert_int_equal(n, 8);
    assert_int_equal(labels[1], 0);
    assert_true(scores[1] == sig(1.0f));
}

/* The score threshold is strict: a logit whose float32 sigmoid is exactly
 * 0.05f is not a candidate, the next float up is. */
static void test_score_threshold(void **state)
{
    (void)state;
    float x = -2.9444389f;
    int found = 0;
    for (int i = 0; i < 2000 && !found; i++) {
        float y = x + (float)(i - 1000) * 1e-7f;
        if (sig(y) == 0.05f) {
            x = y;
            found = 1;
        }
    }
    if (!found) {
        printf("   no float32 logit has sigmoid exactly 0.05f here: strictness untested\n");
        return;
    }
    float up = x;
    while (!(sig(up) > 0.05f))
        up = nextafterf(up, 1.0f);
    const float an[7] = {0, 0, 0, 2, 1, 1, 0}, reg[7] = {0}, dir[2] = {0, 0};
    float box[7], score;
    int32_t label;
    l3d_nms_config cfg = L3D_NMS_CONFIG_SSN;
    assert_int_equal(l3d_postprocess(&cfg, &x, reg, dir, an, 1, 1, box, &score, &label), 0);
    assert_int_equal(l3d_postprocess(&cfg, &up, reg, dir, an, 1, 1, box, &score, &label), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotated_iou_by_hand), cmocka_unit_test(test_rotated_iou_random),
        cmocka_unit_test(test_nms),                 cmocka_unit_test(test_topk),
        cmocka_unit_test(test_pipeline),            cmocka_unit_test(test_score_threshold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
