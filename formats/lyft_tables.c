#include "formats/lyft_tables.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/json_records.h"
#include "formats/json_split.h"

const char *const l3d_table_names[] = {
    "scene", "sample", "sample_data", "ego_pose", "calibrated_sensor", "sensor",
    "sample_annotation", "instance", "category", NULL,
};
enum { N_REQUIRED = 6, N_TABLES = 9 };
enum { TI_SAMPLE_DATA = 2, TI_EGO_POSE = 3, TI_CALIB = 4, TI_SENSOR = 5 };   /* in that list */

/* The order folders are read in: the channel's sensors first, so that
 * sample_data records of other sensors (most of them: cameras) can be
 * skipped, then sample_data, so that unused ego poses can be (see
 * on_sample_data). An archive is read in its own order. */
static const char *const read_order[] = {
    "scene", "sample", "calibrated_sensor", "sensor", "sample_data", "ego_pose",
    "sample_annotation", "instance", "category", NULL,
};

const char *const l3d_lyft_classes[9] = {
    "bicycle", "motorcycle", "pedestrian", "animal", "car",
    "emergency_vehicle", "bus", "other_vehicle", "truck",
};

int l3d_lyft_class_index(const char *name)
{
    for (int i = 0; i < 9; i++)
        if (strcmp(name, l3d_lyft_classes[i]) == 0)
            return i;
    return -1;
}

/* Grows a table by one row and returns it zeroed (NULL on OOM). */
#define PUSH(tab) ((tab).n < (tab).cap || grow_table((void **)&(tab).rows, &(tab).cap, sizeof *(tab).rows) \
                   ? memset(&(tab).rows[(tab).n++], 0, sizeof *(tab).rows) : NULL)

static int grow_table(void **rows, uint32_t *cap, size_t elem)
{
    uint32_t nc = *cap ? *cap * 2 : 256;
    void *r = realloc(*rows, (size_t)nc * elem);
    if (!r)
        return 0;
    *rows = r;
    *cap = nc;
    return 1;
}

/* Hashes of the tokens of skipped sample_data records. */
typedef struct skipped { uint64_t *hash; size_t n, cap; } skipped;

typedef struct load_ctx {
    l3d_tables *t;
    const struct load_ctx *owner;   /* of a part of a table read in chunks; NULL: this one */
    const char *table;
    /* Records no index line can use are skipped: sample_data of other
     * sensors, ego poses no sample_data names. These maps say which (empty
     * until the tables that tell are read; read-only while chunks are
     * parsed on other threads). */
    const char *channel;
    int filter;                 /* 0: keep every record (see l3d_tables_load) */
    l3d_strmap calib_channel;   /* calibrated_sensor token -> 1 other sensor, 2 the channel's */
    l3d_strmap ego_used;        /* ego_pose tokens that kept sample_data records name */
    skipped skipped_sd;
    int seen[N_TABLES];
    char seen_where[N_TABLES][512];
    int64_t bytes_before, bytes_now;
    uint32_t rows_before;   /* rows of the table being read, before it */
    long records_before;
    l3d_bytes_fn progress;
    void *progress_ctx;
} load_ctx;

static int oom(l3d_err *err) { return l3d_fail(err, L3D_EINTERNAL, "out of memory"); }

/* A string field, interned: looked up by its text (`stored` 0), or only
 * stored to be read back by id (file names, annotation tokens). */
static int intern(l3d_tables *t, const l3d_record *r, const char *key, int stored, uint32_t *out,
                  l3d_err *err)
{
    const l3d_jfield *f = l3d_rec_field(r, key);
    if (!f || f->kind != L3D_JSTR) {
        const char *s;
        return l3d_rec_str(r, key, &s, err);   /* its message */
    }
    /* up to a NUL, as everything that reads them back as C strings does */
    size_t len = strlen(f->str);
    *out = stored ? l3d_intern_store(&t->str, f->str, len)
                  : l3d_intern_id_n(&t->str, f->str, len, 1);
    return *out == L3D_NO_ID ? oom(err) : L3D_OK;
}

static int tok(l3d_tables *t, const l3d_record *r, const char *key, uint32_t *out, l3d_err *err)
{
    return intern(t, r, key, 0, out, err);
}

