/* Number <-> text (formats/numtext.h): the exact layout index lines have
 * always used, shortest digits that read back bit for bit, and parsing at
 * the edges of the double range. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "formats/numtext.h"

static void expect_text(double v, const char *want)
{
    char buf[L3D_DTOA_ROOM];
    int n = l3d_dtoa(v, buf);
    if (strcmp(buf, want) != 0 || n != (int)strlen(want))
        fail_msg("%a: got '%s' (%d), want '%s'", v, buf, n, want);
}

static void test_layout(void **state)
{
    (void)state;
    expect_text(0.0, "0");
    expect_text(-0.0, "0");
    expect_text(2, "2");
    expect_text(-2.5, "-2.5");
    expect_text(0.1, "0.1");
    expect_text(0.1 + 0.2, "0.30000000000000004");
    expect_text(1e-6, "0.000001");
    expect_text(1.25e-6, "0.00000125");
    expect_text(1e-7, "1e-7");
    expect_text(-1.5e-7, "-1.5e-7");
    expect_text(1e20, "100000000000000000000");
    expect_text(1e21, "1e+21");
    expect_text(1.2345e21, "1.2345e+21");
    expect_text(123456789, "123456789");
    expect_text(1556675185903083.2, "1556675185903083.2");
    expect_text(5e-324, "5e-324");
    expect_text(1.7976931348623157e308, "1.7976931348623157e+308");
    expect_text(0.49649329755966987, "0.49649329755966987");
    /* the decimal point after each of 17 digits, and before them */
    expect_text(1.2345678901234567, "1.2345678901234567");
    expect_text(12345678901234567.0 / 1e9, "12345678.901234567");
    expect_text(1234567890123456.7, "1234567890123456.8");
    expect_text(0.012345678901234567, "0.012345678901234567");
    expect_text(0.0000012345678901234567, "0.0000012345678901234567");
    expect_text(-1.2345678901234566e-7, "-1.2345678901234566e-7");
    expect_text(1.2345678901234568e21, "1.2345678901234568e+21");
    expect_text(1.5e300, "1.5e+300");
    expect_text(1e-10, "1e-10");
    expect_text(9007199254740991.0, "9007199254740991");
    expect_text(9007199254740992.0, "9007199254740992");
    expect_text(123456789012345680000.0, "123456789012345680000");
    expect_text(0.5, "0.5");
    expect_text(10, "10");
}

/* The layout rule written out plainly: significant digits d[0, n), the
 * first worth 10^e. */
