/* ReLU: see relu.h. */
#include "kernels/cpu/relu.h"

#include <stddef.h>

#include "kernels/cpu/threads.h"

/* Vectorised clones (AVX-512, AVX2, baseline): elementwise, so every clone
 * gives the same bits. */
#define RELU_CLONES __attribute__((target_clones("avx512f", "avx2", "default"), optimize("O3")))

typedef struct relu_args { const float *a, *b; float *out; } relu_args;

RELU_CLONES static void forward_range(void *ctx, int64_t i0, int64_t i1)
{
    const relu_args *r = ctx;
    const float *x = r->a;
    float *y = r->out;
    for (int64_t i = i0; i < i1; i++) {
        float v = x[i];
        y[i] = (v > 0.0f || v != v) ? v : 0.0f; /* v != v: NaN stays NaN */
    }
}

void l3d_relu_forward(const float *x, int64_t n, float *y)
{
    relu_args r = {x, NULL, y};
    l3d_parallel_ranges(n, 1 << 18, forward_range, &r);
}

RELU_CLONES static void backward_range(void *ctx, int64_t i0, int64_t i1)
{
    const relu_args *r = ctx;
    for (int64_t i = i0; i < i1; i++)
        r->out[i] = r->b[i] > 0.0f ? r->a[i] : 0.0f;
}

void l3d_relu_backward(const float *dy, const float *y, int64_t n, float *dx)
{
    relu_args r = {dy, y, dx};
    l3d_parallel_ranges(n, 1 << 18, backward_range, &r);
}
