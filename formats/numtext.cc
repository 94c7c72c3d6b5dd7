// The C++ side of formats/numtext.h: fmt's Dragonbox for shortest digits,
// C++17 <charconv> for integers and parsing (libstdc++ 12's from_chars is
// fast_float), all exact and several times faster than the Grisu/bignum
// fallbacks we had.
#include "formats/numtext.h"

#include <fmt/format.h>

#include <charconv>
#include <clocale>
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <locale.h>
#include <system_error>

// v < 10^8 as 8 ASCII digits in one register, the first in the low byte:
// the halves, quarters and digits are split in parallel lanes of one
// 64-bit word (x / 100 as x * 10486 >> 20 for x < 10^4, x / 10 as
// x * 103 >> 10 for x < 100, both exact there). Digits written a pair at a
// time to memory and read back in one piece stalled on store forwarding:
// that was most of l3d_dtoa's time.
static inline uint64_t ascii8(uint32_t v)
{
    uint64_t halves = (uint64_t)(v / 10000) | ((uint64_t)(v % 10000) << 32);
    uint64_t hundreds = ((halves * 10486) >> 20) & 0x0000007F0000007Full;
    uint64_t quarters = hundreds | ((halves - 100 * hundreds) << 16);
    uint64_t tens = ((quarters * 103) >> 10) & 0x000F000F000F000Full;
    uint64_t digits = tens | ((quarters - 10 * tens) << 8);
    return digits + 0x3030303030303030ull;
}

typedef unsigned __int128 u128;
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "digits are stored from registers, the first in the lowest byte");

static const uint64_t k_pow10[18] = {
    1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull,
    100000000ull, 1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull,
    10000000000000ull, 100000000000000ull, 1000000000000000ull, 10000000000000000ull,
    100000000000000000ull};

static inline int count_digits(uint64_t sig) // 0 < sig < 10^17
{
    int bits = 64 - __builtin_clzll(sig);
    int n = (bits * 1233) >> 12; // floor(log10(2^bits)): n or n - 1 digits
    return n + (sig >= k_pow10[n]);
}

// The n digits of sig (0 < sig < 10^17) at o, with a '.' before digit
// `point` when 0 < point < n; returns the end. Writes 18 bytes past the
// end at most.
static inline char *put_digits(char *o, uint64_t sig, int n, int point)
{
    if (n == 17) {
        *o++ = (char)('0' + sig / 10000000000000000ull);
        sig %= 10000000000000000ull;
        n = 16;
        point--;
    }
    u128 w = ascii8((uint32_t)(sig / 100000000)) |
             (u128)ascii8((uint32_t)(sig % 100000000)) << 64;
    w >>= 8 * (16 - n); // drop the leading zeros
    std::memcpy(o, &w, 16);
    if (point < 0 || point >= n)
        return o + n;
    o[point] = '.';
    w >>= 8 * point;
    std::memcpy(o + point + 1, &w, 16);
    return o + n + 1;
}

// Digits of sig (n of them) times 10^(e - n + 1), laid out at o; returns
// the end. Every copy has a fixed size: none is a call.
static char *layout(char *o, uint64_t sig, int n, int e)
{
    if (-7 < e && e < 21) {
        int point = e + 1; // digits before the decimal point
        if (point <= 0) {
            std::memcpy(o, "0.000000", 8);
            return put_digits(o + 2 - point, sig, n, -1);
        }
        if (point >= n) {
            o = put_digits(o, sig, n, -1);
            std::memset(o, '0', 20);
            return o + point - n;
        }
        return put_digits(o, sig, n, point);
    }
    o = put_digits(o, sig, n, 1);
    *o++ = 'e';
    *o++ = e < 0 ? '-' : '+';
    int a = e < 0 ? -e : e; // at most 324
    if (a >= 100)
        *o++ = (char)('0' + a / 100);
    if (a >= 10)
        *o++ = (char)('0' + a / 10 % 10);
    *o++ = (char)('0' + a % 10);
    return o;
}

// Shortest digits come from fmt's Dragonbox (libfmt-dev): the same digits
// as std::to_chars (shortest, then closest to the value), in half the time,
// which mattered: lyft-index writes 8.6 million numbers for Lyft's train set.
// fmt exports it for its own inline code (format.h calls it), in its detail
// namespace; tests/test_numtext.c checks every digit against printf.
//
// The digits are laid out as ECMAScript's Number.prototype.toString does,
// the rule our files have always used (docs/formats.md): decimal notation
// for exponents -7 < e < 21 ("0.000001", "100000000000000000000", "2"),
// otherwise "1e-7", "1.5e+21"; "-0" prints as "0".
extern "C" int l3d_dtoa(double v, char buf[L3D_DTOA_ROOM])
{
    if (!std::isfinite(v)) {
        const char *s = std::isnan(v) ? "NaN" : v < 0 ? "-Infinity" : "Infinity";
        std::strcpy(buf, s);
        return (int)std::strlen(s);
    }
    if (v == 0) { // both zeros
        buf[0] = '0';
        buf[1] = 0;
        return 1;
    }
    char *o = buf;
    if (v < 0) {
        *o++ = '-';
        v = -v;
    }
    // Integers below 2^53 (timestamps, counts) are their own shortest
    // digits, trailing zeros and all.
    uint64_t sig;
    int exponent;
    if (v < 9007199254740992.0 && v == (double)(uint64_t)v) {
        sig = (uint64_t)v;
        exponent = 0;
    } else {
        fmt::detail::dragonbox::decimal_fp<double> d = fmt::detail::dragonbox::to_decimal(v);
        sig = d.significand; // at most 17 digits
        exponent = d.exponent;
    }
    int n = count_digits(sig);
    o = layout(o, sig, n, exponent + n - 1);
    *o = 0;
    return (int)(o - buf);
}

extern "C" int l3d_itoa(int64_t v, char buf[24])
{
    char *end = std::to_chars(buf, buf + 23, v).ptr;
    *end = 0;
    return (int)(end - buf);
}

// JSON number text only (yajl's lexer has already checked the grammar);
// from_chars would also take "inf" and "nan", which JSON does not have.
extern "C" int l3d_strtod(const char *s, size_t n, double *out)
{
    size_t d = n && s[0] == '-';
    if (d >= n || s[d] < '0' || s[d] > '9')
        return -1;
    double v;
    std::from_chars_result r = std::from_chars(s, s + n, v, std::chars_format::general);
    if (r.ptr != s + n)
        return -1;
    if (r.ec == std::errc::result_out_of_range) {
        // from_chars leaves v unset when the value overflows or underflows;
        // glibc's strtod rounds those correctly (±inf, ±0), in the C locale
        // whatever the process's locale is.
        static locale_t c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
        char small[512];
        char *tmp = n < sizeof small ? small : static_cast<char *>(std::malloc(n + 1));
        if (!tmp || !c_locale) {
            if (tmp != small)
                std::free(tmp);
            return -1;
        }
        std::memcpy(tmp, s, n);
        tmp[n] = 0;
        char *end;
        v = strtod_l(tmp, &end, c_locale);
        bool whole = end == tmp + n;
        if (tmp != small)
            std::free(tmp);
        if (!whole)
            return -1;
    } else if (r.ec != std::errc()) {
        return -1;
    }
    *out = v;
    return 0;
}
