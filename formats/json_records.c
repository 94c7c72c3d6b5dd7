#include "formats/json_records.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl_parse.h>

#include "formats/numtext.h"

/* Strings and keys of the current record live in one growing buffer; the
 * fields point into it by offset until the record is complete. */
struct l3d_jparser {
    yajl_handle h;
    const char *file;
    l3d_record_fn fn;
    void *ctx;
    l3d_err *err;        /* of the feed call in progress */
    int stop_code;       /* callback asked to stop */
    int depth;           /* 0 outside, 1 in top array, 2 in a record, ... */
    int top_seen;
    int in_numarr;       /* depth-3 array of a field, still flat */
    long n_records;
    /* position tracking for messages */
    const unsigned char *chunk;
    size_t chunk_scanned;
    long line, line_start_off;
    long chunk_base;     /* file offset of chunk[0] */
    long record_line;
    /* current record */
    l3d_record rec;
    size_t key_off[L3D_REC_MAX_FIELDS], str_off[L3D_REC_MAX_FIELDS];
    int cur;             /* field being filled, -1 none */
    char *buf;
    size_t buf_len, buf_cap;
};

/* Counts the newlines of the chunk up to `upto` (memchr: lines are long, and
 * a byte loop here cost more than yajl's own lexing). */
static void scan_to(l3d_jparser *p, size_t upto)
{
    const unsigned char *b = p->chunk + p->chunk_scanned, *end = p->chunk + upto;
    while (b < end) {
        const unsigned char *nl = memchr(b, '\n', (size_t)(end - b));
        if (!nl)
            break;
        p->line++;
        p->line_start_off = p->chunk_base + (long)(nl - p->chunk) + 1;
        b = nl + 1;
    }
    if (upto > p->chunk_scanned)
        p->chunk_scanned = upto;
}

static size_t here(l3d_jparser *p)
{
    return yajl_get_bytes_consumed(p->h);
}

static int buf_add(l3d_jparser *p, const char *s, size_t n, size_t *off)
{
    if (p->buf_len + n + 1 > p->buf_cap) {
        size_t cap = p->buf_cap ? p->buf_cap : 4096;
        while (cap < p->buf_len + n + 1)
            cap *= 2;
        char *nb = realloc(p->buf, cap);
        if (!nb)
            return 0;
        p->buf = nb;
        p->buf_cap = cap;
    }
    memcpy(p->buf + p->buf_len, s, n);
    p->buf[p->buf_len + n] = 0;
    *off = p->buf_len;
    p->buf_len += n + 1;
    return 1;
}

static int fail(l3d_jparser *p, int code, const char *what)
{
    scan_to(p, here(p));
    l3d_fail(p->err, code, "%s: line %ld: %s", p->file, p->line, what);
    p->stop_code = code;
    return 0;
}

static l3d_jfield *value_slot(l3d_jparser *p)
{
    if (p->depth == 2 && p->cur >= 0)
        return &p->rec.f[p->cur];
    return NULL;
}

static int on_scalar(l3d_jparser *p, l3d_jkind kind, double num, int b, const char *s, size_t n)
{
    if (p->depth == 0 || p->depth == 1)
        return fail(p, L3D_ESCHEMA, "expected a JSON array of objects (one per record)");
    if (p->depth == 3 && p->in_numarr) {
        l3d_jfield *f = &p->rec.f[p->cur];
        if (kind != L3D_JNUM || f->n_nums >= L3D_REC_MAX_NUMS) {
            f->kind = L3D_JOTHER;
            p->in_numarr = 0;
        } else {
            f->nums[f->n_nums++] = num;
        }
        return 1;
    }
    l3d_jfield *f = value_slot(p);
    if (!f)
        return 1; /* inside deeper structure: not kept */
    f->kind = kind;
    f->num = num;
    f->boolean = b;
    if (kind == L3D_JSTR) {
        if (!buf_add(p, s, n, &p->str_off[p->cur]))
            return fail(p, L3D_EINTERNAL, "out of memory");
        f->len = n;
    }
    p->cur = -1;
    return 1;
}

static int cb_null(void *ctx) { return on_scalar(ctx, L3D_JNULL, 0, 0, NULL, 0); }
static int cb_bool(void *ctx, int b) { return on_scalar(ctx, L3D_JBOOL, 0, b, NULL, 0); }

