#include "formats/voxel_cache.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the config file ---------------------------------------------------- */

static const char config_keys[] = "point_cloud_range, voxel_size, max_points or max_voxels";

/* Parses exactly n numbers from s (spaces, commas and brackets separate). */
static int parse_floats(char *s, float *out, int n)
{
    for (char *p = s; *p; p++)
        if (*p == ',' || *p == '[' || *p == ']')
            *p = ' ';
    int k = 0;
    char *p = s, *end;
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        errno = 0;
        float v = strtof(p, &end);
        if (end == p || (!isspace((unsigned char)*end) && *end) || !isfinite(v) || errno == ERANGE)
            return -1;
        if (k < n)
            out[k] = v;
        k++;
        p = end;
    }
    return k == n ? 0 : -1 - k;
}

int l3d_voxel_config_parse(l3d_voxel_config *cfg, const char *text, const char *path,
                           l3d_err *err)
{
    l3d_voxel_config c = *cfg;
    int seen[4] = {0};
    int lineno = 0;
    const char *line = text;
    while (line && *line) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        lineno++;
        char buf[1024];
        if (len >= sizeof buf)
            return l3d_fail(err, L3D_EINPUT, "%s:%d: line too long", path, lineno);
        memcpy(buf, line, len);
        buf[len] = 0;
        line = nl ? nl + 1 : NULL;
        char *hash = strchr(buf, '#');
        if (hash)
            *hash = 0;
        char *s = buf;
        while (isspace((unsigned char)*s))
            s++;
        char *e = s + strlen(s);
        while (e > s && isspace((unsigned char)e[-1]))
            *--e = 0;
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        if (!eq)
            return l3d_fail(err, L3D_EINPUT, "%s:%d: expected 'key = value', got '%s'", path,
                            lineno, s);
        char *k = s, *ke = eq;
        while (ke > k && isspace((unsigned char)ke[-1]))
            ke--;
        *ke = 0;
        char *val = eq + 1;
        int key = !strcmp(k, "point_cloud_range") ? 0
                  : !strcmp(k, "voxel_size")      ? 1
                  : !strcmp(k, "max_points")      ? 2
                  : !strcmp(k, "max_voxels")      ? 3
                                                  : -1;
        if (key < 0)
            return l3d_fail(err, L3D_EINPUT, "%s:%d: unknown key '%s' (expected %s)", path,
                            lineno, k, config_keys);
        if (seen[key]++)
            return l3d_fail(err, L3D_EINPUT, "%s:%d: '%s' given twice", path, lineno, k);
        if (key <= 1) {
            int want = key == 0 ? 6 : 3;
            float v[6];
            int rc = parse_floats(val, v, want);
            if (rc)
                return l3d_fail(err, L3D_EINPUT, "%s:%d: %s: expected %d finite numbers%s", path,
                                lineno, k, want,
                                rc == -1 ? ", got something else" : ", got another count");
            memcpy(key == 0 ? c.range : c.size, v, (size_t)want * sizeof(float));
        } else {
            while (isspace((unsigned char)*val))
                val++;
            char *end;
            errno = 0;
            long n = strtol(val, &end, 10);
            if (end == val || *end || errno || n < 1 || n > INT_MAX)
                return l3d_fail(err, L3D_EINPUT, "%s:%d: %s: expected a whole number >= 1, got "
                                "'%s'", path, lineno, k, val);
            *(key == 2 ? &c.max_points : &c.max_voxels) = (int)n;
        }
    }
    int32_t grid[3];
    const char *why = "";
    if (l3d_voxel_grid(&c, grid, &why))
        return l3d_fail(err, L3D_EINPUT, "%s: %s", path, why);
    *cfg = c;
    return L3D_OK;
}

