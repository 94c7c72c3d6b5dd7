#include "formats/index_line.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yajl_gen.h>
#include <yajl_tree.h>

#include "formats/numtext.h"

void l3d_format_double(char buf[32], double v)
{
    l3d_dtoa(v, buf);
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

/* yajl_gen prints each token through this: appending to memory, and writing
 * a whole line (or many) at once, costs far less than a stdio call per
 * token. */
typedef struct textbuf { char *p; size_t len, cap; int oom; } textbuf;

static void emit(void *ctx, const char *s, size_t n)
{
    textbuf *b = ctx;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 14;
        while (cap < b->len + n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void key(yajl_gen g, const char *k) { yajl_gen_string(g, (const unsigned char *)k, strlen(k)); }
static void str(yajl_gen g, const char *s) { yajl_gen_string(g, (const unsigned char *)s, strlen(s)); }

static void num(yajl_gen g, double v)
{
    char buf[32];
    yajl_gen_number(g, buf, (size_t)l3d_dtoa(v, buf));
}

/* The text of yajl_gen_integer ("%lld"), without a printf per number. */
static void integer(yajl_gen g, int64_t v)
{
    char buf[24];
    yajl_gen_number(g, buf, (size_t)l3d_itoa(v, buf));
}

static void nums(yajl_gen g, const double *v, int n)
{
    yajl_gen_array_open(g);
    for (int i = 0; i < n; i++)
        num(g, v[i]);
    yajl_gen_array_close(g);
}

static void lidar_fields(yajl_gen g, const l3d_lidar_file *f, const char *path_key)
{
    key(g, path_key);
    str(g, f->path);
    if (f->num_points < 0) {
        key(g, "lidar_missing");
        yajl_gen_bool(g, 1);
        return;
    }
    key(g, "num_points");
    integer(g, f->num_points);
    if (f->tail_bytes) {
        key(g, "tail_bytes");
        integer(g, f->tail_bytes);
    }
    if (f->nonfinite >= 0) {
        key(g, "nonfinite");
        integer(g, f->nonfinite);
    }
}

static yajl_gen_status generate(yajl_gen g, const l3d_index_line *l)
{
    yajl_gen_map_open(g);
    key(g, "token"); str(g, l->token);
    key(g, "scene_token"); str(g, l->scene_token);
    key(g, "scene_name"); str(g, l->scene_name);
    key(g, "timestamp"); num(g, l->timestamp);
    key(g, "root"); str(g, l->root);
    key(g, "sample_data_token"); str(g, l->sample_data_token);
    lidar_fields(g, &l->lidar, "lidar_path");
    key(g, "lidar2ego_translation"); nums(g, l->lidar2ego_translation, 3);
    key(g, "lidar2ego_rotation"); nums(g, l->lidar2ego_rotation, 4);
    key(g, "ego2global_translation"); nums(g, l->ego2global_translation, 3);
    key(g, "ego2global_rotation"); nums(g, l->ego2global_rotation, 4);
    key(g, "sweeps");
    yajl_gen_array_open(g);
    for (int i = 0; i < l->n_sweeps; i++) {
        const l3d_sweep *s = &l->sweeps[i];
        yajl_gen_map_open(g);
        key(g, "sample_data_token"); str(g, s->sample_data_token);
        lidar_fields(g, &s->lidar, "lidar_path");
        key(g, "timestamp"); num(g, s->timestamp);
        key(g, "sensor2lidar_rotation");
        yajl_gen_array_open(g);
        for (int r = 0; r < 3; r++)
            nums(g, s->rotation + 3 * r, 3);
        yajl_gen_array_close(g);
        key(g, "sensor2lidar_translation"); nums(g, s->translation, 3);
        key(g, "time_lag"); num(g, s->time_lag);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    if (l->sweeps_missing) {
        key(g, "sweeps_missing");
        yajl_gen_bool(g, 1);
    }
    key(g, "annotated"); yajl_gen_bool(g, l->annotated);
    key(g, "gt_boxes");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < l->n_boxes; i++)
        nums(g, l->gt_boxes + 7 * i, 7);
    yajl_gen_array_close(g);
    key(g, "gt_names");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < l->n_boxes; i++)
        str(g, l->gt_names[i]);
    yajl_gen_array_close(g);
    key(g, "gt_tokens");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < l->n_boxes; i++)
        str(g, l->gt_tokens[i]);
    yajl_gen_array_close(g);
    key(g, "num_lidar_pts");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < l->n_boxes; i++)
        integer(g, l->num_lidar_pts[i]);
    yajl_gen_array_close(g);
    return yajl_gen_map_close(g);
}

int l3d_index_line_append(char **buf, size_t *len, size_t *cap, const l3d_index_line *l,
                          l3d_err *err)
{
    textbuf b = {*buf, *len, *cap, 0};
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g)
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    yajl_gen_config(g, yajl_gen_print_callback, emit, &b);
    yajl_gen_status st = generate(g, l);
    yajl_gen_free(g);
    emit(&b, "\n", 1);
    *buf = b.p;
    *cap = b.cap;
    if (b.oom)
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    if (st != yajl_gen_status_ok)
        return l3d_fail(err, L3D_EINTERNAL, "index line for sample '%s': JSON generator error %d",
                        l->token, (int)st);
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