static int pose(const l3d_record *r, l3d_pose *p, l3d_err *err)
{
    int rc = l3d_rec_nums(r, "translation", 3, p->t, err);
    return rc ? rc : l3d_rec_nums(r, "rotation", 4, p->q, err);
}

#define TRY(x) do { int rc_ = (x); if (rc_) return rc_; } while (0)

static int on_scene(load_ctx *lc, const l3d_record *r, l3d_err *err)
{
    l3d_tables *t = lc->t;
    l3d_scene *s = PUSH(t->scene);
    if (!s)
        return oom(err);
    TRY(tok(t, r, "token", &s->token, err));
    return tok(t, r, "name", &s->name, err);
}

static int on_sample(load_ctx *lc, const l3d_record *r, l3d_err *err)
{
    l3d_tables *t = lc->t;
    l3d_sample *s = PUSH(t->sample);
    if (!s)
        return oom(err);
    TRY(tok(t, r, "token", &s->token, err));
    TRY(tok(t, r, "scene_token", &s->scene_tok, err));
    return l3d_rec_num(r, "timestamp", &s->timestamp, err);
}

/* The context whose maps say which records to skip. */
static const load_ctx *filters(const load_ctx *lc) { return lc->owner ? lc->owner : lc; }

/* Appends n hashes to k. */
static int add_skipped(skipped *k, const uint64_t *hash, size_t n, l3d_err *err)
{
    if (k->n + n > k->cap) {
        size_t cap = k->cap ? k->cap : 1024;
        while (cap < k->n + n)
            cap *= 2;
        uint64_t *h = realloc(k->hash, cap * sizeof *h);
        if (!h)
            return oom(err);
        k->hash = h;
        k->cap = cap;
    }
    if (n)
        memcpy(k->hash + k->n, hash, n * sizeof *hash);
    k->n += n;
    return L3D_OK;
}

static int skip_sample_data(load_ctx *lc, const char *token, l3d_err *err)
{
    uint64_t h = l3d_hash_bytes(token, strlen(token), 0);
    return add_skipped(&lc->skipped_sd, &h, 1, err);
}

static int on_sample_data(load_ctx *lc, const l3d_record *r, l3d_err *err)
{
    const l3d_strmap *calib_channel = &filters(lc)->calib_channel;
    if (calib_channel->n) {
        /* a record of another sensor is checked as a kept one is, in the
         * same order, then only its token's hash is kept (link_tables) */
        const char *token, *s;
        int key;
        double ts;
        TRY(l3d_rec_str(r, "token", &token, err));
        TRY(l3d_rec_str(r, "sample_token", &s, err));
        TRY(l3d_rec_str(r, "ego_pose_token", &s, err));
        TRY(l3d_rec_str(r, "calibrated_sensor_token", &s, err));
        int other_sensor = l3d_strmap_get(calib_channel, s) == 1;
        TRY(l3d_rec_str(r, "prev", &s, err));
        TRY(l3d_rec_str(r, "filename", &s, err));
        TRY(l3d_rec_bool(r, "is_key_frame", &key, err));
        TRY(l3d_rec_num(r, "timestamp", &ts, err));
        if (other_sensor)
            return skip_sample_data(lc, token, err);
    }
    l3d_tables *t = lc->t;
    l3d_sample_data *d = PUSH(t->sample_data);
    if (!d)
        return oom(err);
    int key;
    TRY(tok(t, r, "token", &d->token, err));
    TRY(tok(t, r, "sample_token", &d->sample_tok, err));
    TRY(tok(t, r, "ego_pose_token", &d->ego_tok, err));
    TRY(tok(t, r, "calibrated_sensor_token", &d->calib_tok, err));
    TRY(tok(t, r, "prev", &d->prev_tok, err));
    TRY(intern(t, r, "filename", 1, &d->filename, err));
    TRY(l3d_rec_bool(r, "is_key_frame", &key, err));
    d->key_frame = (uint8_t)key;
    return l3d_rec_num(r, "timestamp", &d->timestamp, err);
}