int l3d_voxel_config_load(l3d_voxel_config *cfg, const char *path, l3d_err *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return l3d_fail(err, L3D_EIO, "config file '%s': %s", path, strerror(errno));
    char *text = NULL;
    size_t n = 0, cap = 0;
    int rc = L3D_OK;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 8192;
            char *t = cap > (1 << 20) ? NULL : realloc(text, cap);
            if (!t) {
                rc = l3d_fail(err, L3D_EINPUT, "config file '%s': larger than 1 MB", path);
                break;
            }
            text = t;
        }
        size_t k = fread(text + n, 1, 4096, fp);
        n += k;
        if (k < 4096)
            break;
    }
    if (!rc && ferror(fp))
        rc = l3d_fail(err, L3D_EIO, "config file '%s': read error", path);
    fclose(fp);
    if (!rc) {
        text[n] = 0;
        if (strlen(text) != n)
            rc = l3d_fail(err, L3D_EINPUT, "config file '%s': contains a NUL byte", path);
        else
            rc = l3d_voxel_config_parse(cfg, text, path, err);
    }
    free(text);
    return rc;
}

/* Shortest %g text that reads back as the same float32. */
static void fmt_float(char *buf, size_t n, float v)
{
    for (int p = 6; p <= 9; p++) {
        snprintf(buf, n, "%.*g", p, (double)v);
        if (strtof(buf, NULL) == v)
            return;
    }
}

int l3d_voxel_config_format(const l3d_voxel_config *cfg, char *buf, size_t n)
{
    char r[6][32], s[3][32];
    for (int i = 0; i < 6; i++)
        fmt_float(r[i], sizeof r[i], cfg->range[i]);
    for (int i = 0; i < 3; i++)
        fmt_float(s[i], sizeof s[i], cfg->size[i]);
    return snprintf(buf, n,
                    "point_cloud_range = %s %s %s %s %s %s\n"
                    "voxel_size = %s %s %s\n"
                    "max_points = %d\n"
                    "max_voxels = %d\n",
                    r[0], r[1], r[2], r[3], r[4], r[5], s[0], s[1], s[2], cfg->max_points,
                    cfg->max_voxels);
}

/* ---- array attributes (h5cache writes scalars only) ---------------------- */

static int write_array_attr(l3d_h5w *w, const char *key, hid_t type, int n, const void *v,
                            l3d_err *err)
{
    hsize_t dims[1] = {(hsize_t)n};
    hid_t root = H5Gopen2(w->file, "/", H5P_DEFAULT);
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t a = root < 0 ? -1 : H5Acreate2(root, key, type, space, H5P_DEFAULT, H5P_DEFAULT);
    int bad = a < 0 || H5Awrite(a, type, v) < 0;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(space);
    if (root >= 0)
        H5Gclose(root);
    return bad ? l3d_fail(err, L3D_EIO, "%s: cannot write attribute '%s' (disk full or I/O "
                          "error?)", w->tmp, key)
               : L3D_OK;
}

static int read_array_attr(l3d_h5r *r, const char *key, hid_t type, int n, void *v,
                           l3d_err *err)
{
    hid_t root = H5Gopen2(r->file, "/", H5P_DEFAULT);
    int rc = L3D_OK;
    if (root < 0 || H5Aexists(root, key) <= 0)
        rc = l3d_fail(err, L3D_EINPUT, "%s: root attribute '%s' is missing", r->path, key);
    else {
        hid_t a = H5Aopen(root, key, H5P_DEFAULT);
        hid_t space = H5Aget_space(a);
        hssize_t got = H5Sget_simple_extent_npoints(space);
        if (got != n || H5Aread(a, type, v) < 0)
            rc = l3d_fail(err, L3D_EINPUT, "%s: root attribute '%s' is not %d numbers", r->path,
                          key, n);
        H5Sclose(space);
        H5Aclose(a);
    }
    if (root >= 0)
        H5Gclose(root);
    return rc;
}

/* ---- streamed checksums ---------------------------------------------------- */

static void sum_init(l3d_stream_sum *s)
{
    s->h = L3D_CHECKSUM_INIT;
    s->n = 0;
}

/* Equal to one l3d_checksum over the concatenation: whole 8-byte words go
 * through in order, a partial word waits for the next piece. */
