/* kernels/cpu/half against references written here in double precision: every
 * one of the 65536 half patterns decoded by the textbook formula and
 * round-tripped; the tie between every pair of adjacent halves (so ties to
 * even at every exponent, subnormals included) and one float ulp either side;
 * the overflow and underflow boundaries; a sweep and random floats against a
 * rounding reference that works with frexp/floor instead of bit tricks. */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/cpu/half.h"

static uint32_t bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

static float from_bits(uint32_t u)
{
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* The value a half pattern stands for, from the IEEE definition. */
static double ref_decode(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

/* x rounded to the nearest half (ties to even), as a double. */
static double ref_round(double x)
{
    double a = fabs(x);
    if (isnan(x) || a == 0)
        return x;
    if (a >= 65520.0)
        return copysign(INFINITY, x);
    int e;
    frexp(a, &e);                         /* a = f·2^e, f in [0.5, 1) */
    int E = e - 1 < -14 ? -14 : e - 1;    /* binade, clamped at the subnormal range */
    double ulp = ldexp(1.0, E - 10);
    double q = a / ulp, r = floor(q);     /* exact: q has at most 24+ significant bits */
    if (q - r > 0.5 || (q - r == 0.5 && fmod(r, 2.0) == 1.0))
        r += 1;
    return copysign(r * ulp, x);
}

static void expect_round(float x, double want)
{
    float got = l3d_fp16_round(x);
    if (bits(got) != bits((float)want))
        fail_msg("round(%a) = %a, want %a", (double)x, (double)got, want);
}

static void test_decode_all(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        double want = ref_decode((uint16_t)h);
        float got = l3d_f16_to_f32((uint16_t)h);
        if (isnan(want)) {
            assert_true(isnan(got));
            assert_int_equal(signbit(got) != 0, (h >> 15) != 0);
        } else if (bits(got) != bits((float)want)) {
            fail_msg("decode %04x = %a, want %a", h, (double)got, want);
        }
    }
}

static void test_roundtrip_all(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t back = l3d_f32_to_f16(l3d_f16_to_f32((uint16_t)h));
        if (back != h)
            fail_msg("%04x -> %a -> %04x", h, (double)l3d_f16_to_f32((uint16_t)h), back);
    }
}

/* Between each pair of adjacent finite halves: the exact midpoint goes to the
 * one with the even significand; one float ulp off it goes to the nearer. */
static void test_ties_every_exponent(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 0x7bff; h++) {
        for (int s = 0; s < 2; s++) {
            uint16_t lo = (uint16_t)(h | (s << 15)), hi = (uint16_t)((h + 1) | (s << 15));
            float vlo = l3d_f16_to_f32(lo), vhi = l3d_f16_to_f32(hi);
            float mid = (float)(((double)vlo + (double)vhi) / 2);   /* exact in float */
            assert_true((double)mid == ((double)vlo + (double)vhi) / 2);
            uint16_t even = (h & 1) ? hi : lo;
            assert_int_equal(l3d_f32_to_f16(mid), even);
            assert_int_equal(l3d_f32_to_f16(nextafterf(mid, vlo)), lo);
            assert_int_equal(l3d_f32_to_f16(nextafterf(mid, vhi)), hi);
            expect_round(mid, ref_round(mid));
        }
    }
}

