/* formats/json_fast: the same records as formats/json_records (yajl) gives,
 * bit for bit, and a refusal of everything yajl refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "formats/json_fast.h"
#include "formats/json_records.h"

/* Every record as text, doubles in hex (exact). */
typedef struct dump { char *s; size_t len, cap; } dump;

static void put(dump *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[4096];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof tmp);
    if (d->len + (size_t)n + 1 > d->cap) {
        d->cap = (d->len + (size_t)n + 1) * 2;
        d->s = realloc(d->s, d->cap);
        assert_non_null(d->s);
    }
    memcpy(d->s + d->len, tmp, (size_t)n + 1);
    d->len += (size_t)n;
}

static int dump_record(void *ctx, const l3d_record *r, l3d_err *err)
{
    (void)err;
    dump *d = ctx;
    put(d, "#%ld n=%d\n", r->index, r->n);
    for (int i = 0; i < r->n; i++) {
        const l3d_jfield *f = &r->f[i];
        put(d, " [%s] kind=%d", f->key, (int)f->kind);
        switch (f->kind) {
        case L3D_JBOOL: put(d, " %d", f->boolean); break;
        case L3D_JNUM: put(d, " %a", f->num); break;
        case L3D_JSTR:
            put(d, " len=%zu '", f->len);
            for (size_t k = 0; k < f->len; k++)
                put(d, "%02x", (unsigned char)f->str[k]);
            assert_int_equal(f->str[f->len], 0);
            put(d, "'");
            break;
        case L3D_JNUMARR:
            put(d, " n=%d", f->n_nums);
            for (int k = 0; k < f->n_nums; k++)
                put(d, " %a", f->nums[k]);
            break;
        default: break;
        }
        put(d, "\n");
    }
    return L3D_OK;
}

static int by_yajl(const char *text, dump *d)
{
    l3d_err err = {0};
    l3d_jparser *p = l3d_jparser_new("t.json", dump_record, d);
    int rc = l3d_jparser_feed(p, (const unsigned char *)text, strlen(text), &err);
    if (!rc)
        rc = l3d_jparser_finish(p, &err);
    l3d_jparser_free(p);
    return rc;
}

static int by_fast(const char *text, dump *d)
{
    size_t n = strlen(text);
    char *buf = malloc(n + L3D_JSON_FAST_PADDING);
    memcpy(buf, text, n);
    memset(buf + n, 'x', L3D_JSON_FAST_PADDING);   /* padding may hold anything */
    l3d_json_fast *p = l3d_json_fast_new();
    assert_non_null(p);
    long n_records;
    l3d_err err = {0};
    int rc = l3d_json_fast_parse(p, buf, n, "t.json", dump_record, d, &n_records, &err);
    l3d_json_fast_free(p);
    free(buf);
    return rc;
}

static void test_same_records_as_yajl(void **state)
{
    (void)state;
    const char *texts[] = {
        "[]",
        " [ ] ",
        "[{}]",
        "[{\"token\": \"a\", \"n\": 1, \"b\": true, \"c\": false, \"z\": null}]",
        /* escapes, unicode, a key with escapes, duplicate keys */
        "[{\"s\": \"q\\\"b\\\\s\\/n\\nt\\tu\\u00e9\\ud83d\\ude00\", \"k\\u0041\": \"\", \"s\": \"x\"}]",
        "[{\"s\": \"h\xc3\xa9llo \xe2\x82\xac\"}]",
        /* numbers: rounding, extremes, integers beyond 2^53 and 2^64 */
        "[{\"a\": [0.1, 1e-7, -0, 0.0, 1.7976931348623157e308, 5e-324, 2.2250738585072014e-308]}]",
        "[{\"a\": 12345678901234567890, \"b\": 9007199254740993, \"c\": -1E+2, \"d\": 1556675185903083.2}]",
        "[{\"a\": 123456789012345678901234567890, \"b\": 0.30000000000000004441}]",
        /* more than 19 digits after "0.": simdjson 3.0.1 gets these wrong */
        "[{\"a\": 0.95000000000000000000, \"b\": [0.1234567890123456789012, -0.30000000000000004441e1]}]",
        /* 19 and 20 digits: the first are simdjson's, the second parsed again */
        "[{\"a\": 0.950000000000000001, \"b\": [-0.1234567890123456789, 1234567890.123456789]}]",
        "[{\"a\": 0.9500000000000000001, \"b\": [-0.12345678901234567891, 12345678901.23456789e-3]}]",
        "[{\"a\": 2.4703282292062327e-324, \"b\": 1e-400}]",   /* underflow to 0 */
        /* arrays: 16 numbers kept, 17 not; nested and mixed ones are "other" */
        "[{\"a\": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16], "
        "\"b\": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}]",
        "[{\"a\": [[1, 2], 3], \"b\": [1, \"x\"], \"c\": [], \"d\": {\"x\": [1, {\"y\": null}]},"
        " \"e\": [1, [2]], \"f\": [\"t\", true, null]}]",
        "[{\"a\": 1},\n{\"a\": 2} ,{\"a\": 3}\n]\n",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        dump a = {0}, b = {0};
        int rc_y = by_yajl(texts[i], &a), rc_f = by_fast(texts[i], &b);
        if (rc_y || rc_f)
            fail_msg("case %zu: yajl %d, fast %d", i, rc_y, rc_f);
        if (strcmp(a.s ? a.s : "", b.s ? b.s : ""))
            fail_msg("case %zu differs:\nyajl:\n%s\nfast:\n%s", i, a.s, b.s);
        free(a.s);
        free(b.s);
    }
}