static int on_ego_pose(load_ctx *lc, const l3d_record *r, l3d_err *err)
{
    const l3d_strmap *used = &filters(lc)->ego_used;
    if (used->n) {
        const char *token;
        l3d_pose unused;
        TRY(l3d_rec_str(r, "token", &token, err));
        if (!l3d_strmap_get(used, token))
            return pose(r, &unused, err);   /* checked, not kept */
    }
    l3d_tables *t = lc->t;
    l3d_ego_pose *e = PUSH(t->ego_pose);
    if (!e)
        return oom(err);
    TRY(tok(t, r, "token", &e->token, err));
    return pose(r, &e->pose, err);
}

static int on_calib(load_ctx *lc, const l3d_record *r, l3d_err *err)
{
    l3d_tables *t = lc->t;
    l3d_calib *c = PUSH(t->calib);
    if (!c)
        return oom(err);
    TRY(tok(t, r, "token", &c->token, err));
    TRY(tok(t, r, "sensor_token", &c->sensor_tok, err));
    return pose(r, &c->pose, err);
}

static int on_sensor(load_ctx *lc, const l3d_record *r, l3d_err *err)
{
    l3d_tables *t = lc->t;
    l3d_sensor *s = PUSH(t->sensor);
    if (!s)
        return oom(err);
    TRY(tok(t, r, "token", &s->token, err));
    return tok(t, r, "channel", &s->channel, err);
}

static int on_annotation(load_ctx *lc, const l3d_record *r, l3d_err *err)
{
    l3d_tables *t = lc->t;
    l3d_annotation *a = PUSH(t->ann);
    if (!a)
        return oom(err);
    double n;
    /* Nothing looks an annotation up by its token: store it without
     * entering it in the look-up map (half of all tokens are these). */
    TRY(intern(t, r, "token", 1, &a->token, err));
    TRY(tok(t, r, "sample_token", &a->sample_tok, err));
    TRY(tok(t, r, "instance_token", &a->instance_tok, err));
    TRY(l3d_rec_nums(r, "translation", 3, a->centre, err));
    TRY(l3d_rec_nums(r, "size", 3, a->size_wlh, err));
    TRY(l3d_rec_nums(r, "rotation", 4, a->q, err));
    a->num_lidar_pts = -1;
    if (l3d_rec_field(r, "num_lidar_pts")) {
        TRY(l3d_rec_num(r, "num_lidar_pts", &n, err));
        a->num_lidar_pts = (int32_t)n;
    }
    for (int i = 0; i < 3; i++)
        if (!(a->size_wlh[i] > 0))
            return l3d_fail(err, L3D_EINPUT,
                            "%s: record %ld (line %ld): size[%d] = %g, expected a positive size",
                            r->file, r->index, r->line, i, a->size_wlh[i]);
    return L3D_OK;
}

static int on_instance(load_ctx *lc, const l3d_record *r, l3d_err *err)
{
    l3d_tables *t = lc->t;
    l3d_instance *in = PUSH(t->instance);
    if (!in)
        return oom(err);
    TRY(tok(t, r, "token", &in->token, err));
    return tok(t, r, "category_token", &in->category_tok, err);
}

static int on_category(load_ctx *lc, const l3d_record *r, l3d_err *err)
{
    l3d_tables *t = lc->t;
    l3d_category *c = PUSH(t->category);
    if (!c)
        return oom(err);
    TRY(tok(t, r, "token", &c->token, err));
    TRY(tok(t, r, "name", &c->name, err));
    const char *name = l3d_str(t, c->name);
    if (l3d_lyft_class_index(name) < 0)
        return l3d_fail(err, L3D_ECATEGORY,
                        "%s: record %ld (line %ld): unknown category '%s'; Lyft's are car, "
                        "truck, bus, emergency_vehicle, other_vehicle, motorcycle, bicycle, "
                        "pedestrian, animal",
                        r->file, r->index, r->line, name);
    return L3D_OK;
}

typedef int (*row_fn)(load_ctx *, const l3d_record *, l3d_err *);
static const row_fn row_fns[N_TABLES] = {
    on_scene, on_sample, on_sample_data, on_ego_pose, on_calib,
    on_sensor, on_annotation, on_instance, on_category,
};

