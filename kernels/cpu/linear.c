/* y = x · wᵀ and its gradients through cblas_sgemm: see linear.h for why every
 * reduction is cut into L3D_LINEAR_KC-term calls. */
#include "kernels/cpu/linear.h"

#include <cblas.h>
#include <limits.h>
#include <string.h>

#define KC L3D_LINEAR_KC
/* BLAS sizes are int: rows go in blocks that fit. */
#define ROWS_MAX ((int64_t)1 << 30)
/* dw is reduced a tile of at most TILE elements at a time, with the per-block
 * partial (float) and the running sum (double) on the stack: 48 KiB. */
#define TILE 4096

static int min_i(int64_t a, int64_t b) { return (int)(a < b ? a : b); }

void l3d_linear_forward(const float *x, const float *w, int64_t n, int in, int out, float *y)
{
    if (n <= 0 || out <= 0)
        return;
    if (in <= 0) {
        memset(y, 0, (size_t)n * (size_t)out * sizeof(float));
        return;
    }
    for (int64_t r = 0; r < n; r += ROWS_MAX) {
        int rows = min_i(n - r, ROWS_MAX);
        /* y = Σ over K blocks of x[:, k0:k1] · w[:, k0:k1]ᵀ, blocks in order */
        for (int k0 = 0; k0 < in; k0 += KC)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, min_i(in - k0, KC),
                        1.0f, x + r * in + k0, in, w + k0, in, k0 ? 1.0f : 0.0f, y + r * out,
                        out);
    }
}

/* dw[o0:o0+ob][i0:i0+ib] += Σ_rows dyᵀ · x, KC rows per call, partials summed in double. */
static void dw_tile(const float *dy, const float *x, int64_t n, int in, int out, int o0, int ob,
                    int i0, int ib, float *dw)
{
    float part[TILE];
    double acc[TILE];
    for (int e = 0; e < ob * ib; e++)
        acc[e] = 0.0;
    for (int64_t r = 0; r < n; r += KC) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ob, ib, min_i(n - r, KC), 1.0f,
                    dy + r * out + o0, out, x + r * in + i0, in, 0.0f, part, ib);
        for (int e = 0; e < ob * ib; e++)
            acc[e] += (double)part[e];
    }
    for (int o = 0; o < ob; o++)
        for (int i = 0; i < ib; i++) {
            float *d = dw + (int64_t)(o0 + o) * in + i0 + i;
            *d = (float)((double)*d + acc[o * ib + i]);
        }
}

void l3d_linear_backward(const float *dy, const float *x, const float *w, int64_t n, int in,
                         int out, float *dx, float *dw)
{
    if (n <= 0 || in <= 0)
        return;
    if (out <= 0) {
        if (dx)
            memset(dx, 0, (size_t)n * (size_t)in * sizeof(float));
        return;
    }
    if (dx)
        for (int64_t r = 0; r < n; r += ROWS_MAX) {
            int rows = min_i(n - r, ROWS_MAX);
            /* dx [rows][in] = dy [rows][out] · w [out][in], written column-major
             * (dxᵀ = wᵀ · dyᵀ, the same numbers) so that OpenBLAS's row-major
             * direct path, picked by thread count, is never taken. */
            for (int k0 = 0; k0 < out; k0 += KC)
                cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, in, rows,
                            min_i(out - k0, KC), 1.0f, w + (int64_t)k0 * in, in,
                            dy + r * out + k0, out, k0 ? 1.0f : 0.0f, dx + r * in, in);
        }
    const int ib = min_i(in, TILE), ob = min_i(out, TILE / ib);
    for (int o0 = 0; o0 < out; o0 += ob)
        for (int i0 = 0; i0 < in; i0 += ib)
            dw_tile(dy, x, n, in, out, o0, min_i(out - o0, ob), i0, min_i(in - i0, ib), dw);
}
