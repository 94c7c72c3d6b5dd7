/* ReLU, CPU: spec ssn-model.md §3.2.
 * NaN passes through (as torch.relu does), so a diverging run shows up in the
 * loss rather than being hidden by a zero. */
#ifndef LIDAR3D_KERNELS_CPU_RELU_H
#define LIDAR3D_KERNELS_CPU_RELU_H

#include <stdint.h>

/* x, y [n] (any shape, n elements; y may equal x): y = max(x, 0). */
void l3d_relu_forward(const float *x, int64_t n, float *y);

/* dy, y [n] (y: the forward's output); dx [n] assigned (may equal dy):
 * dx = dy where y > 0, else 0. */
void l3d_relu_backward(const float *dy, const float *y, int64_t n, float *dx);

#endif
