/* IEEE 754 binary16 ("fp16", CUDA __half) on the CPU, for emulating the GPU's
 * reduced-precision modes bit for bit (kernels/README.md, "Precision").
 *
 * float -> half rounds to nearest, ties to even (CUDA __float2half_rn), with
 * gradual underflow: |x| < 2^-14 becomes a subnormal k·2^-24, and |x| <= 2^-25
 * becomes a signed zero (2^-25 itself is a tie and goes to the even 0).
 * |x| >= 65520 (half-way between 65504, the largest finite half, and 2^16)
 * becomes ±inf. NaN stays NaN with its sign and the top 10 payload bits; a
 * payload that would become all zeros gets the quiet bit instead, so every
 * half pattern, NaNs included, survives half -> float -> half unchanged.
 *
 * Conversions use integer arithmetic only, so results do not depend on the
 * FPU rounding mode, flush-to-zero settings or compiler flags. */
#ifndef LIDAR3D_KERNELS_CPU_HALF_H
#define LIDAR3D_KERNELS_CPU_HALF_H

#include <stddef.h>
#include <stdint.h>

#define L3D_FP16_MAX 65504.0f

uint16_t l3d_f32_to_f16(float x);
float l3d_f16_to_f32(uint16_t h);

/* x rounded to the nearest half, back in float32: what the GPU reads back
 * after storing x as fp16. */
float l3d_fp16_round(float x);

/* In place over n floats: x[i] = l3d_fp16_round(x[i]). */
void l3d_round_fp16(float *x, size_t n);

/* Bulk conversions; src and dst must not overlap. */
void l3d_f32_to_f16_n(const float *src, uint16_t *dst, size_t n);
void l3d_f16_to_f32_n(const uint16_t *src, float *dst, size_t n);

/* 1 when any of x[0..n) is an infinity or NaN, else 0 (the overflow test of
 * dynamic loss scaling). Reads every element: no early exit, so the cost does
 * not depend on the data. */
int l3d_has_nonfinite(const float *x, size_t n);

#endif
