/* SSN inference post-processing; semantics in postprocess.h (spec §9). */
#include "trainer/postprocess.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/box_coder.h"

/* ---- rotated IoU ----------------------------------------------------------- */

/* Corners of b [5] relative to (cx, cy), counter-clockwise for dx, dy > 0. */
static void corners(const float b[5], double cx, double cy, double p[4][2])
{
    double x = (double)b[0] - cx, y = (double)b[1] - cy;
    double c = cos((double)b[4]), s = sin((double)b[4]);
    double hx = (double)b[2] / 2, hy = (double)b[3] / 2;
    static const double sx[4] = {1, -1, -1, 1}, sy[4] = {1, 1, -1, -1};
    for (int i = 0; i < 4; i++) {
        double lx = sx[i] * hx, ly = sy[i] * hy;
        p[i][0] = x + c * lx - s * ly;
        p[i][1] = y + s * lx + c * ly;
    }
}

/* Side of v relative to the directed line p -> q: > 0 left (inside of a
 * counter-clockwise polygon). */
static double side(const double p[2], const double q[2], const double v[2])
{
    return (q[0] - p[0]) * (v[1] - p[1]) - (q[1] - p[1]) * (v[0] - p[0]);
}

/* Area of the intersection of two convex counter-clockwise quadrilaterals:
 * Sutherland-Hodgman clipping of a by each edge of b (8 vertices at most in
 * exact arithmetic; the buffers also hold what rounding could produce),
 * then the shoelace formula. */
static double intersection_area(double a[4][2], double b[4][2])
{
    double poly[64][2], next[64][2];   /* each clip at most doubles: 4, 8, .., 64 */
    int n = 4;
    memcpy(poly, a, sizeof(double[4][2]));
    for (int e = 0; e < 4 && n > 0; e++) {
        const double *p = b[e], *q = b[(e + 1) % 4];
        int m = 0;
        for (int i = 0; i < n; i++) {
            const double *u = poly[i], *v = poly[(i + 1) % n];
            double su = side(p, q, u), sv = side(p, q, v);
            if (su >= 0) {
                next[m][0] = u[0];
                next[m][1] = u[1];
                m++;
            }
            if ((su >= 0) != (sv >= 0)) {   /* the edge u -> v crosses the line */
                double t = su / (su - sv);
                next[m][0] = u[0] + t * (v[0] - u[0]);
                next[m][1] = u[1] + t * (v[1] - u[1]);
                m++;
            }
        }
        n = m;
        memcpy(poly, next, (size_t)n * sizeof poly[0]);
    }
    double area = 0;
    for (int i = 0; i < n; i++) {
        const double *u = poly[i], *v = poly[(i + 1) % n];
        area += u[0] * v[1] - u[1] * v[0];
    }
    return fabs(area) / 2;
}

float l3d_rotated_iou(const float a[5], const float b[5])
{
    double area_a = (double)a[2] * a[3], area_b = (double)b[2] * b[3];
    if (!(area_a >= 1e-14) || !(area_b >= 1e-14))
        return 0.0f;
    double cx = ((double)a[0] + b[0]) / 2, cy = ((double)a[1] + b[1]) / 2;
    double pa[4][2], pb[4][2];
    corners(a, cx, cy, pa);
    corners(b, cx, cy, pb);
    double inter = intersection_area(pa, pb);
    return (float)(inter / (area_a + area_b - inter));
}

int l3d_nms_rotated(const float *boxes, int n, float thr, int32_t *keep)
{
    unsigned char *removed = calloc(n > 0 ? (size_t)n : 1, 1);
    if (!removed)
        return -1;
    int nk = 0;
    for (int i = 0; i < n; i++) {
        if (removed[i])
            continue;
        keep[nk++] = i;
        const float *bi = boxes + 5 * i;
        /* Boxes farther apart than their half diagonals cannot overlap: IoU 0,
         * which suppresses only when thr < 0. */
        double ri = hypot(bi[2], bi[3]) / 2;
        for (int j = i + 1; j < n; j++) {
            if (removed[j])
                continue;
            const float *bj = boxes + 5 * j;
            double rj = hypot(bj[2], bj[3]) / 2;
            double d = hypot((double)bi[0] - bj[0], (double)bi[1] - bj[1]);
            float iou = (thr >= 0 && d > ri + rj) ? 0.0f : l3d_rotated_iou(bi, bj);
            if (iou > thr)
                removed[j] = 1;
        }
    }
    free(removed);
    return nk;
}