static int table_index(const char *name)
{
    for (int i = 0; l3d_table_names[i]; i++)
        if (strcmp(name, l3d_table_names[i]) == 0)
            return i;
    return -1;
}

static int on_record(void *vctx, const l3d_record *r, l3d_err *err)
{
    load_ctx *c = vctx;
    c->t->n_records++;
    return row_fns[table_index(c->table)](c, r, err);
}

static void on_read(void *vctx, size_t n)
{
    load_ctx *c = vctx;
    c->bytes_now += (int64_t)n;
    if (c->progress)
        c->progress(c->progress_ctx, c->bytes_now);
}

/* ---- tables read in chunks (formats/json_split.h) ---------------------- */

/* The id fields of each table's rows; `stored` ones were added with
 * l3d_intern_store (not looked up by string). */
typedef struct id_field { size_t off; int stored; } id_field;
#define ID(T, f) {offsetof(T, f), 0}
static const id_field ids_scene[] = {ID(l3d_scene, token), ID(l3d_scene, name)};
static const id_field ids_sample[] = {ID(l3d_sample, token), ID(l3d_sample, scene_tok)};
static const id_field ids_sd[] = {
    ID(l3d_sample_data, token), ID(l3d_sample_data, sample_tok), ID(l3d_sample_data, ego_tok),
    ID(l3d_sample_data, calib_tok), ID(l3d_sample_data, prev_tok),
    {offsetof(l3d_sample_data, filename), 1},
};
static const id_field ids_ego[] = {ID(l3d_ego_pose, token)};
static const id_field ids_calib[] = {ID(l3d_calib, token), ID(l3d_calib, sensor_tok)};
static const id_field ids_sensor[] = {ID(l3d_sensor, token), ID(l3d_sensor, channel)};
static const id_field ids_ann[] = {
    {offsetof(l3d_annotation, token), 1}, ID(l3d_annotation, sample_tok),
    ID(l3d_annotation, instance_tok),
};
static const id_field ids_instance[] = {ID(l3d_instance, token), ID(l3d_instance, category_tok)};
static const id_field ids_category[] = {ID(l3d_category, token), ID(l3d_category, name)};
#undef ID

/* Appends the rows of `from` (parsed with its own interner) to `to`,
 * re-interning their strings into to's. */
static int append_part(l3d_tables *to, const l3d_tables *from, void **rows, uint32_t *n,
                       uint32_t *cap, const void *from_rows, uint32_t from_n, size_t elem,
                       const id_field *ids, size_t n_ids, uint32_t *remap, l3d_err *err)
{
    if (!from_n)   /* every record of the part skipped */
        return L3D_OK;
    if ((uint64_t)*n + from_n >= L3D_NO_ROW)
        return oom(err);
    while (*n + from_n > *cap)
        if (!grow_table(rows, cap, elem))
            return oom(err);
    char *dst = (char *)*rows + (size_t)*n * elem;
    memcpy(dst, from_rows, (size_t)from_n * elem);
    for (uint32_t i = 0; i < from_n; i++)
        for (size_t k = 0; k < n_ids; k++) {
            uint32_t *id = (uint32_t *)(dst + (size_t)i * elem + ids[k].off);
            const char *str = l3d_str(from, *id);
            if (ids[k].stored) {
                *id = l3d_intern_store(&to->str, str, strlen(str));
            } else {
                if (remap[*id] == L3D_NO_ID)
                    remap[*id] = l3d_intern_id(&to->str, str, 1);
                *id = remap[*id];
            }
            if (*id == L3D_NO_ID)
                return oom(err);
        }
    *n += from_n;
    return L3D_OK;
}

