/* The streaming table reader: records, field types, and the messages for
 * malformed or ill-typed input (file, line, column); and a table read in
 * chunks on several threads, which must match a streamed read record for
 * record and message for message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "formats/json_records.h"
#include "formats/json_split.h"
#include "formats/source.h"
#include "tests/support/testutil.h"

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

/* ---- a table read in chunks (formats/json_split.h) --------------------- */

enum { MAX_RECS = 4096 };

typedef struct toks {
    int n;
    char tok[MAX_RECS][16];
    double ts[MAX_RECS];
} toks;

static int collect_tok(void *ctx, const l3d_record *r, l3d_err *err)
{
    toks *t = ctx;
    const char *tok;
    int rc = l3d_rec_str(r, "token", &tok, err);
    if (rc || (rc = l3d_rec_num(r, "timestamp", &t->ts[t->n], err)))
        return rc;
    if (t->n >= MAX_RECS)
        return l3d_fail(err, L3D_EINTERNAL, "test: too many records");
    snprintf(t->tok[t->n++], 16, "%s", tok);
    return L3D_OK;
}

/* The parts: a toks each, appended to the owner's. */
static void *part_open(void *owner)
{
    (void)owner;
    return calloc(1, sizeof(toks));
}

static int part_take(void *owner, void *part, l3d_err *err)
{
    toks *to = owner, *from = part;
    if (to->n + from->n > MAX_RECS)
        return l3d_fail(err, L3D_EINTERNAL, "test: too many records");
    memcpy(to->tok[to->n], from->tok, (size_t)from->n * sizeof from->tok[0]);
    memcpy(&to->ts[to->n], from->ts, (size_t)from->n * sizeof from->ts[0]);
    to->n += from->n;
    return L3D_OK;
}

static void part_drop(void *owner, void *part)
{
    (void)owner;
    free(part);
}

static void part_undo(void *owner) { ((toks *)owner)->n = 0; }

static const l3d_parts test_parts = {part_open, part_take, part_drop, part_undo};

typedef struct scan {
    int chunked;
    toks a;
    int chunks;
    size_t bytes;
} scan;

static void count_bytes(void *ctx, size_t n) { ((scan *)ctx)->bytes += n; }

static int on_tab(void *ctx, const char *table, const char *display, int64_t size, l3d_stream *s,
                  l3d_err *err)
{
    (void)table;
    (void)size;
    scan *c = ctx;
    if (c->chunked)
        return l3d_json_parse_table(s, display, collect_tok, &c->a, &test_parts, &c->a,
                                    &c->chunks, count_bytes, c, err);
    return l3d_json_parse_stream(s, display, collect_tok, &c->a, count_bytes, c, err);
}

/* Reads DIR/sample.json streamed or in chunks of about `chunk_bytes`;
 * returns the code, fills err. */
static int read_table(const char *dir, int chunk_bytes, scan *c, l3d_err *err)
{
    memset(c, 0, sizeof *c);
    c->chunked = chunk_bytes > 0;
    char v[32];
    snprintf(v, sizeof v, "%d", chunk_bytes);
    setenv("LIDAR3D_CHUNK_BYTES", v, 1);
    l3d_source *src;
    char *paths[] = {(char *)dir};
    assert_int_equal(l3d_source_open(&src, paths, 1, err), L3D_OK);
    const char *wanted[] = {"sample", NULL};
    int rc = l3d_source_scan(src, wanted, 0, on_tab, c, err);
    l3d_source_close(src);
    unsetenv("LIDAR3D_CHUNK_BYTES");
    return rc;
}

/* Streamed and in chunks of several sizes give the same records in the
 * same order, or the same error. chunks: what to expect of the finest
 * chunking (-1 anything, 0 streamed, 1 one chunk, 2 several). */
static void same_both_ways(const char *text, int chunks)
{
    const char *dir = tu_tmpdir("split");
    char p[4200];
    snprintf(p, sizeof p, "%s/sample.json", dir);
    tu_write_file(p, text);
    static scan whole, parts;
    const int sizes[] = {1000000, 4096, 300, 1};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        l3d_err e1 = {0}, e2 = {0};
        int rc1 = read_table(dir, 0, &whole, &e1), rc2 = read_table(dir, sizes[k], &parts, &e2);
        assert_int_equal(rc1, rc2);
        assert_string_equal(e1.msg, e2.msg);
        if (rc1)
            continue;
        assert_int_equal(whole.bytes, strlen(text));
        assert_int_equal(parts.bytes, strlen(text));
        assert_int_equal(whole.a.n, parts.a.n);
        for (int i = 0; i < whole.a.n; i++) {
            assert_string_equal(whole.a.tok[i], parts.a.tok[i]);
            assert_true(whole.a.ts[i] == parts.a.ts[i]);
        }
        if (sizes[k] == 1 && chunks >= 0) {
            if (chunks == 2)
                assert_true(parts.chunks > 1);
            else
                assert_int_equal(parts.chunks, chunks);
        }
    }
}