/* ---- top-k ----------------------------------------------------------------- */

typedef struct kv {
    float s;
    int64_t i;
} kv;

/* a ranks before b: NaN first, then larger value, then lower index. */
static int before(kv a, kv b)
{
    int an = isnan(a.s), bn = isnan(b.s);
    if (an != bn)
        return an;
    if (!an && a.s != b.s)
        return a.s > b.s;
    return a.i < b.i;
}

static int cmp_kv(const void *x, const void *y)
{
    kv a = *(const kv *)x, b = *(const kv *)y;
    return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

/* Min-heap (root ranks last) of the best k seen so far. */
static void sift_down(kv *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && before(h[w], h[l]))
            w = l;
        if (r < n && before(h[w], h[r]))
            w = r;
        if (w == i)
            return;
        kv t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

int l3d_topk(const float *v, int64_t n, int k, int64_t *idx)
{
    if (k <= 0)
        return 0;
    if (k > n)
        k = (int)n;
    kv *h = malloc((size_t)k * sizeof *h);
    if (!h)
        return -1;
    for (int i = 0; i < k; i++)
        h[i] = (kv){v[i], i};
    for (int i = k / 2 - 1; i >= 0; i--)
        sift_down(h, k, i);
    for (int64_t i = k; i < n; i++) {
        kv x = {v[i], i};
        if (before(x, h[0])) {
            h[0] = x;
            sift_down(h, k, 0);
        }
    }
    qsort(h, (size_t)k, sizeof *h, cmp_kv);
    for (int i = 0; i < k; i++)
        idx[i] = h[i].i;
    free(h);
    return k;
}

/* ---- the pipeline ---------------------------------------------------------- */

static inline float sigmoidf(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

typedef struct det {
    int64_t row;    /* position among the M selected rows */
    int64_t pos;    /* position in the class-by-class concatenation */
    int label;
    float score;
} det;

/* descending score, then concatenation order (a stable sort) */
static int cmp_det(const void *x, const void *y)
{
    const det *a = x, *b = y;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* The BEV box of a decoded box [7] after MMDetection3D's float32 round trip
 * (x, y, dx, dy, yaw) -> (x1, y1, x2, y2, yaw) -> centre and size again. */
static void bev_round_trip(const float b[7], float out[5])
{
    float hw = b[3] / 2.0f, hh = b[4] / 2.0f;
    float x1 = b[0] - hw, y1 = b[1] - hh, x2 = b[0] + hw, y2 = b[1] + hh;
    out[0] = (x1 + x2) / 2.0f;
    out[1] = (y1 + y2) / 2.0f;
    out[2] = x2 - x1;
    out[3] = y2 - y1;
    out[4] = b[6];
}

/* Per-call buffers, carved out of one allocation (8-byte members first). */
typedef struct work {
    int64_t *rows;   /* [M] selected anchor rows */
    kv *cand;        /* [M] one class's candidates */
    float *sc;       /* [M][C] sigmoid scores */
    float *dec;      /* [M][7] decoded boxes */
    float *bev;      /* [M][5] NMS boxes */
    float *cb;       /* [M][5] one class's NMS boxes in order */
    int32_t *dl;     /* [M] direction labels */
    int32_t *keep;   /* [M] */
    det *res;        /* survivors, growing (own allocation) */
    size_t nres, cap;
} work;

static void *work_alloc(work *w, size_t M, int C)
{
    char *p = malloc(M * (sizeof(int64_t) + sizeof(kv) + (size_t)(C + 17) * sizeof(float) +
                          2 * sizeof(int32_t)));
    if (!p)
        return NULL;
    w->rows = (int64_t *)p;
    w->cand = (kv *)(w->rows + M);
    w->sc = (float *)(w->cand + M);
    w->dec = w->sc + M * (size_t)C;
    w->bev = w->dec + 7 * M;
    w->cb = w->bev + 5 * M;
    w->dl = (int32_t *)(w->cb + 5 * M);
    w->keep = w->dl + M;
    return p;
}

/* Selects the rows (top-k by max score, or all), scores, decodes. */
static int select_rows(const float *cls, const float *reg, const float *dir,
                       const float *anchors, int64_t N, int C, int64_t M, work *w)
{
    if (M < N) {
        float *mx = malloc((size_t)N * sizeof(float));
        if (!mx)
            return -1;
        /* max_c sigmoid(x_c) == sigmoid(max_c x_c): float32 sigmoid is
         * monotone, so one expf per row; NaN propagates as in torch.max */
        for (int64_t n = 0; n < N; n++) {
            float m = cls[n * C];
            for (int c = 1; c < C; c++)
                if (cls[n * C + c] > m || isnan(cls[n * C + c]))
                    m = cls[n * C + c];
            mx[n] = sigmoidf(m);
        }
        int k = l3d_topk(mx, N, (int)M, w->rows);
        free(mx);
        if (k < 0)
            return -1;
    } else {
        for (int64_t j = 0; j < M; j++)
            w->rows[j] = j;
    }
    for (int64_t j = 0; j < M; j++) {
        int64_t n = w->rows[j];
        for (int c = 0; c < C; c++)
            w->sc[j * C + c] = sigmoidf(cls[n * C + c]);
        l3d_box_decode(anchors + 7 * n, reg + 7 * n, w->dec + 7 * j);
        bev_round_trip(w->dec + 7 * j, w->bev + 5 * j);
        w->dl[j] = dir[2 * n + 1] > dir[2 * n] ? 1 : 0;   /* argmax, first on ties */
    }
    return 0;
}

/* Per-class NMS; survivors appended to w->res in class order. */
static int nms_class(const l3d_nms_config *cfg, int C, int c, int64_t M, work *w)
{
    int nc = 0;
    for (int64_t j = 0; j < M; j++)
        if (w->sc[j * C + c] > cfg->score_thr)
            w->cand[nc++] = (kv){w->sc[j * C + c], j};
    qsort(w->cand, (size_t)nc, sizeof(kv), cmp_kv);
    for (int i = 0; i < nc; i++)
        memcpy(w->cb + 5 * i, w->bev + 5 * w->cand[i].i, 5 * sizeof(float));
    int nk = l3d_nms_rotated(w->cb, nc, cfg->nms_thr, w->keep);
    if (nk < 0)
        return -1;
    if (w->nres + (size_t)nk > w->cap) {
        size_t cap = w->cap ? w->cap : 1024;
        while (cap < w->nres + (size_t)nk)
            cap *= 2;
        det *r = realloc(w->res, cap * sizeof(det));
        if (!r)
            return -1;
        w->res = r;
        w->cap = cap;
    }
    for (int i = 0; i < nk; i++) {
        const kv *k = &w->cand[w->keep[i]];
        w->res[w->nres] = (det){k->i, (int64_t)w->nres, c, k->s};
        w->nres++;
    }
    return 0;
}

int l3d_postprocess(const l3d_nms_config *cfg, const float *cls, const float *reg,
                    const float *dir, const float *anchors, int64_t N, int C, float *boxes,
                    float *scores, int32_t *labels)
{
    int64_t M = (cfg->nms_pre > 0 && N > cfg->nms_pre) ? cfg->nms_pre : N;
    if (M > INT32_MAX / 2)
        return -1;   /* NMS positions are int */
    work w = {0};
    void *block = work_alloc(&w, M > 0 ? (size_t)M : 1, C);
    int rc = -1;
    if (!block || select_rows(cls, reg, dir, anchors, N, C, M, &w))
        goto out;
    for (int c = 0; c < C; c++)
        if (nms_class(cfg, C, c, M, &w))
            goto out;
    size_t n = w.nres;
    size_t max_num = cfg->max_num > 0 ? (size_t)cfg->max_num : 0;
    if (n > max_num) {
        qsort(w.res, n, sizeof(det), cmp_det);
        n = max_num;
    }
    for (size_t i = 0; i < n; i++) {
        const det *d = &w.res[i];
        memcpy(boxes + 7 * i, w.dec + 7 * d->row, 7 * sizeof(float));
        boxes[7 * i + 6] = l3d_dir_fix(boxes[7 * i + 6], w.dl[d->row]);
        scores[i] = d->score;
        labels[i] = d->label;
    }
    rc = (int)n;
out:
    free(w.res);
    free(block);
    return rc;
}
