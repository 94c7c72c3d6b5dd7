/* The streaming table reader: records, field types, and the messages for
 * malformed or ill-typed input (file, line, column). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "formats/json_records.h"

typedef struct seen {
    int n;
    double ts[8];
    char tok[8][80];
    int n_nums[8];
    int key_frame[8];
} seen;

static int collect(void *ctx, const l3d_record *r, l3d_err *err)
{
    seen *s = ctx;
    const char *tok;
    int rc = l3d_rec_str(r, "token", &tok, err);
    if (rc)
        return rc;
    if ((rc = l3d_rec_num(r, "timestamp", &s->ts[s->n], err)))
        return rc;
    const l3d_jfield *f = l3d_rec_field(r, "translation");
    s->n_nums[s->n] = f && f->kind == L3D_JNUMARR ? f->n_nums : -1;
    const l3d_jfield *k = l3d_rec_field(r, "is_key_frame");
    s->key_frame[s->n] = k && k->kind == L3D_JBOOL ? k->boolean : -1;
    snprintf(s->tok[s->n++], 80, "%s", tok);
    return L3D_OK;
}

/* Feeds text in chunks of `chunk` bytes. */
static int parse(const char *text, size_t chunk, seen *s, l3d_err *err)
{
    memset(s, 0, sizeof *s);
    l3d_jparser *p = l3d_jparser_new("t.json", collect, s);
    size_t n = strlen(text);
    int rc = L3D_OK;
    for (size_t off = 0; off < n && !rc; off += chunk)
        rc = l3d_jparser_feed(p, (const unsigned char *)text + off,
                              off + chunk > n ? n - off : chunk, err);
    if (!rc)
        rc = l3d_jparser_finish(p, err);
    l3d_jparser_free(p);
    return rc;
}

static const char good[] =
    "[\n"
    " {\"token\": \"a1\", \"timestamp\": 1556675185903083.2, \"translation\": [1, 2.5, -3e2],\n"
    "  \"camera_intrinsic\": [[1,0,0],[0,1,0],[0,0,1]], \"attribute_tokens\": [\"x\", \"y\"],\n"
    "  \"nested\": {\"token\": \"inner\"}, \"is_key_frame\": true, \"w\": null},\n"
    " {\"timestamp\": 2, \"token\": \"b\\u00e9\"}\n"
    "]\n";

static void test_records_any_chunking(void **state)
{
    (void)state;
    size_t chunks[] = {1, 2, 7, 64, 100000};
    for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
        seen s;
        l3d_err err = {0};
        assert_int_equal(parse(good, chunks[c], &s, &err), L3D_OK);
        assert_int_equal(s.n, 2);
        assert_string_equal(s.tok[0], "a1");
        assert_string_equal(s.tok[1], "b\xc3\xa9");
        assert_true(s.ts[0] == 1556675185903083.2);
        assert_int_equal(s.n_nums[0], 3);
        assert_int_equal(s.n_nums[1], -1);
        assert_int_equal(s.key_frame[0], 1);
    }
}

static void expect_error(const char *text, int code, const char *needle)
{
    size_t chunks[] = {1, 5, 100000};
    for (size_t c = 0; c < 3; c++) {
        seen s;
        l3d_err err = {0};
        assert_int_equal(parse(text, chunks[c], &s, &err), code);
        if (!strstr(err.msg, needle))
            fail_msg("message '%s' lacks '%s'", err.msg, needle);
        if (!strstr(err.msg, "t.json"))
            fail_msg("message '%s' does not name the file", err.msg);
    }
}

static void test_malformed_json_has_line_and_column(void **state)
{
    (void)state;
    expect_error("[\n{\"token\": \"a\", \"timestamp\": 1},\n  {\"token\": \"b\" \"timestamp\": 2}\n]",
                 L3D_EJSON, "line 3, column");
    /* yajl stops inside or just past the offending token (columns 17-27) */
    seen s;
    l3d_err err = {0};
    assert_int_equal(parse("[\n{\"token\": \"a\", \"timestamp\": 1},\n  {\"token\": \"b\" \"timestamp\": 2}\n]",
                           1 << 16, &s, &err), L3D_EJSON);
    long col = 0;
    const char *at = strstr(err.msg, "column ");
    if (at)
        col = strtol(at + 7, NULL, 10);
    if (col < 17 || col > 27)
        fail_msg("message '%s': column not near the error", err.msg);
    expect_error("[{\"token\": \"a\", \"timestamp\": NaN}]", L3D_EJSON, "line 1, column");
    expect_error("[{\"token\": \"a\", \"timestamp\": 1}", L3D_EJSON, "end of file");
    expect_error("", L3D_EJSON, "malformed");
}

static void test_schema_errors_name_record_and_field(void **state)
{
    (void)state;
    expect_error("[{\"token\": \"a\", \"timestamp\": 1},\n{\"token\": 5, \"timestamp\": 1}]",
                 L3D_ESCHEMA, "record 1 (line 2): field 'token' has the wrong type, expected a string");
    expect_error("[{\"token\": \"a\"}]", L3D_ESCHEMA, "field 'timestamp' is missing");
    expect_error("{\"token\": \"a\"}", L3D_ESCHEMA, "expected a JSON array of objects");
    expect_error("[[1,2]]", L3D_ESCHEMA, "expected an object");
    expect_error("[{\"token\": \"a\", \"timestamp\": 1e999}]", L3D_ENONFINITE, "'timestamp' is not finite");
}

static int need_pose(void *ctx, const l3d_record *r, l3d_err *err)
{
    (void)ctx;
    double t[3];
    return l3d_rec_nums(r, "translation", 3, t, err);
}

static void test_numeric_arrays(void **state)
{
    (void)state;
    const char *cases[][2] = {
        {"[{\"translation\": [1, 2]}]", "an array of 3 numbers"},
        {"[{\"translation\": [1, \"2\", 3]}]", "an array of 3 numbers"},
        {"[{\"translation\": [[1], 2, 3]}]", "an array of 3 numbers"},
        {"[{\"translation\": [1, 2, -1e400]}]", "'translation'[2] is not finite"},
    };
    for (int i = 0; i < 4; i++) {
        l3d_err err = {0};
        l3d_jparser *p = l3d_jparser_new("t.json", need_pose, NULL);
        int rc = l3d_jparser_feed(p, (const unsigned char *)cases[i][0], strlen(cases[i][0]), &err);
        l3d_jparser_free(p);
        assert_int_not_equal(rc, L3D_OK);
        if (!strstr(err.msg, cases[i][1]))
            fail_msg("case %d: message '%s' lacks '%s'", i, err.msg, cases[i][1]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_any_chunking),
        cmocka_unit_test(test_malformed_json_has_line_and_column),
        cmocka_unit_test(test_schema_errors_name_record_and_field),
        cmocka_unit_test(test_numeric_arrays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
