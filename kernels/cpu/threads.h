/* Thread count of the CPU kernels. Today only OpenBLAS runs threads (the GEMMs of
 * conv2d and deconv2d); im2col, col2im and the shuffles are single-threaded.
 *
 * OpenBLAS splits a GEMM's M and N ranges over its threads, so one thread count gives
 * the same bits every run; a different count may change results by fp32 rounding.
 * A trainer that must be reproducible sets the count once, at start-up. */
#ifndef LIDAR3D_KERNELS_CPU_THREADS_H
#define LIDAR3D_KERNELS_CPU_THREADS_H

/* n >= 1: use n threads; n <= 0: back to OpenBLAS's start-up count
 * (OPENBLAS_NUM_THREADS, else the number of cores). Not thread-safe: call it
 * outside any kernel. */
void l3d_set_threads(int n);

/* The thread count in use now. */
int l3d_get_threads(void);

#endif
