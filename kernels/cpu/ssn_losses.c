/* SSN losses on the CPU; semantics in ssn_losses.h (spec §8).
 *
 * Per element everything is float32 in the order of the reference code (the
 * mmcv sigmoid_focal_loss CUDA kernel, mmdet smooth_l1_loss, PyTorch
 * log_softmax), so a row's loss and gradient are what MMDetection3D stores;
 * only the reductions are done in double. Elements with weight 0 are still
 * evaluated and multiplied by 0, as PyTorch does: a NaN or infinite prediction
 * in an ignored row therefore still poisons the loss, which is what we want a
 * diverging run to show. */
#include "kernels/cpu/ssn_losses.h"

#include <stdlib.h>

#include <float.h>
#include <math.h>

static double denom(double num_total_pos)
{
    return num_total_pos + FLT_EPSILON;
}

/* ---- sigmoid focal loss ----------------------------------------------------
 * gamma is fixed at 2, so pow(q, gamma) is q * q (exact for the kernel's
 * pow(q, 2.0f) up to its last-bit rounding). */

static inline float sigmoidf(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* The kernel's l(n, c): -alpha (1-p)^2 log(max(p, FLT_MIN)) for the target
 * class, -(1-alpha) p^2 log(max(1-p, FLT_MIN)) otherwise. */
static inline float focal_elem(float x, int positive)
{
    float p = sigmoidf(x);
    if (positive) {
        float q = 1.0f - p;
        return -L3D_FOCAL_ALPHA * (q * q * logf(fmaxf(p, FLT_MIN)));
    }
    float q = 1.0f - p;
    return -(1.0f - L3D_FOCAL_ALPHA) * (p * p * logf(fmaxf(q, FLT_MIN)));
}

/* The kernel's gradient dl/dx: -alpha (1-p)^2 (1 - p - gamma p log p) for the
 * target class, -(1-alpha) p^2 (gamma (1-p) log(1-p) - p) otherwise (logs of
 * max(., FLT_MIN)). */
static inline float focal_grad(float x, int positive)
{
    float p = sigmoidf(x);
    float q = 1.0f - p;
    if (positive)
        return -L3D_FOCAL_ALPHA *
               (q * q * (q - L3D_FOCAL_GAMMA * p * logf(fmaxf(p, FLT_MIN))));
    return -(1.0f - L3D_FOCAL_ALPHA) *
           (p * p * (L3D_FOCAL_GAMMA * q * logf(fmaxf(q, FLT_MIN)) - p));
}

double l3d_focal_loss_forward(const float *logits, int64_t R, int C, const l3d_ssn_targets *t,
                              double num_total_pos)
{
    double sum = 0;
    for (int64_t n = 0; n < R; n++) {
        const float *x = logits + n * C;
        float w = t->label_weights[n];
        int32_t label = t->labels[n];
        for (int c = 0; c < C; c++)
            sum += (double)(focal_elem(x[c], label == c) * w);
    }
    return sum / denom(num_total_pos);
}

void l3d_focal_loss_backward(const float *logits, int64_t R, int C, const l3d_ssn_targets *t,
                             double num_total_pos, float *dlogits)
{
    float inv_d = (float)(1.0 / denom(num_total_pos));
    for (int64_t n = 0; n < R; n++) {
        const float *x = logits + n * C;
        float *dx = dlogits + n * C;
        float go = inv_d * t->label_weights[n];
        int32_t label = t->labels[n];
        for (int c = 0; c < C; c++)
            dx[c] = focal_grad(x[c], label == c) * go;
    }
}

/* ---- SmoothL1 with diff_rad_by_sin ---------------------------------------- */

/* u, v of column j: the raw values, or for the angle sin(p6) cos(t6) and
 * cos(p6) sin(t6) (add_sin_difference: both from the prediction). */
static inline void smooth_l1_operands(const float *p, const float *tg, int j, float *u,
                                      float *v)
{
    if (j == 6) {
        *u = sinf(p[6]) * cosf(tg[6]);
        *v = cosf(p[6]) * sinf(tg[6]);
    } else {
        *u = p[j];
        *v = tg[j];
    }
}

double l3d_smooth_l1_forward(const float *pred, int64_t R, const l3d_ssn_targets *t,
                             double num_total_pos)
{
    const float beta = L3D_SMOOTH_L1_BETA, half_beta = (float)(0.5 / 9.0);
    double sum = 0;
    for (int64_t n = 0; n < R; n++) {
        const float *p = pred + 7 * n, *tg = t->bbox_targets + 7 * n;
        float w = t->bbox_weights[n];
        for (int j = 0; j < 7; j++) {
            float u, v;
            smooth_l1_operands(p, tg, j, &u, &v);
            float e = fabsf(u - v);
            float l = e < beta ? 0.5f * e * e / beta : e - half_beta;
            sum += (double)(l * w);
        }
    }
    return sum / denom(num_total_pos);
}

void l3d_smooth_l1_backward(const float *pred, int64_t R, const l3d_ssn_targets *t,
                            double num_total_pos, float *dpred)
{
    const float beta = L3D_SMOOTH_L1_BETA;
    float inv_d = (float)(1.0 / denom(num_total_pos));
    for (int64_t n = 0; n < R; n++) {
        const float *p = pred + 7 * n, *tg = t->bbox_targets + 7 * n;
        float *dp = dpred + 7 * n;
        float go = inv_d * t->bbox_weights[n];
        for (int j = 0; j < 7; j++) {
            float u, v;
            smooth_l1_operands(p, tg, j, &u, &v);
            float d = u - v;
            /* d/du of the loss: (u - v) / beta inside, sign(u - v) outside
             * (abs' is 0 at 0, as in autograd) */
            float gu = fabsf(d) < beta ? d / beta : (d > 0 ? 1.0f : d < 0 ? -1.0f : 0.0f);
            gu *= go;
            if (j < 6) {
                dp[j] = gu;
            } else {
                /* u = sin(p6) cos(t6), v = cos(p6) sin(t6); dv = -du. Two paths,
                 * summed, like autograd: cos(p6 - t6) overall. */
                float from_u = gu * cosf(tg[6]) * cosf(p[6]);
                float from_v = -gu * sinf(tg[6]) * -sinf(p[6]);
                dp[6] = from_u + from_v;
            }
        }
    }
}

/* ---- direction cross-entropy ---------------------------------------------- */

/* log_softmax of 2 logits as PyTorch computes it: x - max - log(sum exp(x - max)). */
static inline void log_softmax2(const float *z, float out[2])
{
    float m = fmaxf(z[0], z[1]);
    float s = logf(expf(z[0] - m) + expf(z[1] - m));
    out[0] = z[0] - m - s;
    out[1] = z[1] - m - s;
}

double l3d_dir_loss_forward(const float *dir_logits, int64_t R, const l3d_ssn_targets *t,
                            double num_total_pos)
{
    double sum = 0;
    for (int64_t n = 0; n < R; n++) {
        float ls[2];
        log_softmax2(dir_logits + 2 * n, ls);
        int b = t->dir_targets[n] != 0;
        sum += (double)(-ls[b] * t->dir_weights[n]);
    }
    return L3D_DIR_LOSS_WEIGHT * (sum / denom(num_total_pos));
}

void l3d_dir_loss_backward(const float *dir_logits, int64_t R, const l3d_ssn_targets *t,
                           double num_total_pos, float *ddir)
{
    float scale = (float)(L3D_DIR_LOSS_WEIGHT / denom(num_total_pos));
    for (int64_t n = 0; n < R; n++) {
        float ls[2];
        log_softmax2(dir_logits + 2 * n, ls);
        int b = t->dir_targets[n] != 0;
        float go = scale * t->dir_weights[n];
        for (int j = 0; j < 2; j++)
            ddir[2 * n + j] = go * (expf(ls[j]) - (j == b ? 1.0f : 0.0f));
    }
}

/* ---- all three ------------------------------------------------------------ */

l3d_ssn_loss l3d_ssn_loss_forward(const float *cls, const float *bbox, const float *dir,
                                  int64_t R, int C, const l3d_ssn_targets *t,
                                  double num_total_pos)
{
    l3d_ssn_loss l;
    l.cls = l3d_focal_loss_forward(cls, R, C, t, num_total_pos);
    l.bbox = l3d_smooth_l1_forward(bbox, R, t, num_total_pos);
    l.dir = l3d_dir_loss_forward(dir, R, t, num_total_pos);
    l.total = l.cls + l.bbox + l.dir;
    return l;
}

void l3d_ssn_loss_backward(const float *cls, const float *bbox, const float *dir, int64_t R,
                           int C, const l3d_ssn_targets *t, double num_total_pos, float *dcls,
                           float *dbbox, float *ddir)
{
    l3d_focal_loss_backward(cls, R, C, t, num_total_pos, dcls);
    l3d_smooth_l1_backward(bbox, R, t, num_total_pos, dbbox);
    l3d_dir_loss_backward(dir, R, t, num_total_pos, ddir);
}

int l3d_ssn_targets_alloc(l3d_ssn_targets *t, int64_t R)
{
    size_t n = (size_t)(R > 0 ? R : 1);
    t->labels = malloc(n * sizeof *t->labels);
    t->label_weights = malloc(n * sizeof *t->label_weights);
    t->bbox_targets = malloc(n * 7 * sizeof *t->bbox_targets);
    t->bbox_weights = malloc(n * sizeof *t->bbox_weights);
    t->dir_targets = malloc(n * sizeof *t->dir_targets);
    t->dir_weights = malloc(n * sizeof *t->dir_weights);
    if (t->labels && t->label_weights && t->bbox_targets && t->bbox_weights && t->dir_targets &&
        t->dir_weights)
        return 0;
    l3d_ssn_targets_free(t);
    return -1;
}

void l3d_ssn_targets_free(l3d_ssn_targets *t)
{
    free(t->labels);
    free(t->label_weights);
    free(t->bbox_targets);
    free(t->bbox_weights);
    free(t->dir_targets);
    free(t->dir_weights);
    t->labels = t->dir_targets = NULL;
    t->label_weights = t->bbox_targets = t->bbox_weights = t->dir_weights = NULL;
}