static void sum_add(l3d_stream_sum *s, const void *data, size_t n)
{
    const unsigned char *b = data;
    if (s->n) {
        size_t take = 8 - (size_t)s->n < n ? 8 - (size_t)s->n : n;
        memcpy(s->carry + s->n, b, take);
        s->n += (int)take;
        b += take;
        n -= take;
        if (s->n < 8)
            return;
        s->h = l3d_checksum(s->carry, 8, s->h);
        s->n = 0;
    }
    size_t whole = n & ~(size_t)7;
    s->h = l3d_checksum(b, whole, s->h);
    memcpy(s->carry, b + whole, n - whole);
    s->n = (int)(n - whole);
}

static uint64_t sum_end(l3d_stream_sum *s)
{
    return l3d_checksum(s->carry, (size_t)s->n, s->h);
}

/* ---- writing -------------------------------------------------------------- */

#define TRY(x)                     \
    do {                           \
        if ((rc = (x)) != L3D_OK)  \
            goto fail;             \
    } while (0)

int l3d_voxel_cache_begin(l3d_voxel_cache_writer *w, const char *path,
                          const l3d_voxel_config *cfg, l3d_err *err)
{
    memset(w, 0, sizeof *w);
    w->h5.file = H5I_INVALID_HID;
    w->points.fd = w->num.fd = w->coords.fd = -1;
    int32_t grid[3];
    const char *why = "";
    if (l3d_voxel_grid(cfg, grid, &why))
        return l3d_fail(err, L3D_EINPUT, "%s: bad voxel config: %s", path, why);
    w->max_points = cfg->max_points;
    sum_init(&w->sum_points);
    sum_init(&w->sum_num);
    sum_init(&w->sum_coords);
    /* the big dataset first, right after the superblock */
    hsize_t row[2] = {(hsize_t)w->max_points, L3D_VOXEL_FEATURES};
    int rc = l3d_h5stream_begin(&w->points, &w->h5, path, "voxel_points", H5T_IEEE_F32LE, 3, row,
                                err);
    if (rc)
        return rc;
    if ((rc = l3d_spill_open(&w->num, path, "voxel_num_points", err)) ||
        (rc = l3d_spill_open(&w->coords, path, "voxel_coords", err)))
        l3d_voxel_cache_abort(w);
    return rc;
}

int l3d_voxel_cache_append(l3d_voxel_cache_writer *w, int64_t m, const float *points,
                           const int32_t *num_points, const int32_t *coords, l3d_err *err)
{
    if (m == 0)
        return L3D_OK;
    if (m < 0)
        return l3d_fail(err, L3D_EINTERNAL, "%s: %lld voxels appended", w->h5.tmp, (long long)m);
    int rc;
    size_t pts = (size_t)m * (size_t)w->max_points * L3D_VOXEL_FEATURES * sizeof(float);
    if ((rc = l3d_h5stream_write(&w->points, points, m, err)) ||
        (rc = l3d_spill_write(&w->num, num_points, (size_t)m * sizeof(int32_t), err)) ||
        (rc = l3d_spill_write(&w->coords, coords, (size_t)m * 3 * sizeof(int32_t), err)))
        return rc;
    sum_add(&w->sum_points, points, pts);
    sum_add(&w->sum_num, num_points, (size_t)m * sizeof(int32_t));
    sum_add(&w->sum_coords, coords, (size_t)m * 3 * sizeof(int32_t));
    w->row += m;
    return L3D_OK;
}

