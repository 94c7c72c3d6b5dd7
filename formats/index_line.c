#include "formats/index_line.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yajl_gen.h>
#include <yajl_tree.h>

#include "formats/numtext.h"

void l3d_format_double(char buf[32], double v)
{
    char text[L3D_DTOA_ROOM];
    memcpy(buf, text, (size_t)l3d_dtoa(v, text) + 1);
}

void l3d_index_line_init(l3d_index_line *l) { memset(l, 0, sizeof *l); }

void l3d_index_line_free(l3d_index_line *l)
{
    free(l->gt_boxes);
    free(l->gt_names);
    free(l->gt_tokens);
    free(l->num_lidar_pts);
    memset(l, 0, sizeof *l);
}

int l3d_index_line_reserve(l3d_index_line *l, size_t n)
{
    if (n <= l->cap_boxes)
        return 1;
    double *b = realloc(l->gt_boxes, n * 7 * sizeof *b);
    if (b)
        l->gt_boxes = b;
    char(*names)[32] = realloc(l->gt_names, n * sizeof *names);
    if (names)
        l->gt_names = names;
    char(*toks)[L3D_TOKEN_MAX] = realloc(l->gt_tokens, n * sizeof *toks);
    if (toks)
        l->gt_tokens = toks;
    int32_t *np = realloc(l->num_lidar_pts, n * sizeof *np);
    if (np)
        l->num_lidar_pts = np;
    if (!b || !names || !toks || !np)
        return 0;
    l->cap_boxes = n;
    return 1;
}

/* ---- writing ---------------------------------------------------------- */

/* Lines are written straight into memory: the layout is fixed, so only
 * strings need a JSON encoder, and of those only the rare one with a
 * character to escape goes through yajl's (the same text yajl_gen always
 * wrote). Through yajl_gen, a call and a callback per token were a third
 * of the time of writing an index. */
typedef struct textbuf { char *p; size_t len, cap; int oom; } textbuf;

/* Room for n more bytes; on failure later writes go nowhere. */
static int room(textbuf *b, size_t n)
{
    if (b->len + n <= b->cap)
        return !b->oom;
    size_t cap = b->cap ? b->cap : 1 << 14;
    while (cap < b->len + n)
        cap *= 2;
    char *p = b->oom ? NULL : realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    b->p = p;
    b->cap = cap;
    return 1;
}

static void raw(textbuf *b, const char *s, size_t n)
{
    if (room(b, n)) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

#define LIT(b, s) raw(b, s, sizeof s - 1)

static void yajl_print(void *ctx, const char *s, size_t n) { raw(ctx, s, n); }

static void str(textbuf *b, const char *s)
{
    size_t n = strlen(s), i = 0;
    while (i < n && s[i] != '"' && s[i] != '\\' && (unsigned char)s[i] >= 0x20)
        i++;
    if (i == n) {
        if (room(b, n + 2)) {
            b->p[b->len] = '"';
            memcpy(b->p + b->len + 1, s, n);
            b->p[b->len + n + 1] = '"';
            b->len += n + 2;
        }
        return;
    }
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g) {
        b->oom = 1;
        return;
    }
    yajl_gen_config(g, yajl_gen_print_callback, yajl_print, b);
    yajl_gen_string(g, (const unsigned char *)s, n);
    yajl_gen_free(g);
}

static void num(textbuf *b, double v)
{
    if (room(b, L3D_DTOA_ROOM))
        b->len += (size_t)l3d_dtoa(v, b->p + b->len);
}

static void integer(textbuf *b, int64_t v)
{
    if (room(b, 24))
        b->len += (size_t)l3d_itoa(v, b->p + b->len);
}

static void nums(textbuf *b, const double *v, int n)
{
    LIT(b, "[");
    for (int i = 0; i < n; i++) {
        if (i)
            LIT(b, ",");
        num(b, v[i]);
    }
    LIT(b, "]");
}

static void boolean(textbuf *b, int v)
{
    if (v)
        LIT(b, "true");
    else
        LIT(b, "false");
}

static void lidar_fields(textbuf *b, const l3d_lidar_file *f)
{
    LIT(b, ",\"lidar_path\":");
    str(b, f->path);
    if (f->num_points < 0) {
        LIT(b, ",\"lidar_missing\":true");
        return;
    }
    LIT(b, ",\"num_points\":");
    integer(b, f->num_points);
    if (f->tail_bytes) {
        LIT(b, ",\"tail_bytes\":");
        integer(b, f->tail_bytes);
    }
    if (f->nonfinite >= 0) {
        LIT(b, ",\"nonfinite\":");
        integer(b, f->nonfinite);
    }
}