static int append_table(l3d_tables *to, const l3d_tables *from, int ti, l3d_err *err)
{
    uint32_t *remap = malloc(((size_t)from->str.n + 1) * sizeof *remap);
    if (!remap || !l3d_intern_reserve(&to->str, from->str.map.n)) {
        free(remap);
        return oom(err);
    }
    memset(remap, 0xff, ((size_t)from->str.n + 1) * sizeof *remap);
    int rc = L3D_EINTERNAL;
#define APPEND(tab, ids)                                                                     \
    rc = append_part(to, from, (void **)&to->tab.rows, &to->tab.n, &to->tab.cap,            \
                     from->tab.rows, from->tab.n, sizeof *to->tab.rows, ids,                 \
                     sizeof ids / sizeof *ids, remap, err)
    switch (ti) {
    case 0: APPEND(scene, ids_scene); break;
    case 1: APPEND(sample, ids_sample); break;
    case 2: APPEND(sample_data, ids_sd); break;
    case 3: APPEND(ego_pose, ids_ego); break;
    case 4: APPEND(calib, ids_calib); break;
    case 5: APPEND(sensor, ids_sensor); break;
    case 6: APPEND(ann, ids_ann); break;
    case 7: APPEND(instance, ids_instance); break;
    case 8: APPEND(category, ids_category); break;
    }
#undef APPEND
    free(remap);
    to->n_records += from->n_records;
    return rc;
}

/* The parts of a table read in chunks: rows in tables of their own, with
 * an interner of their own, appended to the owner's in file order. */
typedef struct part { load_ctx c; l3d_tables t; } part;

static void *part_open(void *owner)
{
    part *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    l3d_intern_init(&p->t.str);
    p->c.t = &p->t;
    p->c.owner = owner;
    p->c.table = ((load_ctx *)owner)->table;
    return p;
}

static int part_take(void *owner, void *vp, l3d_err *err)
{
    load_ctx *c = owner;
    part *p = vp;
    int rc = add_skipped(&c->skipped_sd, p->c.skipped_sd.hash, p->c.skipped_sd.n, err);
    return rc ? rc : append_table(c->t, &p->t, table_index(c->table), err);
}

static void part_drop(void *owner, void *vp)
{
    (void)owner;
    part *p = vp;
    l3d_tables_free(&p->t);
    free(p->c.skipped_sd.hash);
    free(p);
}

static uint32_t *table_rows(l3d_tables *t, int ti)
{
    uint32_t *n[N_TABLES] = {
        &t->scene.n, &t->sample.n, &t->sample_data.n, &t->ego_pose.n, &t->calib.n,
        &t->sensor.n, &t->ann.n, &t->instance.n, &t->category.n,
    };
    return n[ti];
}

/* Back to the rows before the table; strings interned meanwhile stay,
 * unused. */
static void part_undo(void *owner)
{
    load_ctx *c = owner;
    *table_rows(c->t, table_index(c->table)) = c->rows_before;
    c->t->n_records = c->records_before;
}

static const l3d_parts table_parts = {part_open, part_take, part_drop, part_undo};

/* Which calibrated sensors are the channel's (2), another's (1), or of an
 * unknown sensor (3: their records are kept, for link_tables to report).
 * Duplicate tokens: the last record counts, as in link_tables. */
static int note_channel_calibs(load_ctx *c, l3d_err *err)
{
    l3d_tables *t = c->t;
    uint32_t chan = l3d_intern_id(&t->str, c->channel, 0);
    for (uint32_t i = 0; i < t->calib.n; i++) {
        const l3d_calib *cb = &t->calib.rows[i];
        size_t v = 3;
        for (uint32_t k = 0; k < t->sensor.n; k++)
            if (t->sensor.rows[k].token == cb->sensor_tok)
                v = t->sensor.rows[k].channel == chan ? 2 : 1;
        if (!l3d_strmap_put(&c->calib_channel, l3d_str(t, cb->token), v))
            return oom(err);
    }
    return L3D_OK;
}

/* The ego poses that the kept sample_data records name. */
static int note_used_ego_poses(load_ctx *c, l3d_err *err)
{
    const l3d_tables *t = c->t;
    for (uint32_t i = 0; i < t->sample_data.n; i++)
        if (!l3d_strmap_put(&c->ego_used, l3d_str(t, t->sample_data.rows[i].ego_tok), 1))
            return oom(err);
    return L3D_OK;
}