static int check_info(const l3d_voxel_cache_writer *w, const l3d_voxel_cache_info *in,
                      l3d_err *err)
{
    const int64_t S = in->n_samples, *off = in->voxel_offsets;
    const char *path = w->h5.path;
    if (in->cfg.max_points != w->max_points)
        return l3d_fail(err, L3D_EINTERNAL, "%s: max_points %d at the end, %d at the start",
                        path, in->cfg.max_points, w->max_points);
    if (S < 0 || off[0] != 0 || in->box_offsets[0] != 0 || in->box_offsets[S] != in->n_boxes)
        return l3d_fail(err, L3D_EINTERNAL, "%s: offsets do not start at 0 or span the boxes",
                        path);
    for (int64_t s = 0; s < S; s++)
        if (off[s + 1] < off[s] || off[s + 1] - off[s] > in->cfg.max_voxels ||
            in->box_offsets[s + 1] < in->box_offsets[s])
            return l3d_fail(err, L3D_EINTERNAL, "%s: sample %lld: bad voxel or box offsets", path,
                            (long long)s);
    if (off[S] != w->row)
        return l3d_fail(err, L3D_EINTERNAL, "%s: %lld voxels written, the offsets say %lld", path,
                        (long long)w->row, (long long)off[S]);
    return L3D_OK;
}

