/* ReLU: see relu.h. */
#include "kernels/cpu/relu.h"

/* Vectorised clones (AVX-512, AVX2, baseline): elementwise, so every clone
 * gives the same bits. */
#define RELU_CLONES __attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3")))

RELU_CLONES void l3d_relu_forward(const float *x, int64_t n, float *y)
{
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = (v > 0.0f || v != v) ? v : 0.0f; /* v != v: NaN stays NaN */
    }
}

RELU_CLONES void l3d_relu_backward(const float *dy, const float *y, int64_t n, float *dx)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
