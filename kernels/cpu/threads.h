/* Thread count of the CPU kernels. Today only OpenBLAS runs threads (the GEMMs of
 * conv2d and deconv2d); im2col, col2im and the shuffles are single-threaded.
 *
 * OpenBLAS splits a GEMM's M and N ranges over its threads, so one thread count gives
 * the same bits every run; a different count may change results by fp32 rounding.
 * A trainer that must be reproducible sets the count once, at start-up. */
#ifndef LIDAR3D_KERNELS_CPU_THREADS_H
#define LIDAR3D_KERNELS_CPU_THREADS_H

#include <stdint.h>

/* n >= 1: use n threads; n <= 0: back to OpenBLAS's start-up count
 * (OPENBLAS_NUM_THREADS, else the number of cores). Not thread-safe: call it
 * outside any kernel. */
void l3d_set_threads(int n);

/* The thread count in use now. */
int l3d_get_threads(void);

/* Runs fn(ctx, begin, end) over [0, n) split into l3d_get_threads() contiguous
 * ranges (at most 16), one thread each, and waits. Work split this way gives
 * results that do not depend on the thread count as long as fn computes each
 * item independently (per channel, per element). Small n runs inline. */
typedef void (*l3d_range_fn)(void *ctx, int64_t begin, int64_t end);
void l3d_parallel_ranges(int64_t n, int64_t min_per_thread, l3d_range_fn fn, void *ctx);

#endif
