/* 2-D convolution by im2col + sgemm: see conv2d.h for the maths and the contract. */
#include "kernels/cpu/conv2d.h"

#include <cblas.h>
#include <limits.h>
#include <string.h>

int l3d_conv2d_out_size(int n, int k, int stride, int pad)
{
    if (stride < 1)
        return 0;
    long long num = (long long)n + 2LL * pad - k;
    if (num < 0)
        return 0;   /* C division truncates towards 0: floor only for num >= 0 */
    return (int)(num / stride + 1);
}

int l3d_conv2d_check(const l3d_conv2d_dims *d, const char **why)
{
    const char *msg = NULL;
    if (d->B < 1 || d->C < 1 || d->H < 1 || d->W < 1)
        msg = "conv2d: B, C, H and W must be >= 1";
    else if (d->O < 1)
        msg = "conv2d: O must be >= 1";
    else if (d->k < 1 || d->stride < 1 || d->pad < 0)
        msg = "conv2d: need k >= 1, stride >= 1, pad >= 0";
    else if (l3d_conv2d_out_size(d->H, d->k, d->stride, d->pad) < 1 ||
             l3d_conv2d_out_size(d->W, d->k, d->stride, d->pad) < 1)
        msg = "conv2d: kernel larger than the padded input (output size < 1)";
    else {
        /* sgemm takes int sizes and leading dimensions: keep every per-image
         * matrix (x, y, w, one col row) under 2^31 elements. */
        long long ho = l3d_conv2d_out_size(d->H, d->k, d->stride, d->pad);
        long long wo = l3d_conv2d_out_size(d->W, d->k, d->stride, d->pad);
        long long kk = (long long)d->C * d->k * d->k;
        if ((long long)d->C * d->H * d->W > INT_MAX || (long long)d->O * ho * wo > INT_MAX ||
            kk * d->O > INT_MAX || kk * wo > INT_MAX)
            msg = "conv2d: a per-image tensor has 2^31 or more elements";
    }
    if (why)
        *why = msg;
    return msg ? -1 : 0;
}

static int fast_path(const l3d_conv2d_dims *d)
{
    return d->k == 1 && d->stride == 1 && d->pad == 0;
}

int l3d_conv2d_band_rows(const l3d_conv2d_dims *d)
{
    int ho = l3d_conv2d_out_size(d->H, d->k, d->stride, d->pad);
    int wo = l3d_conv2d_out_size(d->W, d->k, d->stride, d->pad);
    long long row = (long long)d->C * d->k * d->k * wo;   /* col floats per output row */
    long long rows = L3D_CONV2D_BAND_FLOATS / row;
    if (rows < 1)
        rows = 1;
    return rows < ho ? (int)rows : ho;
}

size_t l3d_conv2d_workspace_bytes(const l3d_conv2d_dims *d)
{
    if (fast_path(d))
        return 0;
    int wo = l3d_conv2d_out_size(d->W, d->k, d->stride, d->pad);
    return (size_t)d->C * d->k * d->k * (size_t)l3d_conv2d_band_rows(d) * (size_t)wo *
           sizeof(float);
}

/* Range [*lo, *hi) of output columns j whose input column j·s + off lies in [0, n). */
static void valid_cols(int off, int s, int n, int wo, int *lo, int *hi)
{
    int a = off < 0 ? (-off + s - 1) / s : 0;   /* smallest j with j·s + off >= 0 */
    int b = off < n ? (n - 1 - off) / s + 1 : 0;   /* one past the largest j with j·s + off < n */
    if (b > wo)
        b = wo;
    if (a > b)
        a = b;
    *lo = a;
    *hi = b;
}

/* col[(c·k + u)·k + v][(i - r0)·Wo + j] = x[c][i·s - p + u][j·s - p + v] (0 outside),
 * for the output rows r0 <= i < r1 of one image x [C][H][W]. */
static void im2col(float *col, const float *x, const l3d_conv2d_dims *d, int wo, int r0, int r1)
{
    const int k = d->k, s = d->stride, p = d->pad, H = d->H, W = d->W;
    const size_t n = (size_t)(r1 - r0) * wo;
    for (int c = 0; c < d->C; c++)
        for (int u = 0; u < k; u++)
            for (int v = 0; v < k; v++) {
                float *dst = col + ((size_t)(c * k + u) * k + v) * n;
                int lo, hi;
                valid_cols(v - p, s, W, wo, &lo, &hi);
                for (int i = r0; i < r1; i++, dst += wo) {
                    int h = i * s - p + u;
                    if (h < 0 || h >= H) {
                        memset(dst, 0, (size_t)wo * sizeof(float));
                        continue;
                    }
                    /* offsets from the row start: v - p may be negative */
                    const float *src = x + ((size_t)c * H + h) * W;
                    memset(dst, 0, (size_t)lo * sizeof(float));
                    if (s == 1 && hi > lo)
                        memcpy(dst + lo, src + (lo + v - p), (size_t)(hi - lo) * sizeof(float));
                    else if (s != 1)
                        for (int j = lo; j < hi; j++)
                            dst[j] = src[j * s + (v - p)];
                    memset(dst + hi, 0, (size_t)(wo - hi) * sizeof(float));
                }
            }
}

