/* AdamW, the learning-rate schedule and gradient accumulation, as MMDet3D's
 * SSN config runs them (spec ssn-model.md §10.1).
 *
 * AdamW is torch.optim.AdamW (amsgrad off, maximize off). For step t (1-based)
 * and learning rate lr, per element, in float32, with the scalars formed in
 * double and rounded to float as PyTorch's kernels do:
 *     w  = w * (float)(1 - lr*wd)                     decoupled weight decay first
 *     m  = fmaf((float)(1-b1), g - m, m)              exp_avg.lerp_(g, 1-b1)
 *     v  = v * (float)b2
 *     v  = fmaf((float)(1-b2), g*g, v)                exp_avg_sq.addcmul_(g, g, 1-b2)
 *     d  = sqrtf(v) / (float)sqrt(1 - b2^t) + (float)eps
 *     w  = fmaf((float)(-lr / (1 - b1^t)), m / d, w)  param.addcdiv_(m, d, -step_size)
 * This is the operation order of PyTorch's multi-tensor (foreach) path, which
 * the CUDA reference run takes; its kernels are compiled with FMA contraction,
 * hence the explicit fmaf, which the CUDA twin must use too (__fmaf_rn). The
 * single-tensor CPU path rounds some of these differently (about one ulp of w
 * per step). Our C is compiled with -std=c11, so GCC does not contract on its
 * own (-ffp-contract=off in ISO mode) and results do not depend on -O levels.
 *
 * Schedule: MMEngine LinearLR (iteration based, begin 0, end E_w, start factor
 * s, end factor 1, total_iters = E_w - 1) chained with MultiStepLR (epoch
 * milestones converted to iterations, gamma). l3d_lr_at replays MMEngine's
 * chainable recursion in double, so the value is the one MMEngine stores in
 * param_group['lr'] for that iteration, to the last bit:
 *     lr_0 = base * s;   lr_i = lr_{i-1} * (1 + (1-s) / (T*s + (i-1)*(1-s)))  for 1 <= i < E_w
 *     lr_i *= gamma at every milestone iteration (epoch x iters_per_epoch)
 * (factor s + (1-s)·i/T in closed form: exactly 1 at i = T = 999). */
#ifndef LIDAR3D_TRAINER_OPTIM_H
#define LIDAR3D_TRAINER_OPTIM_H

#include <stddef.h>
#include <stdint.h>
#include "trainer/params.h"

typedef struct l3d_adamw {
    double beta1, beta2, eps, weight_decay;
    int64_t step;                  /* updates applied (PyTorch state['step']); skipped
                                      steps of loss scaling do not count */
} l3d_adamw;

/* betas (0.9, 0.999), eps 1e-8, weight decay 0.01, step 0 (spec §10.1). */
void l3d_adamw_init(l3d_adamw *o);

/* One update of n elements with bias corrections for step t >= 1; w, m, v are
 * updated in place. */
void l3d_adamw_update(const l3d_adamw *o, double lr, int64_t t, float *w, const float *g,
                      float *m, float *v, size_t n);

/* o->step += 1, then one update of the whole arena. With p->master (fp16
 * mode) the fp32 master weights are updated and p->param receives them
 * rounded to fp16, as the GPU copies master -> fp16 weights. */
void l3d_adamw_step(l3d_adamw *o, double lr, l3d_params *p);

#define L3D_LR_MAX_MILESTONES 8

typedef struct l3d_lr_schedule {
    double base_lr;                /* 1e-3 */
    double warmup_start;           /* LinearLR start_factor: 1/1000 */
    int64_t warmup_end;            /* LinearLR end (iterations): 1000; 0 = no warm-up */
    int64_t iters_per_epoch;       /* converts the milestones to iterations */
    int n_milestones;
    int64_t milestones[L3D_LR_MAX_MILESTONES];  /* epochs: 20, 23 */
    double gamma;                  /* 0.1 */
} l3d_lr_schedule;

/* The SSN schedule (spec §10.1) for an epoch of iters_per_epoch steps. */
void l3d_lr_schedule_ssn(l3d_lr_schedule *s, int64_t iters_per_epoch);
/* Learning rate of 0-based iteration iter (the one its optimizer step uses).
 * Cost: O(min(iter, warmup_end) + milestones); no state, so a resumed run
 * needs only the iteration number. */
double l3d_lr_at(const l3d_lr_schedule *s, int64_t iter);

/* Gradient accumulation, the MMEngine way (OptimWrapper, accumulative_counts
 * = n): every micro-batch's loss is divided by n before its backward, the
 * parameter gradients accumulate (+=) over the n micro-batches, and the
 * optimizer steps after the n-th. */
typedef struct l3d_accum {
    int n;                         /* micro-batches per optimizer step (>= 1) */
    int done;                      /* micro-batches accumulated since the last step */
} l3d_accum;

void l3d_accum_init(l3d_accum *a, int n);
/* d(loss / n)/d(loss) as autograd forms it (1.0f / n): the seed of each
 * micro-batch's backward. */
float l3d_accum_loss_grad(const l3d_accum *a);
/* Counts one finished micro-batch; 1 when the optimizer should step now. */
int l3d_accum_tick(l3d_accum *a);
/* For gradients summed without the loss division: g[i] /= n_micro. */
void l3d_grad_average(float *g, size_t n, int n_micro);

#endif
