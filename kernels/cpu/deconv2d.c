/* Transposed convolution, kernel = stride, as GEMM + pixel shuffle: see deconv2d.h. */
#include "kernels/cpu/deconv2d.h"

#include <cblas.h>
#include <limits.h>

int l3d_deconv2d_check(int B, int Cin, int Cout, int H, int W, int s, const char **why)
{
    const char *msg = NULL;
    if (B < 1 || Cin < 1 || Cout < 1 || H < 1 || W < 1)
        msg = "deconv2d: B, C_in, C_out, H and W must be >= 1";
    else if (s < 1)
        msg = "deconv2d: stride (= kernel) must be >= 1";
    else if ((long long)Cin * H * W > INT_MAX || (long long)Cout * s * s * H * W > INT_MAX ||
             (long long)Cin * Cout * s * s > INT_MAX)
        msg = "deconv2d: a per-image tensor has 2^31 or more elements";
    if (why)
        *why = msg;
    return msg ? -1 : 0;
}

size_t l3d_deconv2d_workspace_bytes(int Cin, int Cout, int H, int W, int s)
{
    (void)Cin;
    if (s == 1)
        return 0;
    return (size_t)Cout * s * s * (size_t)H * W * sizeof(float);
}

/* Between T [Cout·s·s][H·W] and y [Cout][H·s][W·s]: y[o][i·s + a][j·s + u] =
 * T[(o·s + a)·s + u][i·W + j]. to_y = 1: dst is y and src is T (shuffle);
 * to_y = 0: dst is T and src is y (unshuffle). */
static void shuffle(float *dst, const float *src, int Cout, int H, int W, int s, int to_y)
{
    const size_t hw = (size_t)H * W, ws = (size_t)W * s;
    for (int o = 0; o < Cout; o++)
        for (int a = 0; a < s; a++)
            for (int u = 0; u < s; u++) {
                size_t t0 = ((size_t)(o * s + a) * s + u) * hw;
                size_t y0 = (size_t)o * hw * s * s + (size_t)a * ws + u;
                for (int i = 0; i < H; i++) {
                    size_t tr = t0 + (size_t)i * W, yr = y0 + (size_t)i * s * ws;
                    if (to_y)
                        for (int j = 0; j < W; j++)
                            dst[yr + (size_t)j * s] = src[tr + j];
                    else
                        for (int j = 0; j < W; j++)
                            dst[tr + j] = src[yr + (size_t)j * s];
                }
            }
}

void l3d_deconv2d_forward(float *y, const float *x, const float *w, int B, int Cin, int Cout,
                          int H, int W, int s, void *ws)
{
    const int M = Cout * s * s, N = H * W;
    const size_t xsz = (size_t)Cin * N, ysz = (size_t)M * N;
    for (int b = 0; b < B; b++) {
        float *t = s == 1 ? y + b * ysz : ws;
        /* T[M][N] = w[Cin][M]ᵀ · x[Cin][N] */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, N, Cin, 1.0f, w, M, x + b * xsz,
                    N, 0.0f, t, N);
        if (s != 1)
            shuffle(y + b * ysz, t, Cout, H, W, s, 1);
    }
}

void l3d_deconv2d_backward(float *dx, float *dw, const float *dy, const float *x,
                           const float *w, int B, int Cin, int Cout, int H, int W, int s,
                           void *ws)
{
    const int M = Cout * s * s, N = H * W;
    const size_t xsz = (size_t)Cin * N, ysz = (size_t)M * N;
    for (int b = 0; b < B; b++) {
        const float *t = dy + b * ysz;
        if (s != 1) {
            shuffle(ws, t, Cout, H, W, s, 0);
            t = ws;
        }
        /* dw[Cin][M] += x[Cin][N] · dT[M][N]ᵀ */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Cin, M, N, 1.0f, x + b * xsz, N, t,
                    N, 1.0f, dw, M);
        /* dx[Cin][N] = w[Cin][M] · dT[M][N] */
        if (dx)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cin, N, M, 1.0f, w, M, t, N,
                        0.0f, dx + b * xsz, N);
    }
}