static int on_table(void *vctx, const char *table, const char *display, int64_t size,
                    l3d_stream *s, l3d_err *err)
{
    (void)size;
    load_ctx *c = vctx;
    int ti = table_index(table);
    if (c->seen[ti])
        return l3d_fail(err, L3D_EINPUT, "table '%s' found twice: '%s' and '%s'", table,
                        c->seen_where[ti], display);
    c->seen[ti] = 1;
    snprintf(c->seen_where[ti], sizeof c->seen_where[ti], "%s", display);
    c->table = table;
    c->rows_before = *table_rows(c->t, ti);
    c->records_before = c->t->n_records;
    int rc = L3D_OK;
    if (c->filter && ti == TI_SAMPLE_DATA && c->seen[TI_CALIB] && c->seen[TI_SENSOR])
        rc = note_channel_calibs(c, err);
    if (c->filter && ti == TI_EGO_POSE && c->seen[TI_SAMPLE_DATA])
        rc = note_used_ego_poses(c, err);
    if (rc)
        return rc;
    int chunks;
    return l3d_json_parse_table(s, display, on_record, c, &table_parts, c, &chunks, on_read, c,
                                err);
}

/* ---- linking: token id -> row, per table ------------------------------ */

typedef struct idmap { uint32_t *keys, *rows; size_t cap; } idmap;

static int idmap_build(idmap *m, const void *rows, uint32_t n, size_t stride)
{
    m->cap = 16;
    while (m->cap < 2 * (size_t)n + 16)
        m->cap *= 2;
    m->keys = malloc(m->cap * sizeof *m->keys);
    m->rows = malloc(m->cap * sizeof *m->rows);
    if (!m->keys || !m->rows)
        return 0;
    memset(m->keys, 0xff, m->cap * sizeof *m->keys);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = *(const uint32_t *)((const char *)rows + (size_t)i * stride); /* token is first */
        size_t h = ((uint64_t)k * 0x9E3779B97F4A7C15ull >> 20) & (m->cap - 1);
        while (m->keys[h] != L3D_NO_ID && m->keys[h] != k)
            h = (h + 1) & (m->cap - 1);
        m->keys[h] = k;   /* a duplicate token keeps its last row, as the SDK's dict does */
        m->rows[h] = i;
    }
    return 1;
}

static uint32_t idmap_get(const idmap *m, uint32_t k)
{
    size_t h = ((uint64_t)k * 0x9E3779B97F4A7C15ull >> 20) & (m->cap - 1);
    while (m->keys[h] != L3D_NO_ID) {
        if (m->keys[h] == k)
            return m->rows[h];
        h = (h + 1) & (m->cap - 1);
    }
    return L3D_NO_ROW;
}

static void idmap_free(idmap *m)
{
    free(m->keys);
    free(m->rows);
}

static int dangling(l3d_err *err, const char *table, const char *token, const char *field,
                    const char *value, const char *target)
{
    return l3d_fail(err, L3D_EDANGLING,
                    "%s record '%s': %s '%s' names no record of %s.json", table, token, field,
                    value, target);
}

/* l3d_tables_load reads the tables again, keeping every record: a prev
 * link names a skipped record (of another sensor). No real data does that,
 * but MMDetection3D would follow such a link, and so we do. */
enum { RELOAD_ALL = -1 };

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Whether token may be that of a skipped record (hashes: false positives
 * only cost a second reading). */
static int was_skipped(skipped *sk, int *sorted, const char *token)
{
    if (!sk->n)
        return 0;
    if (!*sorted) {
        qsort(sk->hash, sk->n, sizeof *sk->hash, cmp_u64);
        *sorted = 1;
    }
    uint64_t h = l3d_hash_bytes(token, strlen(token), 0);
    return bsearch(&h, sk->hash, sk->n, sizeof h, cmp_u64) != NULL;
}