/* The adjoint of im2col: dx[c][i·s - p + u][j·s - p + v] += col[...][...] over the
 * band's rows, skipping the padding. The order of the adds is fixed. */
static void col2im(float *dx, const float *col, const l3d_conv2d_dims *d, int wo, int r0,
                   int r1)
{
    const int k = d->k, s = d->stride, p = d->pad, H = d->H, W = d->W;
    const size_t n = (size_t)(r1 - r0) * wo;
    for (int c = 0; c < d->C; c++)
        for (int u = 0; u < k; u++)
            for (int v = 0; v < k; v++) {
                const float *src = col + ((size_t)(c * k + u) * k + v) * n;
                int lo, hi;
                valid_cols(v - p, s, W, wo, &lo, &hi);
                for (int i = r0; i < r1; i++, src += wo) {
                    int h = i * s - p + u;
                    if (h < 0 || h >= H)
                        continue;
                    float *dst = dx + ((size_t)c * H + h) * W;
                    for (int j = lo; j < hi; j++)
                        dst[j * s + (v - p)] += src[j];
                }
            }
}

void l3d_conv2d_forward(float *y, const float *x, const float *w, const float *bias,
                        const l3d_conv2d_dims *d, void *ws)
{
    const int ho = l3d_conv2d_out_size(d->H, d->k, d->stride, d->pad);
    const int wo = l3d_conv2d_out_size(d->W, d->k, d->stride, d->pad);
    const int O = d->O, K = d->C * d->k * d->k, plane = ho * wo;
    const size_t xsz = (size_t)d->C * d->H * d->W, ysz = (size_t)O * plane;
    const int rows = l3d_conv2d_band_rows(d);
    float *col = ws;
    for (int b = 0; b < d->B; b++) {
        const float *xb = x + b * xsz;
        float *yb = y + b * ysz;
        if (fast_path(d)) {
            /* y[O][HW] = w[O][C] · x[C][HW] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, O, plane, K, 1.0f, w, K,
                        xb, plane, 0.0f, yb, plane);
        } else {
            for (int r0 = 0; r0 < ho; r0 += rows) {
                int r1 = r0 + rows < ho ? r0 + rows : ho, n = (r1 - r0) * wo;
                im2col(col, xb, d, wo, r0, r1);
                /* y[O][band] = w[O][K] · col[K][band], written in place (ldc = Ho·Wo) */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, O, n, K, 1.0f, w, K, col,
                            n, 0.0f, yb + (size_t)r0 * wo, plane);
            }
        }
        if (bias)
            for (int o = 0; o < O; o++) {
                float *yo = yb + (size_t)o * plane;
                for (int i = 0; i < plane; i++)
                    yo[i] += bias[o];
            }
    }
}

void l3d_conv2d_backward(float *dx, float *dw, float *dbias, const float *dy, const float *x,
                         const float *w, const l3d_conv2d_dims *d, void *ws)
{
    const int ho = l3d_conv2d_out_size(d->H, d->k, d->stride, d->pad);
    const int wo = l3d_conv2d_out_size(d->W, d->k, d->stride, d->pad);
    const int O = d->O, K = d->C * d->k * d->k, plane = ho * wo;
    const size_t xsz = (size_t)d->C * d->H * d->W, ysz = (size_t)O * plane;
    const int rows = l3d_conv2d_band_rows(d);
    float *col = ws;
    for (int b = 0; b < d->B; b++) {
        const float *xb = x + b * xsz, *dyb = dy + b * ysz;
        float *dxb = dx ? dx + b * xsz : NULL;
        if (dbias)
            /* Summed in double, in a fixed order, then added once: the result does not
             * depend on the plane size's fp32 rounding. */
            for (int o = 0; o < O; o++) {
                const float *g = dyb + (size_t)o * plane;
                double acc = 0.0;
                for (int i = 0; i < plane; i++)
                    acc += g[i];
                dbias[o] += (float)acc;
            }
        if (fast_path(d)) {
            /* dw[O][C] += dy[O][HW] · x[C][HW]ᵀ;  dx[C][HW] = w[O][C]ᵀ · dy[O][HW] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, O, K, plane, 1.0f, dyb, plane,
                        xb, plane, 1.0f, dw, K);
            if (dxb)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, plane, O, 1.0f, w, K,
                            dyb, plane, 0.0f, dxb, plane);
            continue;
        }
        if (dxb)
            memset(dxb, 0, xsz * sizeof(float));   /* col2im accumulates band by band */
        for (int r0 = 0; r0 < ho; r0 += rows) {
            int r1 = r0 + rows < ho ? r0 + rows : ho, n = (r1 - r0) * wo;
            const float *g = dyb + (size_t)r0 * wo;   /* dy[O][band], lda = Ho·Wo */
            im2col(col, xb, d, wo, r0, r1);
            /* dw[O][K] += dy[O][band] · col[K][band]ᵀ */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, O, K, n, 1.0f, g, plane, col, n,
                        1.0f, dw, K);
            if (!dxb)
                continue;
            /* dcol[K][band] = w[O][K]ᵀ · dy[O][band], reusing the col buffer */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, n, O, 1.0f, w, K, g, plane,
                        0.0f, col, n);
            col2im(dxb, col, d, wo, r0, r1);
        }
    }
}