int l3d_voxel_cache_finish(l3d_voxel_cache_writer *w, const l3d_voxel_cache_info *in,
                           l3d_err *err)
{
    int rc = check_info(w, in, err);
    if (rc) {
        l3d_voxel_cache_abort(w);
        return rc;
    }
    const int64_t S = in->n_samples;
    hid_t tok = l3d_h5_str_type(L3D_CACHE_TOKEN);
    hsize_t V = (hsize_t)w->row, B = (hsize_t)in->n_boxes;
    hsize_t d_v[1] = {V}, d_v3[2] = {V, 3}, d_s1[1] = {(hsize_t)S + 1}, d_s3[2] = {(hsize_t)S, 3},
            d_s[1] = {(hsize_t)S}, d_b7[2] = {B, 7}, d_b[1] = {B};
    l3d_h5w *h = &w->h5;
    TRY(l3d_h5stream_place(&w->points, err));
    TRY(l3d_h5w_dataset(h, "voxel_num_points", H5T_STD_I32LE, 1, d_v, NULL, err));
    TRY(l3d_spill_to_dataset(&w->num, h, "voxel_num_points", H5T_NATIVE_INT32, sizeof(int32_t),
                             err));
    TRY(l3d_h5w_dataset(h, "voxel_coords", H5T_STD_I32LE, 2, d_v3, NULL, err));
    TRY(l3d_spill_to_dataset(&w->coords, h, "voxel_coords", H5T_NATIVE_INT32,
                             3 * sizeof(int32_t), err));
    TRY(l3d_h5w_dataset(h, "voxel_offsets", H5T_NATIVE_INT64, 1, d_s1, in->voxel_offsets, err));
    TRY(l3d_h5w_dataset(h, "sample_point_counts", H5T_NATIVE_INT64, 2, d_s3,
                        in->sample_point_counts, err));
    TRY(l3d_h5w_dataset(h, "sample_tokens", tok, 1, d_s, in->sample_tokens, err));
    TRY(l3d_h5w_dataset(h, "boxes", H5T_NATIVE_FLOAT, 2, d_b7, in->boxes, err));
    TRY(l3d_h5w_dataset(h, "box_labels", H5T_NATIVE_INT32, 1, d_b, in->box_labels, err));
    TRY(l3d_h5w_dataset(h, "box_offsets", H5T_NATIVE_INT64, 1, d_s1, in->box_offsets, err));
    TRY(l3d_h5w_set_checksum(h, "voxel_points", sum_end(&w->sum_points), err));
    TRY(l3d_h5w_set_checksum(h, "voxel_num_points", sum_end(&w->sum_num), err));
    TRY(l3d_h5w_set_checksum(h, "voxel_coords", sum_end(&w->sum_coords), err));

    TRY(l3d_h5w_attr_str(h, "voxel_points", "layout", "x y z time_lag per slot; slots past "
                         "voxel_num_points are 0", err));
    TRY(l3d_h5w_attr_str(h, "voxel_points", "units", "m m m s", err));
    TRY(l3d_h5w_attr_str(h, "voxel_points", "frame", "key-frame LiDAR frame", err));
    TRY(l3d_h5w_attr_str(h, "voxel_num_points", "units", "points in the voxel, 1..max_points",
                         err));
    TRY(l3d_h5w_attr_str(h, "voxel_coords", "layout", "z y x cell indices", err));
    TRY(l3d_h5w_attr_str(h, "voxel_offsets", "layout", "sample s owns voxel rows "
                         "[voxel_offsets[s], voxel_offsets[s+1])", err));
    TRY(l3d_h5w_attr_str(h, "sample_point_counts", "layout", "points merged, after the range "
                         "filter, stored in voxels", err));
    TRY(l3d_h5w_attr_str(h, "boxes", "layout", "x y z l w h yaw; key-frame LiDAR frame; "
                         "geometric centre; m, rad", err));
    TRY(l3d_h5w_attr_str(h, "box_labels", "classes", "bicycle motorcycle pedestrian animal car "
                         "emergency_vehicle bus other_vehicle truck", err));
    TRY(l3d_h5w_attr_str(h, "box_offsets", "layout", "sample s owns box rows "
                         "[box_offsets[s], box_offsets[s+1])", err));

    double range[6], size[3];
    int32_t grid[3];
    const char *why = "";
    l3d_voxel_grid(&in->cfg, grid, &why);
    int64_t g64[3] = {grid[0], grid[1], grid[2]};
    for (int i = 0; i < 6; i++)
        range[i] = in->cfg.range[i];
    for (int i = 0; i < 3; i++)
        size[i] = in->cfg.size[i];
    char cfg_text[512];
    l3d_voxel_config_format(&in->cfg, cfg_text, sizeof cfg_text);
    TRY(l3d_h5w_attr_str(h, "/", "format", L3D_VOXEL_CACHE_FORMAT, err));
    TRY(l3d_h5w_attr_i64(h, "/", "schema_version", L3D_VOXEL_CACHE_SCHEMA, err));
    TRY(l3d_h5w_attr_str(h, "/", "tool_version", in->tool_version ? in->tool_version : "", err));
    TRY(l3d_h5w_attr_str(h, "/", "source", in->source ? in->source : "", err));
    TRY(l3d_h5w_attr_str(h, "/", "sweep_transform",
                         in->source_sweep_transform ? in->source_sweep_transform : "", err));
    TRY(l3d_h5w_attr_i64(h, "/", "sweeps", in->sweeps, err));
    TRY(write_array_attr(h, "point_cloud_range", H5T_NATIVE_DOUBLE, 6, range, err));
    TRY(write_array_attr(h, "voxel_size", H5T_NATIVE_DOUBLE, 3, size, err));
    TRY(write_array_attr(h, "grid_size", H5T_NATIVE_INT64, 3, g64, err));
    TRY(l3d_h5w_attr_i64(h, "/", "max_points", in->cfg.max_points, err));
    TRY(l3d_h5w_attr_i64(h, "/", "max_voxels", in->cfg.max_voxels, err));
    TRY(l3d_h5w_attr_str(h, "/", "config", cfg_text, err));
    TRY(l3d_h5w_attr_str(h, "/", "pipeline", "merge key frame + sweeps; PointsRangeFilter "
                         "(strict, float32); hard voxelization, first-come, array order, no "
                         "shuffle (ssn-model.md 1.4, 1.5 step 3, 2)", err));
    H5Tclose(tok);
    l3d_h5stream_close(&w->points);
    l3d_spill_close(&w->num);
    l3d_spill_close(&w->coords);
    return l3d_h5w_commit(h, err);   /* removes the temporary file on failure */
fail:
    H5Tclose(tok);
    l3d_voxel_cache_abort(w);
    return rc;
}

void l3d_voxel_cache_abort(l3d_voxel_cache_writer *w)
{
    l3d_h5stream_close(&w->points);
    l3d_spill_close(&w->num);
    l3d_spill_close(&w->coords);
    l3d_h5w_abort(&w->h5);
}

/* ---- reading -------------------------------------------------------------- */