static void test_boundaries(void **state)
{
    (void)state;
    expect_round(65504.0f, 65504.0);
    expect_round(nextafterf(65520.0f, 0), 65504.0);
    expect_round(65520.0f, INFINITY);                /* tie; 65504 is odd: goes up */
    expect_round(-65520.0f, -INFINITY);
    expect_round(1e10f, INFINITY);
    expect_round(FLT_MAX, INFINITY);
    expect_round(INFINITY, INFINITY);
    expect_round(-INFINITY, -INFINITY);
    expect_round(0x1p-24f, 0x1p-24);                 /* smallest subnormal */
    expect_round(0x1p-25f, 0.0);                     /* exactly half of it: tie to even 0 */
    expect_round(-0x1p-25f, -0.0);
    expect_round(nextafterf(0x1p-25f, 1), 0x1p-24);
    expect_round(0x1p-26f, 0.0);
    expect_round(FLT_MIN, 0.0);
    expect_round(from_bits(1), 0.0);                 /* float subnormal */
    expect_round(-0.0f, -0.0);
    expect_round(1.5f * 0x1p-24f, 2 * 0x1p-24);      /* odd 1 -> even 2 */
    expect_round(2.5f * 0x1p-24f, 2 * 0x1p-24);      /* tie stays on even 2 */
    expect_round(0x1p-14f, 0x1p-14);                 /* smallest normal */
    expect_round(0x1p-14f - 0x1p-25f, 0x1p-14);      /* top subnormal tie rounds up into normals */
    expect_round(1.0f + 0x1p-11f, 1.0);              /* tie at 1: even is 1 */
    expect_round(1.0f + 3 * 0x1p-11f, 1.0 + 0x1p-9);
    assert_int_equal(l3d_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(l3d_f32_to_f16(INFINITY), 0x7c00);
    assert_int_equal(l3d_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(l3d_f32_to_f16(0x1p-24f), 0x0001);

    /* NaN keeps its sign and top payload bits; a low-only payload stays a NaN. */
    assert_int_equal(l3d_f32_to_f16(from_bits(0x7fc00000u)), 0x7e00);
    assert_int_equal(l3d_f32_to_f16(from_bits(0xffc00000u)), 0xfe00);
    assert_int_equal(l3d_f32_to_f16(from_bits(0x7f802000u)), 0x7c01);
    assert_true(isnan(l3d_fp16_round(from_bits(0x7f800001u))));
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd32(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 32);
}

/* A strided sweep over every float bit pattern from 2^-26 to 2^17 (all half
 * binades and both overflow/underflow edges), plus random patterns of every
 * exponent, against ref_round. */
static void test_sweep_and_random(void **state)
{
    (void)state;
    for (uint32_t u = 0x32800000u; u < 0x48000000u; u += 251) {
        expect_round(from_bits(u), ref_round(from_bits(u)));
        expect_round(from_bits(u | 0x80000000u), ref_round(from_bits(u | 0x80000000u)));
    }
    for (int i = 0; i < 1000000; i++) {
        float x = from_bits(rnd32());
        if (isnan(x))
            assert_true(isnan(l3d_fp16_round(x)));
        else
            expect_round(x, ref_round(x));
    }
}

static void test_bulk_and_nonfinite(void **state)
{
    (void)state;
    enum { N = 1000 };
    float x[N], y[N], z[N];
    uint16_t h[N];
    for (int i = 0; i < N; i++)
        x[i] = ldexpf((float)rnd32() / 4294967296.0f - 0.5f, (int)(rnd32() % 40) - 24);
    memcpy(y, x, sizeof x);
    l3d_round_fp16(y, N);
    l3d_f32_to_f16_n(x, h, N);
    l3d_f16_to_f32_n(h, z, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(h[i], l3d_f32_to_f16(x[i]));
        assert_int_equal(bits(y[i]), bits(l3d_fp16_round(x[i])));
        assert_int_equal(bits(z[i]), bits(y[i]));
    }

    assert_int_equal(l3d_has_nonfinite(x, 0), 0);
    x[0] = FLT_MAX;
    x[1] = -FLT_MAX;
    assert_int_equal(l3d_has_nonfinite(x, N), 0);
    const float bad[3] = {INFINITY, -INFINITY, NAN};
    for (int b = 0; b < 3; b++)
        for (int pos = 0; pos < 37; pos++) {
            float keep = x[pos];
            x[pos] = bad[b];
            assert_int_equal(l3d_has_nonfinite(x, 37), 1);
            assert_int_equal(l3d_has_nonfinite(x + pos + 1, 37), 0);
            x[pos] = keep;
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_all),
        cmocka_unit_test(test_roundtrip_all),
        cmocka_unit_test(test_ties_every_exponent),
        cmocka_unit_test(test_boundaries),
        cmocka_unit_test(test_sweep_and_random),
        cmocka_unit_test(test_bulk_and_nonfinite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