static int cb_number(void *ctx, const char *s, size_t n)
{
    double v;
    if (l3d_strtod(s, n, &v) != 0)
        return fail(ctx, L3D_EJSON, "malformed number");
    return on_scalar(ctx, L3D_JNUM, v, 0, NULL, 0);
}

static int cb_string(void *ctx, const unsigned char *s, size_t n)
{
    return on_scalar(ctx, L3D_JSTR, 0, 0, (const char *)s, n);
}

static int cb_start_map(void *vp)
{
    l3d_jparser *p = vp;
    if (p->depth == 0)
        return fail(p, L3D_ESCHEMA, "expected a JSON array of objects, found an object");
    if (p->depth == 1) {
        scan_to(p, here(p));
        p->record_line = p->line;
        p->rec.n = 0;
        p->buf_len = 0;
        p->cur = -1;
    } else {
        l3d_jfield *f = value_slot(p);
        if (f) {
            f->kind = L3D_JOTHER;
            p->cur = -1;
        }
        p->in_numarr = 0;
    }
    p->depth++;
    return 1;
}

static int cb_map_key(void *vp, const unsigned char *k, size_t n)
{
    l3d_jparser *p = vp;
    if (p->depth != 2)
        return 1;
    if (p->rec.n >= L3D_REC_MAX_FIELDS)
        return fail(p, L3D_ESCHEMA, "record has too many fields");
    int i = p->rec.n++;
    l3d_jfield_clear(&p->rec.f[i]);
    if (!buf_add(p, (const char *)k, n, &p->key_off[i]))
        return fail(p, L3D_EINTERNAL, "out of memory");
    p->cur = i;
    return 1;
}

static int cb_end_map(void *vp)
{
    l3d_jparser *p = vp;
    p->depth--;
    if (p->depth != 1)
        return 1;
    /* Record complete: resolve offsets into pointers, hand it over. */
    for (int i = 0; i < p->rec.n; i++) {
        p->rec.f[i].key = p->buf + p->key_off[i];
        p->rec.f[i].str = p->rec.f[i].kind == L3D_JSTR ? p->buf + p->str_off[i] : NULL;
    }
    p->rec.file = p->file;
    p->rec.index = p->n_records++;
    p->rec.line = p->record_line;
    int rc = p->fn(p->ctx, &p->rec, p->err);
    if (rc != L3D_OK) {
        p->stop_code = rc;
        return 0;
    }
    return 1;
}

static int cb_start_array(void *vp)
{
    l3d_jparser *p = vp;
    if (p->depth == 0) {
        p->top_seen = 1;
    } else if (p->depth == 1) {
        return fail(p, L3D_ESCHEMA, "expected an object as array element, found an array");
    } else if (p->depth == 2 && p->cur >= 0) {
        l3d_jfield *f = &p->rec.f[p->cur];
        f->kind = L3D_JNUMARR;
        f->n_nums = 0;
        p->in_numarr = 1;
    } else if (p->in_numarr) {
        p->rec.f[p->cur].kind = L3D_JOTHER; /* nested array: not kept */
        p->in_numarr = 0;
    }
    p->depth++;
    return 1;
}

static int cb_end_array(void *vp)
{
    l3d_jparser *p = vp;
    p->depth--;
    if (p->depth == 2) {
        p->in_numarr = 0;
        p->cur = -1;
    }
    return 1;
}

static const yajl_callbacks callbacks = {
    cb_null, cb_bool, NULL, NULL, cb_number, cb_string,
    cb_start_map, cb_map_key, cb_end_map, cb_start_array, cb_end_array,
};

l3d_jparser *l3d_jparser_new(const char *file, l3d_record_fn fn, void *ctx)
{
    l3d_jparser *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->h = yajl_alloc(&callbacks, NULL, p);
    if (!p->h) {
        free(p);
        return NULL;
    }
    p->file = file;
    p->fn = fn;
    p->ctx = ctx;
    p->line = 1;
    p->cur = -1;
    return p;
}

static int parse_error(l3d_jparser *p, yajl_status st)
{
    if (p->stop_code)
        return p->stop_code;
    (void)st;
    scan_to(p, here(p));
    long col = p->chunk_base + (long)here(p) - p->line_start_off + 1;
    unsigned char *msg = yajl_get_error(p->h, 0, NULL, 0);
    char *nl = msg ? strchr((char *)msg, '\n') : NULL;
    if (nl)
        *nl = 0;
    /* yajl stops just past the offending token: the column points there */
    l3d_fail(p->err, L3D_EJSON, "%s: line %ld, column %ld: malformed JSON: %s", p->file,
             p->line, col, msg ? (const char *)msg : "parse error");
    if (msg)
        yajl_free_error(p->h, msg);
    return L3D_EJSON;
}