static int bad(l3d_voxel_cache *c, l3d_err *err, const char *fmt, long long a, long long b)
{
    char what[512];
    snprintf(what, sizeof what, fmt, a, b);
    return l3d_fail(err, L3D_EINPUT, "%s: %s", c->h5.path, what);
}

#define VIEW(name, type, rank, verify, dst)                                          \
    do {                                                                             \
        l3d_h5view v_;                                                               \
        if ((rc = l3d_h5r_view(&c->h5, name, type, rank, verify, &v_, err)))         \
            goto fail;                                                               \
        dst = v_.data;                                                               \
        memcpy(dims, v_.dims, sizeof dims);                                          \
    } while (0)

/* Every voxel: counts, coordinates, zero slots, no cell twice in a sample. */
static int check_voxels(l3d_voxel_cache *c, l3d_err *err)
{
    const int P = c->cfg.max_points;
    const int64_t nxy = (int64_t)c->grid[0] * c->grid[1];
    unsigned char *seen = calloc((size_t)(nxy * c->grid[2]), 1);
    if (!seen)
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    int rc = L3D_OK;
    for (int64_t s = 0; s < c->n_samples && !rc; s++) {
        int64_t v0 = c->voxel_offsets[s], v1 = c->voxel_offsets[s + 1];
        for (int64_t v = v0; v < v1 && !rc; v++) {
            const int32_t *co = c->voxel_coords + 3 * v;
            int32_t n = c->voxel_num_points[v];
            if (n < 1 || n > P)
                rc = bad(c, err, "voxel %lld holds %lld points (expected 1..max_points)", v, n);
            else if (co[0] < 0 || co[0] >= c->grid[2] || co[1] < 0 || co[1] >= c->grid[1] ||
                     co[2] < 0 || co[2] >= c->grid[0])
                rc = bad(c, err, "voxel %lld: coordinates outside the grid (sample %lld)", v, s);
            else {
                int64_t cell = co[0] * nxy + (int64_t)co[1] * c->grid[0] + co[2];
                if (seen[cell]++)
                    rc = bad(c, err, "voxel %lld: its cell appears twice in sample %lld", v, s);
                const float *slot = c->voxel_points + (size_t)v * (size_t)P * L3D_VOXEL_FEATURES;
                for (size_t k = (size_t)n * L3D_VOXEL_FEATURES;
                     !rc && k < (size_t)P * L3D_VOXEL_FEATURES; k++) {
                    uint32_t bits;
                    memcpy(&bits, slot + k, 4);
                    if (bits)
                        rc = bad(c, err, "voxel %lld: an unused slot is not 0 (sample %lld)", v,
                                 s);
                }
            }
        }
        for (int64_t v = v0; v < v1; v++) {
            const int32_t *co = c->voxel_coords + 3 * v;
            if (co[0] >= 0 && co[0] < c->grid[2] && co[1] >= 0 && co[1] < c->grid[1] &&
                co[2] >= 0 && co[2] < c->grid[0])
                seen[co[0] * nxy + (int64_t)co[1] * c->grid[0] + co[2]] = 0;
        }
    }
    free(seen);
    return rc;
}