/* n records, one per line as Lyft writes them; record `bad` (if >= 0)
 * replaced by `with`. */
static char *records(int n, const char *sep, int bad, const char *with)
{
    size_t cap = (size_t)n * 120 + 1000;
    char *s = malloc(cap);
    size_t len = (size_t)snprintf(s, cap, "[\n");
    for (int i = 0; i < n; i++) {
        len += (size_t)snprintf(s + len, cap - len, "%s", i ? sep : "");
        if (i == bad)
            len += (size_t)snprintf(s + len, cap - len, "%s", with);
        else
            len += (size_t)snprintf(s + len, cap - len,
                                    "{\"token\": \"t%d\", \"timestamp\": %d.25, \"v\": [1, {\"x\": 2}]}",
                                    i, i);
    }
    snprintf(s + len, cap - len, "\n]\n");
    return s;
}

static void test_chunks_same_as_whole(void **state)
{
    (void)state;
    char *t = records(1000, ",\n", -1, NULL);
    same_both_ways(t, 2);
    free(t);
    t = records(1000, ",\n  ", -1, NULL);   /* indented lines */
    same_both_ways(t, 2);
    free(t);
    t = records(1000, "\n, ", -1, NULL);    /* commas leading lines: no line to cut at */
    same_both_ways(t, 1);
    free(t);
    t = records(1000, ", ", -1, NULL);      /* one line: nowhere to cut */
    same_both_ways(t, 1);
    free(t);
    /* lines that start objects nested in records: such a cut is refused */
    char *nested = malloc(200000);
    size_t len = (size_t)sprintf(nested, "[");
    for (int i = 0; i < 600; i++)
        len += (size_t)sprintf(nested + len, "%s{\"token\": \"n%d\", \"timestamp\": 1, \"o\":\n{\"a\": 1}}",
                               i ? ", " : "", i);
    sprintf(nested + len, "]");
    same_both_ways(nested, 0);
    free(nested);
    /* files ending around a page end, with spaces before the final ']' */
    for (size_t size = 8192 - 70; size <= 8192 + 2; size += 9) {
        t = records(60, ",\n", -1, NULL);
        size_t len = strlen(t) - 2;   /* less "]\n" */
        assert_true(len < size);
        t = realloc(t, size + 1);
        memset(t + len, ' ', size - len);
        strcpy(t + size - 1, "]");
        same_both_ways(t, 2);
        free(t);
    }
    same_both_ways("[\n{\"token\": \"a\", \"timestamp\": 1}\n]", 1);
    same_both_ways("[]", 1);
    same_both_ways(" \n[ ]\n", 1);
}

static void test_chunks_report_errors_as_whole(void **state)
{
    (void)state;
    const char *bad[] = {
        "{\"token\": \"x\" \"timestamp\": 2}",          /* malformed JSON */
        "{\"token\": 5, \"timestamp\": 2}",             /* wrong type */
        "{\"token\": \"x\"}",                           /* missing field */
        "{\"token\": \"x\", \"timestamp\": 1e999}",     /* not finite */
        "{\"token\": \"x\", \"timestamp\": 1, \"s\": \"a\tb\"}", /* control character */
        "[1, 2]",                                       /* not an object */
        "{\"token\": \"x\", \"timestamp\": 1}, 7",      /* not an object either */
        "{\"token\": \"x\", \"timestamp\": 1},",        /* two commas */
    };
    int where[] = {0, 3, 400, 620, 999};   /* first, early, middle, last */
    for (size_t b = 0; b < sizeof bad / sizeof *bad; b++)
        for (size_t w = 0; w < sizeof where / sizeof *where; w++) {
            char *t = records(1000, ",\n", where[w], bad[b]);
            same_both_ways(t, -1);
            free(t);
        }
    /* a cut file, trailing garbage, an empty file */
    char *t = records(1000, ",\n", -1, NULL);
    t[strlen(t) - 3] = 0;
    same_both_ways(t, -1);
    free(t);
    t = records(1000, ",\n", -1, NULL);
    t[strlen(t) - 1] = 'x';
    same_both_ways(t, -1);
    free(t);
    same_both_ways("", -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_any_chunking),
        cmocka_unit_test(test_malformed_json_has_line_and_column),
        cmocka_unit_test(test_schema_errors_name_record_and_field),
        cmocka_unit_test(test_numeric_arrays),
        cmocka_unit_test(test_chunks_same_as_whole),
        cmocka_unit_test(test_chunks_report_errors_as_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