int l3d_jparser_feed(l3d_jparser *p, const unsigned char *buf, size_t n, l3d_err *err)
{
    p->err = err;
    p->chunk = buf;
    p->chunk_scanned = 0;
    yajl_status st = yajl_parse(p->h, buf, n);
    if (st != yajl_status_ok)
        return parse_error(p, st);
    scan_to(p, n);
    p->chunk_base += (long)n;
    p->chunk = NULL;
    return L3D_OK;
}

int l3d_jparser_finish(l3d_jparser *p, l3d_err *err)
{
    p->err = err;
    p->chunk = (const unsigned char *)"";
    p->chunk_scanned = 0;
    yajl_status st = yajl_complete_parse(p->h);
    if (st != yajl_status_ok) {
        if (p->stop_code)
            return p->stop_code;
        l3d_fail(err, L3D_EJSON, "%s: line %ld: malformed JSON: unexpected end of file",
                 p->file, p->line);
        return L3D_EJSON;
    }
    if (!p->top_seen)
        return l3d_fail(err, L3D_ESCHEMA, "%s: expected a JSON array of records", p->file);
    return L3D_OK;
}

long l3d_jparser_records(const l3d_jparser *p) { return p->n_records; }

void l3d_jparser_free(l3d_jparser *p)
{
    if (!p)
        return;
    yajl_free(p->h);
    free(p->buf);
    free(p);
}

/* ---- getters ---------------------------------------------------------- */

const l3d_jfield *l3d_rec_field(const l3d_record *r, const char *key)
{
    /* the first two bytes settle most mismatches without a call */
    for (int i = 0; i < r->n; i++) {
        const char *k = r->f[i].key;
        if (k[0] == key[0] && (!k[0] || (k[1] == key[1] && strcmp(k, key) == 0)))
            return &r->f[i];
    }
    return NULL;
}

static int wrong(const l3d_record *r, const char *key, const char *expected, l3d_err *err)
{
    const l3d_jfield *f = l3d_rec_field(r, key);
    return l3d_fail(err, L3D_ESCHEMA, "%s: record %ld (line %ld): field '%s' %s, expected %s",
                    r->file, r->index, r->line, key, f ? "has the wrong type" : "is missing",
                    expected);
}

int l3d_rec_str(const l3d_record *r, const char *key, const char **out, l3d_err *err)
{
    const l3d_jfield *f = l3d_rec_field(r, key);
    if (!f || f->kind != L3D_JSTR)
        return wrong(r, key, "a string", err);
    *out = f->str;
    return L3D_OK;
}

int l3d_rec_num(const l3d_record *r, const char *key, double *out, l3d_err *err)
{
    const l3d_jfield *f = l3d_rec_field(r, key);
    if (!f || f->kind != L3D_JNUM)
        return wrong(r, key, "a number", err);
    if (!isfinite(f->num))
        return l3d_fail(err, L3D_ENONFINITE, "%s: record %ld (line %ld): field '%s' is not finite",
                        r->file, r->index, r->line, key);
    *out = f->num;
    return L3D_OK;
}

int l3d_rec_bool(const l3d_record *r, const char *key, int *out, l3d_err *err)
{
    const l3d_jfield *f = l3d_rec_field(r, key);
    if (!f || f->kind != L3D_JBOOL)
        return wrong(r, key, "true or false", err);
    *out = f->boolean;
    return L3D_OK;
}

int l3d_rec_nums(const l3d_record *r, const char *key, int n, double *out, l3d_err *err)
{
    const l3d_jfield *f = l3d_rec_field(r, key);
    if (!f || f->kind != L3D_JNUMARR || f->n_nums != n) {
        char what[48];
        snprintf(what, sizeof what, "an array of %d numbers", n);
        return wrong(r, key, what, err);
    }
    for (int i = 0; i < n; i++) {
        if (!isfinite(f->nums[i]))
            return l3d_fail(err, L3D_ENONFINITE,
                            "%s: record %ld (line %ld): field '%s'[%d] is not finite", r->file,
                            r->index, r->line, key, i);
        out[i] = f->nums[i];
    }
    return L3D_OK;
}