int l3d_voxel_cache_open(l3d_voxel_cache *c, const char *path, int flags, l3d_err *err)
{
    memset(c, 0, sizeof *c);
    int rc = l3d_h5r_open(&c->h5, path, L3D_VOXEL_CACHE_FORMAT, L3D_VOXEL_CACHE_SCHEMA, err);
    if (rc)
        return rc;
    hid_t tok = l3d_h5_str_type(L3D_CACHE_TOKEN);
    hsize_t dims[4];
    int all = flags & L3D_CACHE_VERIFY_ALL;
    double range[6], size[3];
    int64_t grid[3], max_points, max_voxels, sweeps;
    if ((rc = read_array_attr(&c->h5, "point_cloud_range", H5T_NATIVE_DOUBLE, 6, range, err)) ||
        (rc = read_array_attr(&c->h5, "voxel_size", H5T_NATIVE_DOUBLE, 3, size, err)) ||
        (rc = read_array_attr(&c->h5, "grid_size", H5T_NATIVE_INT64, 3, grid, err)) ||
        (rc = l3d_h5r_attr_i64(&c->h5, "/", "max_points", &max_points, err)) ||
        (rc = l3d_h5r_attr_i64(&c->h5, "/", "max_voxels", &max_voxels, err)) ||
        (rc = l3d_h5r_attr_i64(&c->h5, "/", "sweeps", &sweeps, err)))
        goto fail;
    for (int i = 0; i < 6; i++)
        c->cfg.range[i] = (float)range[i];
    for (int i = 0; i < 3; i++)
        c->cfg.size[i] = (float)size[i];
    if (max_points < 1 || max_points > INT_MAX || max_voxels < 1 || max_voxels > INT_MAX ||
        sweeps < 0 || sweeps > 10) {
        rc = bad(c, err, "max_points %lld, max_voxels %lld or sweeps out of range", max_points,
                 max_voxels);
        goto fail;
    }
    c->cfg.max_points = (int)max_points;
    c->cfg.max_voxels = (int)max_voxels;
    c->sweeps = (int)sweeps;
    const char *why = "";
    if (l3d_voxel_grid(&c->cfg, c->grid, &why)) {
        rc = l3d_fail(err, L3D_EINPUT, "%s: bad voxel config in the attributes: %s", path, why);
        goto fail;
    }
    if (grid[0] != c->grid[0] || grid[1] != c->grid[1] || grid[2] != c->grid[2]) {
        rc = bad(c, err, "grid_size attribute disagrees with point_cloud_range / voxel_size "
                 "(%lld x %lld ...)", grid[0], grid[1]);
        goto fail;
    }

    /* small datasets first (checksummed), then shapes of the big ones */
    VIEW("voxel_offsets", H5T_NATIVE_INT64, 1, 1, c->voxel_offsets);
    c->n_samples = (int64_t)dims[0] - 1;
    if (c->n_samples < 0) {
        rc = bad(c, err, "voxel_offsets is empty (expected S+1 entries)", 0, 0);
        goto fail;
    }
    VIEW("sample_point_counts", H5T_NATIVE_INT64, 2, 1, c->sample_point_counts);
    if ((int64_t)dims[0] != c->n_samples || dims[1] != 3) {
        rc = bad(c, err, "sample_point_counts is [%lld,%lld], expected [S,3]", (long long)dims[0],
                 (long long)dims[1]);
        goto fail;
    }
    VIEW("sample_tokens", tok, 1, 1, c->sample_tokens);
    if ((int64_t)dims[0] != c->n_samples) {
        rc = bad(c, err, "sample_tokens has %lld entries, voxel_offsets %lld samples",
                 (long long)dims[0], c->n_samples);
        goto fail;
    }
    VIEW("box_offsets", H5T_NATIVE_INT64, 1, 1, c->box_offsets);
    if ((int64_t)dims[0] != c->n_samples + 1) {
        rc = bad(c, err, "box_offsets has %lld entries, expected %lld", (long long)dims[0],
                 c->n_samples + 1);
        goto fail;
    }
    VIEW("boxes", H5T_NATIVE_FLOAT, 2, 1, c->boxes);
    c->n_boxes = (int64_t)dims[0];
    if (dims[1] != 7) {
        rc = bad(c, err, "boxes is [B,%lld], expected [B,7]", (long long)dims[1], 0);
        goto fail;
    }
    VIEW("box_labels", H5T_NATIVE_INT32, 1, 1, c->box_labels);
    if ((int64_t)dims[0] != c->n_boxes) {
        rc = bad(c, err, "box_labels has %lld entries, boxes %lld", (long long)dims[0],
                 c->n_boxes);
        goto fail;
    }
    VIEW("voxel_num_points", H5T_NATIVE_INT32, 1, all, c->voxel_num_points);
    c->n_voxels = (int64_t)dims[0];
    VIEW("voxel_coords", H5T_NATIVE_INT32, 2, all, c->voxel_coords);
    if ((int64_t)dims[0] != c->n_voxels || dims[1] != 3) {
        rc = bad(c, err, "voxel_coords is [%lld,%lld], expected [V,3]", (long long)dims[0],
                 (long long)dims[1]);
        goto fail;
    }
    VIEW("voxel_points", H5T_NATIVE_FLOAT, 3, all, c->voxel_points);
    if ((int64_t)dims[0] != c->n_voxels || (int64_t)dims[1] != max_points ||
        dims[2] != L3D_VOXEL_FEATURES) {
        rc = bad(c, err, "voxel_points is [%lld,%lld,...], expected [V,max_points,4]",
                 (long long)dims[0], (long long)dims[1]);
        goto fail;
    }

    /* offsets: start at 0, never decrease, end at the row counts, obey the cap */
    if (c->voxel_offsets[0] != 0 || c->voxel_offsets[c->n_samples] != c->n_voxels) {
        rc = bad(c, err, "voxel_offsets run from %lld to %lld, not over the voxel rows",
                 c->voxel_offsets[0], c->voxel_offsets[c->n_samples]);
        goto fail;
    }
    if (c->box_offsets[0] != 0 || c->box_offsets[c->n_samples] != c->n_boxes) {
        rc = bad(c, err, "box_offsets run from %lld to %lld, not over the boxes",
                 c->box_offsets[0], c->box_offsets[c->n_samples]);
        goto fail;
    }
    for (int64_t s = 0; s < c->n_samples; s++) {
        int64_t nv = c->voxel_offsets[s + 1] - c->voxel_offsets[s];
        if (nv < 0 || nv > max_voxels) {
            rc = bad(c, err, "sample %lld: %lld voxels (offsets decrease or exceed max_voxels)",
                     s, nv);
            goto fail;
        }
        if (c->box_offsets[s + 1] < c->box_offsets[s]) {
            rc = bad(c, err, "sample %lld: box_offsets decrease", s, 0);
            goto fail;
        }
        const int64_t *pc = c->sample_point_counts + 3 * s;
        if (pc[0] < pc[1] || pc[1] < pc[2] || pc[2] < nv) {
            rc = bad(c, err, "sample %lld: sample_point_counts are inconsistent", s, 0);
            goto fail;
        }
    }
    for (int64_t b = 0; b < c->n_boxes; b++)
        if (c->box_labels[b] < 0 || c->box_labels[b] >= 9) {
            rc = bad(c, err, "box %lld: label %lld outside 0..8", b, c->box_labels[b]);
            goto fail;
        }
    if (all && (rc = check_voxels(c, err)))
        goto fail;
    H5Tclose(tok);
    return L3D_OK;
fail:
    H5Tclose(tok);
    l3d_voxel_cache_close(c);
    return rc;
}

void l3d_voxel_cache_close(l3d_voxel_cache *c)
{
    l3d_h5r_close(&c->h5);
    memset(c, 0, sizeof *c);
}

void l3d_voxel_cache_sample(const l3d_voxel_cache *c, int64_t s, l3d_voxel_sample *o)
{
    int64_t v0 = c->voxel_offsets[s], b0 = c->box_offsets[s];
    memset(o, 0, sizeof *o);
    o->n_voxels = c->voxel_offsets[s + 1] - v0;
    o->n_boxes = c->box_offsets[s + 1] - b0;
    o->token = c->sample_tokens + (size_t)s * L3D_CACHE_TOKEN;
    if (o->n_voxels) {   /* (an empty dataset has no pointer to offset) */
        o->points = c->voxel_points + (size_t)v0 * (size_t)c->cfg.max_points * L3D_VOXEL_FEATURES;
        o->num_points = c->voxel_num_points + v0;
        o->coords = c->voxel_coords + 3 * v0;
    }
    if (o->n_boxes) {
        o->boxes = c->boxes + 7 * b0;
        o->labels = c->box_labels + b0;
    }
}