static void generate(textbuf *b, const l3d_index_line *l)
{
    LIT(b, "{\"token\":"); str(b, l->token);
    LIT(b, ",\"scene_token\":"); str(b, l->scene_token);
    LIT(b, ",\"scene_name\":"); str(b, l->scene_name);
    LIT(b, ",\"timestamp\":"); num(b, l->timestamp);
    LIT(b, ",\"root\":"); str(b, l->root);
    LIT(b, ",\"sample_data_token\":"); str(b, l->sample_data_token);
    lidar_fields(b, &l->lidar);
    LIT(b, ",\"lidar2ego_translation\":"); nums(b, l->lidar2ego_translation, 3);
    LIT(b, ",\"lidar2ego_rotation\":"); nums(b, l->lidar2ego_rotation, 4);
    LIT(b, ",\"ego2global_translation\":"); nums(b, l->ego2global_translation, 3);
    LIT(b, ",\"ego2global_rotation\":"); nums(b, l->ego2global_rotation, 4);
    LIT(b, ",\"sweeps\":[");
    for (int i = 0; i < l->n_sweeps; i++) {
        const l3d_sweep *s = &l->sweeps[i];
        if (i)
            LIT(b, ",");
        LIT(b, "{\"sample_data_token\":"); str(b, s->sample_data_token);
        lidar_fields(b, &s->lidar);
        LIT(b, ",\"timestamp\":"); num(b, s->timestamp);
        LIT(b, ",\"sensor2lidar_rotation\":[");
        for (int r = 0; r < 3; r++) {
            if (r)
                LIT(b, ",");
            nums(b, s->rotation + 3 * r, 3);
        }
        LIT(b, "],\"sensor2lidar_translation\":"); nums(b, s->translation, 3);
        LIT(b, ",\"time_lag\":"); num(b, s->time_lag);
        LIT(b, "}");
    }
    LIT(b, "]");
    if (l->sweeps_missing)
        LIT(b, ",\"sweeps_missing\":true");
    LIT(b, ",\"annotated\":"); boolean(b, l->annotated);
    LIT(b, ",\"gt_boxes\":[");
    for (size_t i = 0; i < l->n_boxes; i++) {
        if (i)
            LIT(b, ",");
        nums(b, l->gt_boxes + 7 * i, 7);
    }
    LIT(b, "],\"gt_names\":[");
    for (size_t i = 0; i < l->n_boxes; i++) {
        if (i)
            LIT(b, ",");
        str(b, l->gt_names[i]);
    }
    LIT(b, "],\"gt_tokens\":[");
    for (size_t i = 0; i < l->n_boxes; i++) {
        if (i)
            LIT(b, ",");
        str(b, l->gt_tokens[i]);
    }
    LIT(b, "],\"num_lidar_pts\":[");
    for (size_t i = 0; i < l->n_boxes; i++) {
        if (i)
            LIT(b, ",");
        integer(b, l->num_lidar_pts[i]);
    }
    LIT(b, "]}\n");
}

int l3d_index_line_append(char **buf, size_t *len, size_t *cap, const l3d_index_line *l,
                          l3d_err *err)
{
    textbuf b = {*buf, *len, *cap, 0};
    generate(&b, l);
    *buf = b.p;
    *cap = b.cap;
    if (b.oom)
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    *len = b.len;
    return L3D_OK;
}

int l3d_index_line_write(FILE *fp, const l3d_index_line *l, l3d_err *err)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = l3d_index_line_append(&buf, &len, &cap, l, err);
    if (!rc && fwrite(buf, 1, len, fp) != len)
        rc = l3d_fail(err, L3D_EIO, "write error");
    free(buf);
    return rc;
}

/* ---- reading ---------------------------------------------------------- */

typedef struct rd { const char *file; long lineno; l3d_err *err; } rd;

static int bad(const rd *r, const char *field, const char *expected)
{
    return l3d_fail(r->err, L3D_ESCHEMA, "%s: line %ld: field '%s' is missing or not %s",
                    r->file, r->lineno, field, expected);
}

static yajl_val get(yajl_val obj, const char *k)
{
    const char *path[] = {k, NULL};
    return yajl_tree_get(obj, path, yajl_t_any);
}

/* yajl's YAJL_GET_STRING may yield NULL; this never does. */
static const char *sval(yajl_val v) { return YAJL_IS_STRING(v) ? v->u.string : ""; }

