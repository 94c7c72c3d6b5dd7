/* SSN training losses on the CPU: spec ssn-model.md §8 (mmdet FocalLoss with
 * mmcv's sigmoid_focal_loss CUDA kernel, SmoothL1 with diff_rad_by_sin,
 * CrossEntropy on the direction bins).
 *
 * Rows: R = B * N anchors of a batch, image-major, as the targets are stacked.
 * All three losses are divided by D = num_total_pos + FLT_EPSILON (double),
 * num_total_pos = sum over samples of max(positives, 1).
 *
 * Per element the forward and gradient formulas are evaluated in float32 as
 * the CUDA kernels / PyTorch do; sums are accumulated in double in row order
 * (single thread), so results do not depend on anything but the inputs. */
#ifndef LIDAR3D_KERNELS_CPU_SSN_LOSSES_H
#define LIDAR3D_KERNELS_CPU_SSN_LOSSES_H

#include <stdint.h>

#define L3D_FOCAL_GAMMA 2.0f
#define L3D_FOCAL_ALPHA 0.25f
#define L3D_SMOOTH_L1_BETA ((float)(1.0 / 9.0))
#define L3D_DIR_LOSS_WEIGHT 0.2f

/* Per-row training targets (spec §7.1 table), for R rows. The assigner fills
 * them (trainer/assign.h); the losses only read them. */
typedef struct l3d_ssn_targets {
    int32_t *labels;       /* [R] 0..C-1 positive class, C = background */
    float *label_weights;  /* [R] 1 positive or negative, 0 ignored */
    float *bbox_targets;   /* [R][7] encoded box (positives), else 0 */
    float *bbox_weights;   /* [R] 1 positives, else 0: one weight for all 7
                            * columns (code_weight is all 1.0 for SSN) */
    int32_t *dir_targets;  /* [R] direction bin 0/1 (positives), else 0 */
    float *dir_weights;    /* [R] 1 positives, else 0 */
} l3d_ssn_targets;

/* Allocates the six arrays for R rows (all or nothing); returns 0 or -1. */
int l3d_ssn_targets_alloc(l3d_ssn_targets *t, int64_t R);
void l3d_ssn_targets_free(l3d_ssn_targets *t);

/* The same targets seen from row `row` on (sample b of a batch: row = b * N). */
static inline l3d_ssn_targets l3d_ssn_targets_at(const l3d_ssn_targets *t, int64_t row)
{
    l3d_ssn_targets s = {t->labels + row, t->label_weights + row, t->bbox_targets + 7 * row,
                         t->bbox_weights + row, t->dir_targets + row, t->dir_weights + row};
    return s;
}

typedef struct l3d_ssn_loss {
    double cls, bbox, dir;   /* already divided by D; dir includes its 0.2 */
    double total;            /* cls + bbox + dir */
} l3d_ssn_loss;

/* Sigmoid focal loss (gamma 2, alpha 0.25), C classes.
 * logits [R][C]; t->labels, t->label_weights. Returns
 * sum_n w[n] sum_c l(n, c) / D. */
double l3d_focal_loss_forward(const float *logits, int64_t R, int C, const l3d_ssn_targets *t,
                              double num_total_pos);
/* dlogits [R][C] = w[n] / D * (kernel gradient), assigned. */
void l3d_focal_loss_backward(const float *logits, int64_t R, int C, const l3d_ssn_targets *t,
                             double num_total_pos, float *dlogits);

/* SmoothL1 (beta 1/9) with diff_rad_by_sin on column 6: u = sin(p6) cos(t6),
 * v = cos(p6) sin(t6), both from the prediction p6.
 * pred [R][7]; t->bbox_targets, t->bbox_weights. */
double l3d_smooth_l1_forward(const float *pred, int64_t R, const l3d_ssn_targets *t,
                             double num_total_pos);
/* dpred [R][7], assigned; column 6 gets the gradient through both products. */
void l3d_smooth_l1_backward(const float *pred, int64_t R, const l3d_ssn_targets *t,
                            double num_total_pos, float *dpred);

/* Softmax cross-entropy over 2 direction bins, times 0.2.
 * dir_logits [R][2]; t->dir_targets, t->dir_weights. */
double l3d_dir_loss_forward(const float *dir_logits, int64_t R, const l3d_ssn_targets *t,
                            double num_total_pos);
/* ddir [R][2] = 0.2 w / D (softmax - onehot), assigned. */
void l3d_dir_loss_backward(const float *dir_logits, int64_t R, const l3d_ssn_targets *t,
                           double num_total_pos, float *ddir);

/* All three. cls [R][C], bbox [R][7], dir [R][2]. */
l3d_ssn_loss l3d_ssn_loss_forward(const float *cls, const float *bbox, const float *dir,
                                  int64_t R, int C, const l3d_ssn_targets *t,
                                  double num_total_pos);
/* dcls [R][C], dbbox [R][7], ddir [R][2], assigned (gradients of the total). */
void l3d_ssn_loss_backward(const float *cls, const float *bbox, const float *dir, int64_t R,
                           int C, const l3d_ssn_targets *t, double num_total_pos, float *dcls,
                           float *dbbox, float *ddir);

#endif
