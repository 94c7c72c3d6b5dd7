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
extern "C" int l3d_dtoa(double v, char buf[32])
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
    // Integers below 2^53 (timestamps, counts) are their own shortest text.
    if (v < 9007199254740992.0 && v == (double)(uint64_t)v) {
        o = std::to_chars(o, buf + 31, (uint64_t)v).ptr;
        *o = 0;
        return (int)(o - buf);
    }
    fmt::detail::dragonbox::decimal_fp<double> d = fmt::detail::dragonbox::to_decimal(v);
    char digits[24] = {0};
    int n = (int)(std::to_chars(digits, digits + sizeof digits, d.significand).ptr - digits);
    int e = d.exponent + n - 1; // v = d.ddd x 10^e
    if (-7 < e && e < 21) {
        int point = e + 1; // digits before the decimal point
        if (point <= 0) {
            *o++ = '0';
            *o++ = '.';
            for (int i = point; i < 0; i++)
                *o++ = '0';
            std::memcpy(o, digits, (size_t)n);
            o += n;
        } else if (point >= n) {
            std::memcpy(o, digits, (size_t)n);
            o += n;
            for (int i = n; i < point; i++)
                *o++ = '0';
        } else {
            std::memcpy(o, digits, (size_t)point);
            o += point;
            *o++ = '.';
            std::memcpy(o, digits + point, (size_t)(n - point));
            o += n - point;
        }
    } else {
        *o++ = digits[0];
        if (n > 1) {
            *o++ = '.';
            std::memcpy(o, digits + 1, (size_t)(n - 1));
            o += n - 1;
        }
        *o++ = 'e';
        *o++ = e < 0 ? '-' : '+';
        o = std::to_chars(o, buf + 31, e < 0 ? -e : e).ptr;
    }
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