static int get_str(const rd *r, yajl_val o, const char *k, char *out, size_t n)
{
    yajl_val v = get(o, k);
    if (!YAJL_IS_STRING(v) || strlen(sval(v)) >= n)
        return bad(r, k, "a string of sensible length");
    strcpy(out, sval(v));
    return L3D_OK;
}

static int as_num(const rd *r, yajl_val v, const char *k, double *out)
{
    if (!YAJL_IS_NUMBER(v))
        return bad(r, k, "a number");
    *out = YAJL_GET_DOUBLE(v);
    if (!isfinite(*out))
        return l3d_fail(r->err, L3D_ENONFINITE, "%s: line %ld: field '%s' is not finite",
                        r->file, r->lineno, k);
    return L3D_OK;
}

static int get_num(const rd *r, yajl_val o, const char *k, double *out)
{
    return as_num(r, get(o, k), k, out);
}

static int as_nums(const rd *r, yajl_val v, const char *k, double *out, size_t n)
{
    if (!YAJL_IS_ARRAY(v) || YAJL_GET_ARRAY(v)->len != n) {
        char what[40];
        snprintf(what, sizeof what, "an array of %zu numbers", n);
        return bad(r, k, what);
    }
    for (size_t i = 0; i < n; i++) {
        int rc = as_num(r, YAJL_GET_ARRAY(v)->values[i], k, &out[i]);
        if (rc)
            return rc;
    }
    return L3D_OK;
}

static int get_bool(yajl_val o, const char *k)
{
    return YAJL_IS_TRUE(get(o, k));
}

static int get_lidar(const rd *r, yajl_val o, l3d_lidar_file *f)
{
    int rc = get_str(r, o, "lidar_path", f->path, sizeof f->path);
    if (rc)
        return rc;
    f->nonfinite = -1;
    f->tail_bytes = 0;
    if (get_bool(o, "lidar_missing")) {
        f->num_points = -1;
        return L3D_OK;
    }
    double v;
    if ((rc = get_num(r, o, "num_points", &v)))
        return rc;
    f->num_points = (int64_t)v;
    yajl_val t = get(o, "tail_bytes");
    if (YAJL_IS_INTEGER(t))
        f->tail_bytes = YAJL_GET_INTEGER(t);
    yajl_val nf = get(o, "nonfinite");
    if (YAJL_IS_INTEGER(nf))
        f->nonfinite = YAJL_GET_INTEGER(nf);
    return L3D_OK;
}

#define TRY(x) do { if ((rc = (x))) goto out; } while (0)

