/* Fully connected layer without bias (the VFE's nn.Linear(bias=False)), CPU,
 * through OpenBLAS sgemm: spec ssn-model.md §3.2.
 *
 * Results do not depend on OpenBLAS's thread count. A plain sgemm call does not
 * guarantee that (seen with OpenBLAS 0.3.21: dw for n = 1000 or 3000 changed
 * between 1 and 2 threads): OpenBLAS blocks the reduction (K) in steps of
 * GEMM_Q (112 to 512 by CPU, param.h), and its threaded and single-threaded
 * drivers cut a remainder between GEMM_Q and 2·GEMM_Q differently; its AVX-512
 * row-major "direct" path is also chosen by thread count. So every sgemm call
 * here reduces over at most L3D_LINEAR_KC terms (one K block on any CPU;
 * threads then only split the rows and columns of the result), longer
 * reductions are chained in a fixed order, and dx is asked for in the
 * column-major form the direct path never takes. tests/test_vfe_kernels checks
 * the same bits for 1 to 4 threads.
 *
 * Precision: float32 products and sums within a K block, as cuBLAS; dw, a
 * reduction over all n rows (M·20 slots in the VFE), adds its per-block partial
 * results in double and rounds once. */
#ifndef LIDAR3D_KERNELS_CPU_LINEAR_H
#define LIDAR3D_KERNELS_CPU_LINEAR_H

#include <stdint.h>

#define L3D_LINEAR_KC 64 /* terms per sgemm reduction */

/* x [n][in], w [out][in], y [n][out]: y = x · wᵀ. */
void l3d_linear_forward(const float *x, const float *w, int64_t n, int in, int out, float *y);

/* dy [n][out], x [n][in], w [out][in];
 * dx [n][in] = dy · w (assigned; may be NULL when not needed),
 * dw [out][in] += dyᵀ · x (accumulated). */
void l3d_linear_backward(const float *dy, const float *x, const float *w, int64_t n, int in,
                         int out, float *dx, float *dw);

#endif
