/* float32 <-> binary16 by bit manipulation; semantics in half.h. */
#include "kernels/cpu/half.h"

#include <string.h>

static inline uint32_t f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline float bits_f32(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

uint16_t l3d_f32_to_f16(float x)
{
    uint32_t u = f32_bits(x);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;

    if (a > 0x7f800000u) {                        /* NaN: keep the top payload bits */
        uint16_t pay = (uint16_t)((a >> 13) & 0x3ffu);
        return (uint16_t)(sign | 0x7c00u | (pay ? pay : 0x200u));
    }
    if (a >= 0x477ff000u)                         /* >= 65520 (or inf): tie goes to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (a >= 0x38800000u) {                       /* >= 2^-14: a normal half */
        /* Rebias the exponent (127 -> 15, i.e. subtract 112 << 23) and round the 13
         * dropped mantissa bits: adding 0xfff plus the kept lsb carries exactly when
         * the dropped part exceeds one half, or equals it and the kept lsb is odd.
         * A carry out of the mantissa correctly bumps the exponent. */
        uint32_t r = a - (112u << 23) + 0xfffu + ((a >> 13) & 1u);
        return (uint16_t)(sign | (r >> 13));
    }
    /* Subnormal half (or zero): the value in units of 2^-24 is m · 2^(e - 126) with
     * m the 24-bit significand; shift it right with round-to-nearest-even. */
    uint32_t e = a >> 23;
    if (e < 102)                                  /* below 2^-25: rounds to zero */
        return sign;
    uint32_t m = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;                     /* 14 .. 24 */
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u)))
        q++;                                      /* may reach 0x400, the smallest normal */
    return (uint16_t)(sign | q);
}

float l3d_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f)                                /* inf, or NaN with its payload */
        return bits_f32(sign | 0x7f800000u | (m << 13));
    if (e != 0)
        return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
    if (m == 0)
        return bits_f32(sign);
    /* Subnormal: normalise so the leading 1 becomes the implicit bit. */
    uint32_t k = 0;
    while (!(m & 0x400u)) {
        m <<= 1;
        k++;
    }
    return bits_f32(sign | ((113u - k) << 23) | ((m & 0x3ffu) << 13));
}

float l3d_fp16_round(float x)
{
    return l3d_f16_to_f32(l3d_f32_to_f16(x));
}

void l3d_round_fp16(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = l3d_f16_to_f32(l3d_f32_to_f16(x[i]));
}

void l3d_f32_to_f16_n(const float *src, uint16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = l3d_f32_to_f16(src[i]);
}

void l3d_f16_to_f32_n(const uint16_t *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = l3d_f16_to_f32(src[i]);
}

int l3d_has_nonfinite(const float *x, size_t n)
{
    /* Integer test (exponent all ones) so -ffast-math style flags cannot fold it
     * away, accumulated branch-free so the loop vectorises. */
    uint32_t any = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, sizeof u);
        any |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
    }
    return any != 0;
}
