/* ReLU: see relu.h. */
#include "kernels/cpu/relu.h"

void l3d_relu_forward(const float *x, int64_t n, float *y)
{
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = (v > 0.0f || v != v) ? v : 0.0f; /* v != v: NaN stays NaN */
    }
}

void l3d_relu_backward(const float *dy, const float *y, int64_t n, float *dx)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
