/* CUDA runtime wiring: device discovery and a trivial kernel that proves the
 * toolchain compiles, links and (where a GPU exists) runs. Later kernels sit
 * beside this file behind the same backend-neutral interfaces as kernels/cpu. */
#ifndef LIDAR3D_KERNELS_CUDA_DEVICE_H
#define LIDAR3D_KERNELS_CUDA_DEVICE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of usable CUDA devices; 0 when there is no GPU or no driver. */
int l3d_cuda_device_count(void);

/* Name of device 0 into buf; returns 0 on success. */
int l3d_cuda_device_name(char *buf, size_t n);

/* y[i] = a * x[i] + y[i] on device 0 (host arrays in and out).
 * Returns 0 on success, -1 on any CUDA error (message on stderr). */
int l3d_cuda_saxpy(float a, const float *x, float *y, size_t n);

#ifdef __cplusplus
}
#endif

#endif
