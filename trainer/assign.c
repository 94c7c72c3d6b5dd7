/* MaxIoU target assignment; semantics in assign.h (spec §7.1).
 *
 * Per class: a dense best/arg array over the class's anchors (starting at IoU
 * 0, GT 0: what max() over a column of zeros gives), filled only inside each
 * GT's window of possibly overlapping anchors; the window is re-walked for
 * the low-quality step, recomputing the same IoUs bit for bit. */
#include "trainer/assign.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/box_coder.h"

/* Half extents along x and y of the nearest-BEV rectangle of box [7]. */
static void nearest_half(const float box[7], float *hx, float *hy)
{
    float phi = fabsf(l3d_limit_period(box[6], 0.5f, L3D_PI_F));
    /* np.pi / 4 meets a float32 tensor: compared as float32 */
    int swap = phi > (float)(3.14159265358979323846 / 4);
    *hx = (swap ? box[4] : box[3]) / 2.0f;
    *hy = (swap ? box[3] : box[4]) / 2.0f;
}

void l3d_nearest_bev(const float box[7], float rect[4])
{
    float hx, hy;
    nearest_half(box, &hx, &hy);
    rect[0] = box[0] - hx;
    rect[1] = box[1] - hy;
    rect[2] = box[0] + hx;
    rect[3] = box[1] + hy;
}

float l3d_rect_iou(const float a[4], const float b[4])
{
    float area_a = (a[2] - a[0]) * (a[3] - a[1]);
    float area_b = (b[2] - b[0]) * (b[3] - b[1]);
    float w = fminf(a[2], b[2]) - fmaxf(a[0], b[0]);
    float h = fminf(a[3], b[3]) - fmaxf(a[1], b[1]);
    w = w > 0.0f ? w : 0.0f;
    h = h > 0.0f ? h : 0.0f;
    float ov = w * h;
    float uni = area_a + area_b - ov;
    uni = fmaxf(uni, 1e-6f);
    return ov / uni;
}

/* The window [*lo, *hi] (inclusive; empty if lo > hi) of the sorted centres
 * c[n] whose extent [c - half, c + half] (float32, as l3d_nearest_bev rounds
 * it) overlaps (g1, g2) with positive length; outside it the float32 overlap
 * is <= 0 and the IoU exactly 0. */
static void window(const float *c, int n, float half, float g1, float g2, int *lo, int *hi)
{
    int a = 0, b = n;   /* first i with c[i] + half > g1 */
    while (a < b) {
        int m = a + (b - a) / 2;
        if (c[m] + half > g1)
            b = m;
        else
            a = m + 1;
    }
    *lo = a;
    a = 0, b = n;       /* first i with !(c[i] - half < g2) */
    while (a < b) {
        int m = a + (b - a) / 2;
        if (c[m] - half < g2)
            a = m + 1;
        else
            b = m;
    }
    *hi = a - 1;
}

typedef struct scratch {
    float *best;      /* [count] best IoU of each anchor of the class */
    int32_t *arg;     /* [count] its GT (local index) */
    int32_t *state;   /* [count] -1 ignored, 0 negative, g + 1 positive to g */
    float *xs, *ys;   /* [W], [H] anchor centres of the class */
    int32_t *gts;     /* [G] input indices of the class's GTs */
    float *grect;     /* [G][4] their nearest-BEV rectangles */
    float *gmax;      /* [G] best IoU of each */
} scratch;

/* Step 1 of the walk: best/arg of the anchors, gmax of the GT. */
#define WALK_BEST 0
/* Step 4: the low-quality override. */
#define WALK_LOW_QUALITY 1

/* Visits the anchors of class c in the window of local GT g, computing each
 * IoU exactly as the dense matrix would (same functions, same operands). */
static void walk(const l3d_anchor_class *c, const float *anchors, scratch *s, int g, int mode)
{
    const float *gr = s->grect + 4 * g;
    const int64_t hw = (int64_t)c->H * c->W;
    for (int r = 0; r < L3D_NUM_ROT; r++) {
        const float *block = anchors + (c->offset + r * hw) * 7;
        /* The block shares one size and yaw, so its half extents are those
         * of its first anchor, in the float32 of l3d_nearest_bev. */
        float halfx, halfy;
        nearest_half(block, &halfx, &halfy);
        int w0, w1, h0, h1;
        window(s->xs, c->W, halfx, gr[0], gr[2], &w0, &w1);
        window(s->ys, c->H, halfy, gr[1], gr[3], &h0, &h1);
        for (int h = h0; h <= h1; h++)
            for (int w = w0; w <= w1; w++) {
                int64_t n = r * hw + (int64_t)h * c->W + w;
                float rect[4];
                l3d_nearest_bev(anchors + (c->offset + n) * 7, rect);
                float iou = l3d_rect_iou(gr, rect);
                if (mode == WALK_BEST) {
                    if (iou > s->best[n]) {   /* strict: the first GT wins ties */
                        s->best[n] = iou;
                        s->arg[n] = g;
                    }
                    if (iou > s->gmax[g])
                        s->gmax[g] = iou;
                } else if (iou == s->gmax[g]) {
                    s->state[n] = g + 1;
                }
            }
    }
}