int l3d_index_line_parse(const char *text, const char *file, long lineno, l3d_index_line *l,
                         l3d_err *err)
{
    char ebuf[256];
    rd r = {file, lineno, err};
    yajl_val o = yajl_tree_parse(text, ebuf, sizeof ebuf);
    if (!o) {
        char *nl = strchr(ebuf, '\n');
        if (nl)
            *nl = 0;
        return l3d_fail(err, L3D_EJSON, "%s: line %ld: malformed JSON: %s", file, lineno, ebuf);
    }
    int rc = L3D_OK;
    size_t keep = l->cap_boxes;
    double *b = l->gt_boxes; char(*nm)[32] = l->gt_names;
    char(*tk)[L3D_TOKEN_MAX] = l->gt_tokens; int32_t *np = l->num_lidar_pts;
    memset(l, 0, sizeof *l);
    l->cap_boxes = keep; l->gt_boxes = b; l->gt_names = nm; l->gt_tokens = tk; l->num_lidar_pts = np;
    if (!YAJL_IS_OBJECT(o)) {
        rc = l3d_fail(err, L3D_ESCHEMA, "%s: line %ld: expected a JSON object", file, lineno);
        goto out;
    }
    TRY(get_str(&r, o, "token", l->token, sizeof l->token));
    TRY(get_str(&r, o, "scene_token", l->scene_token, sizeof l->scene_token));
    TRY(get_str(&r, o, "scene_name", l->scene_name, sizeof l->scene_name));
    TRY(get_num(&r, o, "timestamp", &l->timestamp));
    TRY(get_str(&r, o, "root", l->root, sizeof l->root));
    TRY(get_str(&r, o, "sample_data_token", l->sample_data_token, sizeof l->sample_data_token));
    TRY(get_lidar(&r, o, &l->lidar));
    TRY(as_nums(&r, get(o, "lidar2ego_translation"), "lidar2ego_translation", l->lidar2ego_translation, 3));
    TRY(as_nums(&r, get(o, "lidar2ego_rotation"), "lidar2ego_rotation", l->lidar2ego_rotation, 4));
    TRY(as_nums(&r, get(o, "ego2global_translation"), "ego2global_translation", l->ego2global_translation, 3));
    TRY(as_nums(&r, get(o, "ego2global_rotation"), "ego2global_rotation", l->ego2global_rotation, 4));
    yajl_val sw = get(o, "sweeps");
    if (!YAJL_IS_ARRAY(sw) || YAJL_GET_ARRAY(sw)->len > L3D_MAX_SWEEPS) {
        rc = bad(&r, "sweeps", "an array of at most 10 sweeps");
        goto out;
    }
    l->n_sweeps = (int)YAJL_GET_ARRAY(sw)->len;
    for (int i = 0; i < l->n_sweeps; i++) {
        yajl_val so = YAJL_GET_ARRAY(sw)->values[i];
        l3d_sweep *s = &l->sweeps[i];
        if (!YAJL_IS_OBJECT(so)) {
            rc = bad(&r, "sweeps[]", "an object");
            goto out;
        }
        TRY(get_str(&r, so, "sample_data_token", s->sample_data_token, sizeof s->sample_data_token));
        TRY(get_lidar(&r, so, &s->lidar));
        TRY(get_num(&r, so, "timestamp", &s->timestamp));
        yajl_val rot = get(so, "sensor2lidar_rotation");
        if (!YAJL_IS_ARRAY(rot) || YAJL_GET_ARRAY(rot)->len != 3) {
            rc = bad(&r, "sensor2lidar_rotation", "a 3x3 array");
            goto out;
        }
        for (int k = 0; k < 3; k++)
            TRY(as_nums(&r, YAJL_GET_ARRAY(rot)->values[k], "sensor2lidar_rotation", s->rotation + 3 * k, 3));
        TRY(as_nums(&r, get(so, "sensor2lidar_translation"), "sensor2lidar_translation", s->translation, 3));
        TRY(get_num(&r, so, "time_lag", &s->time_lag));
    }
    l->sweeps_missing = get_bool(o, "sweeps_missing");
    l->annotated = get_bool(o, "annotated");
    yajl_val boxes = get(o, "gt_boxes"), names = get(o, "gt_names"), toks = get(o, "gt_tokens"),
             npts = get(o, "num_lidar_pts");
    if (!YAJL_IS_ARRAY(boxes) || !YAJL_IS_ARRAY(names) || !YAJL_IS_ARRAY(toks) || !YAJL_IS_ARRAY(npts)) {
        rc = bad(&r, "gt_boxes/gt_names/gt_tokens/num_lidar_pts", "arrays");
        goto out;
    }
    size_t n = YAJL_GET_ARRAY(boxes)->len;
    if (YAJL_GET_ARRAY(names)->len != n || YAJL_GET_ARRAY(toks)->len != n ||
        YAJL_GET_ARRAY(npts)->len != n) {
        rc = l3d_fail(err, L3D_ESCHEMA, "%s: line %ld: gt_boxes, gt_names, gt_tokens and "
                      "num_lidar_pts differ in length", file, lineno);
        goto out;
    }
    if (!l3d_index_line_reserve(l, n)) {
        rc = l3d_fail(err, L3D_EINTERNAL, "out of memory");
        goto out;
    }
    l->n_boxes = n;
    for (size_t i = 0; i < n; i++) {
        TRY(as_nums(&r, YAJL_GET_ARRAY(boxes)->values[i], "gt_boxes", l->gt_boxes + 7 * i, 7));
        yajl_val nv = YAJL_GET_ARRAY(names)->values[i], tv = YAJL_GET_ARRAY(toks)->values[i],
                 pv = YAJL_GET_ARRAY(npts)->values[i];
        if (!YAJL_IS_STRING(nv) || strlen(sval(nv)) >= 32 || !YAJL_IS_STRING(tv) ||
            strlen(sval(tv)) >= L3D_TOKEN_MAX || !YAJL_IS_INTEGER(pv)) {
            rc = bad(&r, "gt_names/gt_tokens/num_lidar_pts", "strings and integers");
            goto out;
        }
        strcpy(l->gt_names[i], sval(nv));
        strcpy(l->gt_tokens[i], sval(tv));
        l->num_lidar_pts[i] = (int32_t)YAJL_GET_INTEGER(pv);
    }
out:
    yajl_tree_free(o);
    return rc;
}
