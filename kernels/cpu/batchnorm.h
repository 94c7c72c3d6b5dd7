/* BatchNorm over the channel dimension, CPU: spec ssn-model.md §3.2, §10.3.
 *
 * One layout covers both uses: x [n][c][hw], statistics per channel over the
 * n·hw values of that channel.
 *   BatchNorm1d on [N][C] (the VFE, N = M·20 slots, padded slots included): n = N, hw = 1
 *   BatchNorm2d on [B][C][H][W] (backbone, neck, heads):                 n = B, hw = H·W
 *
 * Training (PyTorch BatchNorm / naiveSyncBN with world size 1): batch mean and
 * biased variance normalise, y = (x - mean) / sqrt(var + eps) · gamma + beta;
 * running = (1 - momentum) · running + momentum · batch statistic, with the
 * unbiased variance var·count/(count - 1) for running_var. Eval: the running
 * statistics normalise and nothing is updated.
 *
 * Precision and determinism: every sum (mean, the two-pass variance, and the
 * backward's two sums) is a double accumulated in a fixed order, single-threaded,
 * so results do not depend on threads or on a channel's mean being large
 * against its spread. The saved mean and invstd are float32 (what PyTorch and
 * cuDNN save, so a CUDA twin can keep this argument list); the forward's
 * output uses the unrounded double statistics.
 *
 * Not here: naiveSyncBN with world size > 1 (per-GPU E[x], E[x²] averaged with
 * equal weight, biased running_var), which a 16-GPU emulation would need. */
#ifndef LIDAR3D_KERNELS_CPU_BATCHNORM_H
#define LIDAR3D_KERNELS_CPU_BATCHNORM_H

#include <stdint.h>

/* x, y [n][c][hw] (y may equal x); gamma, beta, running_mean, running_var [c];
 * save_mean, save_invstd [c] out (invstd = 1/sqrt(var + eps), biased var).
 * count = n·hw. count 0: nothing is normalised or updated, save_mean = 0 and
 * save_invstd = 1/sqrt(eps). count 1 (PyTorch refuses it): y = beta and
 * running_var is left as it is (its unbiased update would divide by 0).
 * running_mean/running_var may be NULL (no update). */
void l3d_batchnorm_forward_train(const float *x, int64_t n, int c, int64_t hw,
                                 const float *gamma, const float *beta, double eps,
                                 double momentum, float *running_mean, float *running_var,
                                 float *y, float *save_mean, float *save_invstd);

/* Eval: y = (x - running_mean) / sqrt(running_var + eps) · gamma + beta.
 * save_mean, save_invstd [c] (may be NULL) receive running_mean and
 * 1/sqrt(running_var + eps) for l3d_batchnorm_backward with training = 0. */
void l3d_batchnorm_forward_eval(const float *x, int64_t n, int c, int64_t hw,
                                const float *gamma, const float *beta, double eps,
                                const float *running_mean, const float *running_var, float *y,
                                float *save_mean, float *save_invstd);

/* dy, x [n][c][hw] (x: the forward's input); gamma, save_mean, save_invstd [c]
 * from the forward. training 1: the statistics are functions of x, so
 *   dx = gamma·invstd · (dy - mean(dy) - xhat · mean(dy·xhat)),  xhat = (x - mean)·invstd;
 * training 0 (eval statistics are constants): dx = gamma·invstd · dy.
 * dx [n][c][hw] is assigned (may equal dy); dgamma += Σ dy·xhat, dbeta += Σ dy [c]. */
void l3d_batchnorm_backward(const float *dy, const float *x, int64_t n, int c, int64_t hw,
                            const float *gamma, const float *save_mean,
                            const float *save_invstd, int training, float *dx, float *dgamma,
                            float *dbeta);

#endif
