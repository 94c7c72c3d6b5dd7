// The C++ side of formats/numtext.h, over C++17 <charconv>: libstdc++ 12
// implements std::to_chars with Ryu and std::from_chars with fast_float, both
// exact and several times faster than the Grisu/bignum fallbacks we had.
#include "formats/numtext.h"

#include <charconv>
#include <clocale>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <locale.h>
#include <system_error>

// to_chars picks fixed or scientific notation by length, which is not the
// ECMAScript rule our files have always used (and which docs/formats.md
// shows): so we take only the shortest digits and the exponent from it, in
// scientific form, and lay them out ourselves as ECMAScript's
// Number.prototype.toString does: decimal notation for exponents -7 < e < 21
// ("0.000001", "100000000000000000000", "2"), otherwise "1e-7", "1.5e+21";
// "-0" prints as "0".
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
    char sci[32];
    std::to_chars_result r = std::to_chars(sci, sci + sizeof sci, v, std::chars_format::scientific);
    // sci is "[-]d[.ddd]e(+|-)XX[X]": at most 17 digits
    const char *p = sci;
    char *o = buf;
    if (*p == '-')
        *o++ = *p++;
    char digits[20];
    int n = 0;
    for (; *p != 'e'; p++)
        if (*p != '.')
            digits[n++] = *p;
    p++; // 'e'
    int neg_exp = *p++ == '-';
    int e = 0;
    for (; p < r.ptr; p++)
        e = 10 * e + (*p - '0');
    if (neg_exp)
        e = -e;
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
