/* 2-D convolution (PyTorch nn.Conv2d, groups 1, dilation 1), CPU, NCHW, fp32:
 * the SECOND backbone and the head's shared convs (3x3, pad 1, stride 1 or 2,
 * no bias) and the head's 1x1 output convs (with bias); spec ssn-model.md §5.1, §6.2.
 *
 *   y[b][o][i][j] = bias[o] + Σ_{c,u,v} w[o][c][u][v] · x[b][c][i·s - p + u][j·s - p + v]
 *
 * with x read as 0 outside [0,H)x[0,W); Ho = floor((H + 2p - k)/s) + 1 (same for Wo).
 *
 * Method: per image, im2col of a band of output rows into the caller's workspace,
 * then one OpenBLAS sgemm per band (y = W·col, dW += dy·colᵀ, dcol = Wᵀ·dy followed
 * by col2im). Bands bound the workspace: a whole-image col buffer for the head's
 * 384->64 conv at 400x400 would take 2.2 GB. 1x1 / stride 1 / pad 0 needs no im2col
 * (x itself is the col matrix) and no workspace.
 *
 * Determinism: the band height is a function of the dims alone, every sum outside
 * the GEMMs runs in a fixed order, and OpenBLAS sgemm gives the same bits for the same
 * inputs at a fixed thread count. Across thread counts we promise only agreement to
 * fp32 rounding of the GEMM (OpenBLAS 0.3.21 splits M and N over threads, not the K
 * sum, and 1 vs 2 threads came out bit-identical, but that is not documented
 * behaviour); tests compare with a tolerance, and same-count reruns bit for bit.
 *
 * Conventions (kernels/README.md): dw and db accumulate, dx is assigned. */
#ifndef LIDAR3D_KERNELS_CPU_CONV2D_H
#define LIDAR3D_KERNELS_CPU_CONV2D_H

#include <stddef.h>

/* Eight sizes travel together in a struct so that no call can swap two ints. */
typedef struct l3d_conv2d_dims {
    int B, C, H, W;   /* input x [B][C][H][W] */
    int O;            /* output channels */
    int k;            /* square kernel side (any k >= 1; SSN uses 1 and 3) */
    int stride, pad;  /* stride >= 1, pad >= 0, same on both axes */
} l3d_conv2d_dims;

/* Largest col band, in floats (4 MiB; a band is at least one output row, so wider
 * rows go over). Measured on SSN shapes (bench/conv_speed, one thread): 1-8 MiB bands
 * are equally fast, 16-64 MiB ones 10-20 % slower (the band no longer stays in cache
 * between im2col and the GEMM). At 64 channels and 200 wide a band is 9 rows, N = 1800. */
#define L3D_CONV2D_BAND_FLOATS (1 << 20)

/* floor((n + 2p - k)/s) + 1: the output size along one axis (<= 0: invalid). */
int l3d_conv2d_out_size(int n, int k, int stride, int pad);

/* 0 when every size is positive, Ho, Wo >= 1 and every tensor has fewer than
 * 2^31 elements per image; otherwise -1 with *why (if not NULL) naming the bad
 * value. The kernels assume valid dims and do not check. */
int l3d_conv2d_check(const l3d_conv2d_dims *d, const char **why);

/* Output rows per im2col band (1..Ho); the test uses it to make sure bands are exercised. */
int l3d_conv2d_band_rows(const l3d_conv2d_dims *d);

/* Bytes of workspace that forward and backward need (the same for both);
 * 0 for the 1x1 / stride 1 / pad 0 fast path, where ws may be NULL. */
size_t l3d_conv2d_workspace_bytes(const l3d_conv2d_dims *d);

/* y [B][O][Ho][Wo] (assigned), x [B][C][H][W], w [O][C][k][k], bias [O] or NULL,
 * ws: l3d_conv2d_workspace_bytes(d) bytes, float-aligned. */
void l3d_conv2d_forward(float *y, const float *x, const float *w, const float *bias,
                        const l3d_conv2d_dims *d, void *ws);

/* dx [B][C][H][W] (assigned; NULL: not computed), dw [O][C][k][k] (+=),
 * dbias [O] (+=; NULL when the conv has no bias), dy [B][O][Ho][Wo],
 * x and w as in the forward, ws as in the forward. */
void l3d_conv2d_backward(float *dx, float *dw, float *dbias, const float *dy, const float *x,
                         const float *w, const l3d_conv2d_dims *d, void *ws);

#endif