static int link_tables(l3d_tables *t, const char *channel, skipped *sk, l3d_err *err)
{
    int sorted = 0;
    idmap m_scene = {0}, m_sample = {0}, m_sd = {0}, m_ego = {0}, m_calib = {0}, m_sensor = {0},
          m_inst = {0}, m_cat = {0};
    int rc = L3D_OK;
#define BUILD(m, tab) if (!idmap_build(&m, t->tab.rows, t->tab.n, sizeof *t->tab.rows)) { rc = oom(err); goto out; }
    BUILD(m_scene, scene) BUILD(m_sample, sample) BUILD(m_sd, sample_data) BUILD(m_ego, ego_pose)
    BUILD(m_calib, calib) BUILD(m_sensor, sensor) BUILD(m_inst, instance) BUILD(m_cat, category)
#undef BUILD
    uint32_t chan = l3d_intern_id(&t->str, channel, 0);
    for (uint32_t i = 0; i < t->calib.n; i++) {
        l3d_calib *c = &t->calib.rows[i];
        c->sensor = idmap_get(&m_sensor, c->sensor_tok);
        if (c->sensor == L3D_NO_ROW) {
            rc = dangling(err, "calibrated_sensor", l3d_str(t, c->token), "sensor_token",
                          l3d_str(t, c->sensor_tok), "sensor");
            goto out;
        }
    }
    for (uint32_t i = 0; i < t->sample.n; i++) {
        l3d_sample *s = &t->sample.rows[i];
        s->scene = idmap_get(&m_scene, s->scene_tok);
        s->key_sd = L3D_NO_ROW;
        if (s->scene == L3D_NO_ROW) {
            rc = dangling(err, "sample", l3d_str(t, s->token), "scene_token",
                          l3d_str(t, s->scene_tok), "scene");
            goto out;
        }
    }
    for (uint32_t i = 0; i < t->sample_data.n; i++) {
        l3d_sample_data *d = &t->sample_data.rows[i];
        d->calib = idmap_get(&m_calib, d->calib_tok);
        if (d->calib == L3D_NO_ROW) {
            rc = dangling(err, "sample_data", l3d_str(t, d->token), "calibrated_sensor_token",
                          l3d_str(t, d->calib_tok), "calibrated_sensor");
            goto out;
        }
        d->in_channel = t->sensor.rows[t->calib.rows[d->calib].sensor].channel == chan;
        int has_prev = l3d_str(t, d->prev_tok)[0] != 0;
        d->prev = has_prev ? idmap_get(&m_sd, d->prev_tok) : L3D_NO_ROW;
        if (!d->in_channel) {
            /* checked no further, but linked: a channel record's prev may
             * name it (MMDetection3D then takes it as a sweep), and its
             * prev goes on from there */
            d->ego = idmap_get(&m_ego, d->ego_tok);
            d->prev_dangling = has_prev && d->prev == L3D_NO_ROW;
            continue;
        }
        d->sample = idmap_get(&m_sample, d->sample_tok);
        if (d->sample == L3D_NO_ROW) {
            rc = dangling(err, "sample_data", l3d_str(t, d->token), "sample_token",
                          l3d_str(t, d->sample_tok), "sample");
            goto out;
        }
        d->ego = idmap_get(&m_ego, d->ego_tok);
        if (d->ego == L3D_NO_ROW) {
            rc = dangling(err, "sample_data", l3d_str(t, d->token), "ego_pose_token",
                          l3d_str(t, d->ego_tok), "ego_pose");
            goto out;
        }
        if (has_prev && d->prev == L3D_NO_ROW) {
            if (was_skipped(sk, &sorted, l3d_str(t, d->prev_tok))) {
                rc = RELOAD_ALL;
                goto out;
            }
            d->prev_dangling = 1;
            t->n_prev_dangling++;
        }
        /* SDK: sample.data[channel] = last key frame in file order */
        if (d->key_frame)
            t->sample.rows[d->sample].key_sd = i;
    }
    for (uint32_t i = 0; i < t->sample.n; i++)
        t->n_samples_no_channel += t->sample.rows[i].key_sd == L3D_NO_ROW;
    if (t->has_annotations) {
        for (uint32_t i = 0; i < t->instance.n; i++) {
            l3d_instance *in = &t->instance.rows[i];
            in->category = idmap_get(&m_cat, in->category_tok);
            if (in->category == L3D_NO_ROW) {
                rc = dangling(err, "instance", l3d_str(t, in->token), "category_token",
                              l3d_str(t, in->category_tok), "category");
                goto out;
            }
        }
        t->ann_offsets = calloc((size_t)t->sample.n + 1, sizeof *t->ann_offsets);
        t->ann_rows = malloc(((size_t)t->ann.n + 1) * sizeof *t->ann_rows);
        if (!t->ann_offsets || !t->ann_rows) {
            rc = oom(err);
            goto out;
        }
        for (uint32_t i = 0; i < t->ann.n; i++) {
            l3d_annotation *a = &t->ann.rows[i];
            a->sample = idmap_get(&m_sample, a->sample_tok);
            a->instance = idmap_get(&m_inst, a->instance_tok);
            if (a->sample == L3D_NO_ROW) {
                rc = dangling(err, "sample_annotation", l3d_str(t, a->token), "sample_token",
                              l3d_str(t, a->sample_tok), "sample");
                goto out;
            }
            if (a->instance == L3D_NO_ROW) {
                rc = dangling(err, "sample_annotation", l3d_str(t, a->token), "instance_token",
                              l3d_str(t, a->instance_tok), "instance");
                goto out;
            }
            t->ann_offsets[a->sample + 1]++;
        }
        for (uint32_t s = 0; s < t->sample.n; s++)
            t->ann_offsets[s + 1] += t->ann_offsets[s];
        uint32_t *fill = calloc((size_t)t->sample.n + 1, sizeof *fill);
        if (!fill) {
            rc = oom(err);
            goto out;
        }
        for (uint32_t i = 0; i < t->ann.n; i++) {
            uint32_t s = t->ann.rows[i].sample;
            t->ann_rows[t->ann_offsets[s] + fill[s]++] = i;
        }
        free(fill);
    }
out:
    idmap_free(&m_scene); idmap_free(&m_sample); idmap_free(&m_sd); idmap_free(&m_ego);
    idmap_free(&m_calib); idmap_free(&m_sensor); idmap_free(&m_inst); idmap_free(&m_cat);
    return rc;
}