/* Writes the rows of class k from s->state (m = number of its GTs; m == 0:
 * all negative). Returns the positives. */
static int64_t write_class(const l3d_head_layout *L, int k, const float *anchors,
                           const float *gt, const scratch *s, int m, const l3d_ssn_targets *o)
{
    const l3d_anchor_class *c = &L->cls[k];
    int64_t npos = 0;
    for (int64_t n = 0; n < c->count; n++) {
        int64_t row = c->offset + n;
        int32_t st = m ? s->state[n] : 0;
        float *bt = o->bbox_targets + 7 * row;
        if (st > 0) {
            const float *a = anchors + 7 * row;
            l3d_box_encode(a, gt + 7 * (int64_t)s->gts[st - 1], bt);
            o->labels[row] = k;
            o->label_weights[row] = 1.0f;
            o->bbox_weights[row] = 1.0f;
            o->dir_targets[row] = l3d_dir_target(bt[6], a[6]);
            o->dir_weights[row] = 1.0f;
            npos++;
        } else {
            o->labels[row] = L->num_classes;
            o->label_weights[row] = st == 0 ? 1.0f : 0.0f;
            memset(bt, 0, 7 * sizeof(float));
            o->bbox_weights[row] = 0.0f;
            o->dir_targets[row] = 0;
            o->dir_weights[row] = 0.0f;
        }
    }
    return npos;
}

static int64_t assign_class(const l3d_head_layout *L, int k, const float *anchors,
                            const float *gt, const int32_t *gt_label, int G, scratch *s,
                            const l3d_ssn_targets *o)
{
    const l3d_anchor_class *c = &L->cls[k];
    int m = 0;
    for (int i = 0; i < G; i++) {
        if (gt_label[i] != k)
            continue;
        float *gr = s->grect + 4 * m;
        l3d_nearest_bev(gt + 7 * (int64_t)i, gr);
        if (!isfinite(gr[0]) || !isfinite(gr[1]) || !isfinite(gr[2]) || !isfinite(gr[3]))
            continue;   /* a NaN box would make torch's max NaN: we drop it */
        s->gts[m] = i;
        s->gmax[m] = 0.0f;
        m++;
    }
    if (m == 0)
        return write_class(L, k, anchors, gt, s, 0, o);

    for (int w = 0; w < c->W; w++)
        s->xs[w] = anchors[(c->offset + w) * 7 + 0];
    for (int h = 0; h < c->H; h++)
        s->ys[h] = anchors[(c->offset + (int64_t)h * c->W) * 7 + 1];
    memset(s->best, 0, (size_t)c->count * sizeof(float));
    memset(s->arg, 0, (size_t)c->count * sizeof(int32_t));
    for (int g = 0; g < m; g++)
        walk(c, anchors, s, g, WALK_BEST);
    for (int64_t n = 0; n < c->count; n++) {
        float b = s->best[n];
        int32_t st = -1;
        if (b >= 0.0f && b < c->neg_thr)
            st = 0;
        if (b >= c->pos_thr)
            st = s->arg[n] + 1;
        s->state[n] = st;
    }
    for (int g = 0; g < m; g++)
        if (s->gmax[g] >= c->min_pos)
            walk(c, anchors, s, g, WALK_LOW_QUALITY);
    return write_class(L, k, anchors, gt, s, m, o);
}

int64_t l3d_assign_targets(const l3d_head_layout *L, const float *anchors, const float *gt,
                           const int32_t *gt_label, int G, const l3d_ssn_targets *out)
{
    int64_t maxc = 0;
    int maxw = 0, maxh = 0;
    for (int k = 0; k < L->num_classes; k++) {
        if (L->cls[k].count > maxc)
            maxc = L->cls[k].count;
        maxw = L->cls[k].W > maxw ? L->cls[k].W : maxw;
        maxh = L->cls[k].H > maxh ? L->cls[k].H : maxh;
    }
    size_t ng = G > 0 ? (size_t)G : 1;
    scratch s;
    s.best = malloc((size_t)maxc * sizeof(float));
    s.arg = malloc((size_t)maxc * sizeof(int32_t));
    s.state = malloc((size_t)maxc * sizeof(int32_t));
    s.xs = malloc((size_t)maxw * sizeof(float));
    s.ys = malloc((size_t)maxh * sizeof(float));
    s.gts = malloc(ng * sizeof(int32_t));
    s.grect = malloc(ng * 4 * sizeof(float));
    s.gmax = malloc(ng * sizeof(float));
    int64_t npos = -1;
    if (s.best && s.arg && s.state && s.xs && s.ys && s.gts && s.grect && s.gmax) {
        npos = 0;
        for (int k = 0; k < L->num_classes; k++)
            npos += assign_class(L, k, anchors, gt, gt_label, G, &s, out);
    }
    free(s.best);
    free(s.arg);
    free(s.state);
    free(s.xs);
    free(s.ys);
    free(s.gts);
    free(s.grect);
    free(s.gmax);
    return npos;
}

int64_t l3d_num_total_pos(const int64_t *P, int B)
{
    int64_t t = 0;
    for (int b = 0; b < B; b++)
        t += P[b] > 1 ? P[b] : 1;
    return t;
}
