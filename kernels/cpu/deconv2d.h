/* Transposed 2-D convolution with kernel = stride and no padding (PyTorch
 * nn.ConvTranspose2d(C_in, C_out, s, stride=s, bias=False)), CPU, NCHW, fp32: the
 * SECONDFPN neck's upsampling branches, s = 1, 2, 4 (spec ssn-model.md §5.2).
 *
 * Every output pixel has exactly one source pixel:
 *
 *   y[b][o][i][j] = Σ_c x[b][c][i/s][j/s] · w[c][o][i%s][j%s]     (integer division)
 *
 * so per image the op is one GEMM, T[C_out·s·s][H·W] = w[C_in][C_out·s·s]ᵀ · x[C_in][H·W],
 * followed by a pixel shuffle y[o][i·s + a][j·s + u] = T[(o·s + a)·s + u][i·W + j];
 * the backward unshuffles dy into T's layout and runs the two transposed GEMMs. For
 * s = 1 T is y itself and no workspace is needed.
 *
 * Determinism: as conv2d.h (fixed bits at a fixed OpenBLAS thread count; across thread
 * counts, fp32 GEMM rounding). Conventions (kernels/README.md): dw accumulates, dx is
 * assigned. */
#ifndef LIDAR3D_KERNELS_CPU_DECONV2D_H
#define LIDAR3D_KERNELS_CPU_DECONV2D_H

#include <stddef.h>

/* 0 when B, C_in, C_out, H, W, s >= 1 and every per-image tensor has fewer than
 * 2^31 elements; otherwise -1 with *why (if not NULL) naming the bad value. */
int l3d_deconv2d_check(int B, int Cin, int Cout, int H, int W, int s, const char **why);

/* Bytes of workspace forward and backward need: C_out·s²·H·W floats (one output
 * image), 0 for s = 1 (ws may then be NULL). */
size_t l3d_deconv2d_workspace_bytes(int Cin, int Cout, int H, int W, int s);

/* y [B][Cout][H·s][W·s] (assigned), x [B][Cin][H][W], w [Cin][Cout][s][s] (PyTorch's
 * ConvTranspose2d layout), ws: l3d_deconv2d_workspace_bytes(...) bytes. */
void l3d_deconv2d_forward(float *y, const float *x, const float *w, int B, int Cin, int Cout,
                          int H, int W, int s, void *ws);

/* dx [B][Cin][H][W] (assigned; NULL: not computed), dw [Cin][Cout][s][s] (+=),
 * dy [B][Cout][H·s][W·s], x and w as in the forward, ws as in the forward. */
void l3d_deconv2d_backward(float *dx, float *dw, const float *dy, const float *x,
                           const float *w, int B, int Cin, int Cout, int H, int W, int s,
                           void *ws);

#endif