static void reference_text(char *out, int negative, const char *d, int n, int e)
{
    char *o = out;
    if (negative)
        *o++ = '-';
    if (e <= -7 || e >= 21) {
        *o++ = d[0];
        if (n > 1)
            *o++ = '.';
        for (int i = 1; i < n; i++)
            *o++ = d[i];
        o += sprintf(o, "e%c%d", e < 0 ? '-' : '+', e < 0 ? -e : e);
        return;
    }
    if (e < 0) {
        o += sprintf(o, "0.");
        for (int i = e + 1; i < 0; i++)
            *o++ = '0';
    }
    for (int i = 0; i < n || i <= e; i++) {
        if (i == e + 1 && e >= 0)
            *o++ = '.';
        *o++ = i < n ? d[i] : '0';
    }
    *o = 0;
}

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_round_trip(void **state)
{
    (void)state;
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 1000000; i++) {
        uint64_t u = next_rand(&seed);
        double v, back;
        memcpy(&v, &u, sizeof v);
        if (i & 1)   /* every other one as index lines hold: |v| < 10^4 */
            v = (double)(u >> 11) * 0x1p-53 * 2e4 - 1e4;
        if (!isfinite(v))
            continue;
        char buf[L3D_DTOA_ROOM];
        int n = l3d_dtoa(v, buf);
        if (l3d_strtod(buf, (size_t)n, &back) != 0)
            fail_msg("'%s' does not parse", buf);
        if (v != 0 && memcmp(&v, &back, sizeof v) != 0)
            fail_msg("%a -> '%s' -> %a", v, buf, back);
        /* shortest: with one significant digit fewer, no text reads back
         * (printf rounds correctly, so it judges) */
        char sig[32];
        int nd = 0;
        for (const char *p = buf; *p && *p != 'e'; p++)
            if (*p >= '0' && *p <= '9' && (nd || *p != '0'))
                sig[nd++] = *p;
        while (nd > 1 && sig[nd - 1] == '0')
            nd--;   /* "100000000000000000000" has one */
        if (nd > 1) {
            char fewer[40];
            snprintf(fewer, sizeof fewer, "%.*e", nd - 2, v);
            if (strtod(fewer, NULL) == v)
                fail_msg("'%s' is not shortest: '%s' reads back too", buf, fewer);
        }
        /* closest: of the texts with nd digits, the one nearest v, which is
         * printf's correctly rounded one whenever that reads back */
        char near[40];
        snprintf(near, sizeof near, "%.*e", nd - 1, v);
        if (strtod(near, NULL) == v) {
            int a = 0, b = 0;
            char dn[32], dg[32];
            for (const char *p = near; *p && *p != 'e'; p++)
                if (*p >= '0' && *p <= '9')
                    dn[a++] = *p;
            for (int k = 0; k < nd; k++)
                dg[b++] = sig[k];
            if (a != b || memcmp(dn, dg, (size_t)a) != 0)
                fail_msg("'%s' is not the closest %d-digit text: '%s'", buf, nd, near);
            /* and laid out as the rule says */
            char want[64];
            reference_text(want, v < 0, sig, nd, atoi(strchr(near, 'e') + 1));
            if (strcmp(buf, want) != 0 || n != (int)strlen(want))
                fail_msg("%a: got '%s', want '%s'", v, buf, want);
        }
    }
}

static void expect_parse(const char *s, int rc, double want)
{
    double v = 12345;
    int got = l3d_strtod(s, strlen(s), &v);
    if (got != rc)
        fail_msg("'%.40s': rc %d, want %d", s, got, rc);
    if (rc == 0 && memcmp(&v, &want, sizeof v) != 0)
        fail_msg("'%.40s': %a, want %a", s, v, want);
}

static void test_parse_edges(void **state)
{
    (void)state;
    expect_parse("0", 0, 0.0);
    expect_parse("-0", 0, -0.0);
    expect_parse("1556675185903083.2", 0, 1556675185903083.2);
    expect_parse("-3e2", 0, -300);
    expect_parse("1E5", 0, 1e5);
    expect_parse("1e999", 0, INFINITY);
    expect_parse("-1e999", 0, -INFINITY);
    expect_parse("1e-999", 0, 0.0);
    expect_parse("-1e-999", 0, -0.0);
    expect_parse("4.9406564584124654e-324", 0, 5e-324);
    expect_parse("2.2250738585072011e-308", 0, 2.2250738585072011e-308);
    expect_parse("1.7976931348623159e308", 0, INFINITY);
    char big[700];
    memset(big, '9', 650);
    big[650] = 0;
    expect_parse(big, 0, INFINITY);
    big[0] = '1';
    memset(big + 1, '0', 30);
    big[31] = 0;
    expect_parse(big, 0, 1e30);
    const char *bad[] = {"", "-", "+1", ".5", "inf", "-inf", "nan", "NaN", "0x10", "1x", "1e"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_parse(bad[i], -1, 0);
}

static void test_integers(void **state)
{
    (void)state;
    int64_t vals[] = {0, -1, 7, 1234567890123LL, INT64_MIN, INT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        char buf[24], want[24];
        int n = l3d_itoa(vals[i], buf);
        snprintf(want, sizeof want, "%lld", (long long)vals[i]);
        assert_string_equal(buf, want);
        assert_int_equal(n, (int)strlen(want));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_parse_edges),
        cmocka_unit_test(test_integers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