/* Where yajl says no, so does the fast parser (the caller then reads the
 * file again with yajl, for its message). */
static void test_refuses_what_yajl_refuses(void **state)
{
    (void)state;
    const char *bad[] = {
        "", "[", "]", "{}", "[1]", "[[]]", "[{}, 1]", "[{}] [{}]", "[{}],",
        "[{}] x", "[{}]]", "[{}]}", "[{\"a\": 1}], [{\"a\": 2}]",
        "[{\"a\": 1] , [{\"a\": 2}]",
        "[{\"a\": tru}]", "[{\"a\": nul}]", "[{\"a\": [tru]}]", "[{\"a\": {\"b\": fals}}]",
        "[{\"a\": 01}]", "[{\"a\": 1.}]", "[{\"a\": -}]", "[{\"a\": .5}]", "[{\"a\": 1e}]",
        "[{\"a\": +1}]", "[{\"a\": NaN}]", "[{\"a\": Infinity}]",
        "[{\"a\": [1, 01]}]", "[{\"a\": {\"b\": 1.}}]",
        "[{\"a\": \"x\ty\"}]", "[{\"a\": \"\\x\"}]", "[{\"a\": \"\\u12\"}]", "[{\"a\": [\"\\q\"]}]",
        "[{\"a\": \"\xff\"}]", "[{\"a\": \"\xc3\"}]", "[{\"a\": \"unclosed}]",
        "[{\"a\" 1}]", "[{\"a\": 1,}]", "[{\"a\": 1 \"b\": 2}]", "[{a: 1}]", "[{\"a\": 1}, ]",
        "[{\"a\": [1, 2,]}]", "[{\"a\": 1}/* c */]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dump a = {0}, b = {0};
        int rc_y = by_yajl(bad[i], &a), rc_f = by_fast(bad[i], &b);
        if (!rc_y)
            fail_msg("case %zu (%s): yajl took it: the test is wrong", i, bad[i]);
        if (!rc_f)
            fail_msg("case %zu (%s): the fast parser took what yajl refuses", i, bad[i]);
        free(a.s);
        free(b.s);
    }
}

static int refuse_second(void *ctx, const l3d_record *r, l3d_err *err)
{
    (*(int *)ctx)++;
    return r->index == 1 ? l3d_fail(err, L3D_ESCHEMA, "no") : L3D_OK;
}

/* A callback's failure stops the parse and is returned. */
static void test_callback_failure_stops(void **state)
{
    (void)state;
    const char *t = "[{\"a\": 1}, {\"a\": 2}, {\"a\": 3}]";
    char buf[64 + L3D_JSON_FAST_PADDING] = {0};
    memcpy(buf, t, strlen(t));
    l3d_json_fast *p = l3d_json_fast_new();
    int calls = 0;
    long n;
    l3d_err err = {0};
    assert_int_equal(l3d_json_fast_parse(p, buf, strlen(t), "t.json", refuse_second, &calls, &n,
                                         &err),
                     L3D_ESCHEMA);
    assert_int_equal(calls, 2);
    assert_int_equal(n, 2);
    assert_string_equal(err.msg, "no");
    l3d_json_fast_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_records_as_yajl),
        cmocka_unit_test(test_refuses_what_yajl_refuses),
        cmocka_unit_test(test_callback_failure_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