static int load(l3d_tables *t, l3d_source *src, const char *channel, int verify_lidar,
                int filter, l3d_bytes_fn progress, void *progress_ctx, l3d_err *err)
{
    memset(t, 0, sizeof *t);
    l3d_intern_init(&t->str);
    load_ctx c = {.t = t, .channel = channel, .filter = filter, .progress = progress,
                  .progress_ctx = progress_ctx};
    l3d_strmap_init(&c.calib_channel);
    l3d_strmap_init(&c.ego_used);
    int rc = l3d_source_scan(src, read_order, verify_lidar, on_table, &c, err);
    l3d_json_chunk_cache_free();
    l3d_strmap_free(&c.calib_channel);
    l3d_strmap_free(&c.ego_used);
    for (int i = 0; i < N_REQUIRED && !rc; i++)
        if (!c.seen[i])
            rc = l3d_fail(err, L3D_EMISSING_TABLE,
                          "table '%s.json' not found in the dataset source (looked in "
                          "train_data/, v1.01-train/v1.01-train/ and the folder itself)",
                          l3d_table_names[i]);
    t->has_annotations = c.seen[table_index("sample_annotation")];
    for (int i = N_REQUIRED + 1; i < N_TABLES && t->has_annotations && !rc; i++)
        if (!c.seen[i])
            rc = l3d_fail(err, L3D_EMISSING_TABLE,
                          "table '%s.json' not found, but sample_annotation.json needs it",
                          l3d_table_names[i]);
    if (!rc)
        rc = link_tables(t, channel, &c.skipped_sd, err);
    free(c.skipped_sd.hash);
    return rc;
}

int l3d_tables_load(l3d_tables *t, l3d_source *src, const char *channel, int verify_lidar,
                    l3d_bytes_fn progress, void *progress_ctx, l3d_err *err)
{
    int rc = load(t, src, channel, verify_lidar, 1, progress, progress_ctx, err);
    if (rc == RELOAD_ALL) {
        l3d_tables_free(t);
        rc = load(t, src, channel, verify_lidar, 0, progress, progress_ctx, err);
    }
    return rc;
}

void l3d_tables_free(l3d_tables *t)
{
    free(t->scene.rows); free(t->sample.rows); free(t->sample_data.rows);
    free(t->ego_pose.rows); free(t->calib.rows); free(t->sensor.rows);
    free(t->ann.rows); free(t->instance.rows); free(t->category.rows);
    free(t->ann_offsets); free(t->ann_rows);
    l3d_intern_free(&t->str);
    memset(t, 0, sizeof *t);
}
