#include "tools/sweep-pack/plan.h"

#include <stdlib.h>
#include <string.h>

#include "formats/index_line.h"
#include "formats/lyft_tables.h"

#define GROW(arr, n, cap, per)                                                        \
    ((n) < (cap) || grow((void **)&(arr), &(cap), (size_t)(per) * sizeof *(arr), (n)))

static int grow(void **arr, int64_t *cap, size_t elem, int64_t need)
{
    int64_t nc = *cap ? *cap * 2 : 256;
    while (nc <= need)
        nc *= 2;
    void *a = realloc(*arr, (size_t)nc * elem);
    if (!a)
        return 0;
    *arr = a;
    *cap = nc;
    return 1;
}

/* Grows every per-sample array together. */
static int grow_samples(pack_plan *p)
{
    if (p->n_samples + 1 < p->cap_samples)
        return 1;
    int64_t cap = p->cap_samples ? 2 * p->cap_samples : 256;
#define RE(a, per) do { void *x = realloc(p->a, (size_t)cap * (per) * sizeof *p->a); if (!x) return 0; p->a = x; } while (0)
    RE(sample_scans, L3D_SLOTS); RE(transforms, L3D_SLOTS * 16); RE(lags, L3D_SLOTS);
    RE(timestamps, 1); RE(scene, 1); RE(l2e, 7); RE(e2g, 7); RE(tokens, L3D_CACHE_TOKEN);
    RE(box_offsets, 1);
#undef RE
    p->cap_samples = cap;
    return 1;
}

static int root_id(pack_plan *p, const char *root)
{
    for (int i = 0; i < p->n_roots; i++)
        if (!strcmp(p->roots[i], root))
            return i;
    char **r = realloc(p->roots, (size_t)(p->n_roots + 1) * sizeof *r);
    if (!r)
        return -1;
    p->roots = r;
    if (!(p->roots[p->n_roots] = strdup(root)))
        return -1;
    return p->n_roots++;
}

static int add_scan(pack_plan *p, const char *token, const char *root, const l3d_lidar_file *f,
                    const char *name, long lineno, int32_t *out, l3d_err *err)
{
    if (f->num_points < 0)
        return l3d_fail(err, L3D_EMISSING_LIDAR, "%s: line %ld: LiDAR file '%s' was missing when "
                        "indexed (\"lidar_missing\"); re-index once it is there", name, lineno,
                        f->path);
    if (strlen(token) > L3D_CACHE_TOKEN)
        return l3d_fail(err, L3D_EINPUT, "%s: line %ld: token '%s' longer than %d characters",
                        name, lineno, token, L3D_CACHE_TOKEN);
    size_t have = l3d_strmap_get(&p->by_token, token);
    if (have) {
        *out = (int32_t)(have - 1);
        return L3D_OK;
    }
    if (!GROW(p->scans, p->n_scans, p->cap_scans, 1))
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    pack_scan *s = &p->scans[p->n_scans];
    memset(s, 0, sizeof *s);
    strcpy(s->token, token);
    s->root = root_id(p, root);
    s->path = strdup(f->path);
    s->expect_points = f->num_points;
    s->first_line = lineno;
    if (s->root < 0 || !s->path)
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    /* keys point into the scan array, which may move: key by a stable copy */
    char *key = strdup(token);
    if (!key || !l3d_strmap_put(&p->by_token, key, (size_t)p->n_scans + 1))
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    *out = (int32_t)p->n_scans++;
    return L3D_OK;
}

/* Order of first appearance of a scene name in the index (for sharding). */
static int scene_seen(pack_plan *p, const char *name, int64_t *seen, l3d_err *err)
{
    size_t v = l3d_strmap_get(&p->scene_ids, name);
    if (!v) {
        char *key = strdup(name);
        if (!key || !l3d_strmap_put(&p->scene_ids, key, (size_t)++p->n_scenes_seen))
            return l3d_fail(err, L3D_EINTERNAL, "out of memory");
        v = (size_t)p->n_scenes_seen;
    }
    *seen = (int64_t)v - 1;
    return L3D_OK;
}

/* Id of a scene among those stored (scene_names). */
static int scene_kept(pack_plan *p, const char *name, int64_t *kept, l3d_err *err)
{
    size_t v = l3d_strmap_get(&p->kept_ids, name);
    if (v) {
        *kept = (int64_t)v - 1;
        return L3D_OK;
    }
    char *key = strdup(name);
    if (!key || !GROW(p->scene_names, p->n_scenes, p->cap_scenes, L3D_CACHE_NAME) ||
        !l3d_strmap_put(&p->kept_ids, key, (size_t)p->n_scenes + 1))
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    memset(p->scene_names + p->n_scenes * L3D_CACHE_NAME, 0, L3D_CACHE_NAME);
    memcpy(p->scene_names + p->n_scenes * L3D_CACHE_NAME, name, strlen(name));
    *kept = p->n_scenes++;
    return L3D_OK;
}

static void pose7(const double t[3], const double q[4], double *o)
{
    o[0] = t[0]; o[1] = t[1]; o[2] = t[2];
    o[3] = q[0]; o[4] = q[1]; o[5] = q[2]; o[6] = q[3];
}

static int add_sample(pack_plan *p, const l3d_index_line *l, const char *name, long lineno,
                      const plan_opts *o, l3d_err *err)
{
    int64_t seen = 0, kept = 0;
    int rc = scene_seen(p, l->scene_name, &seen, err);
    if (rc)
        return rc;
    if (seen % o->shard_n != o->shard_i)
        return L3D_OK;
    if (strlen(l->scene_name) >= L3D_CACHE_NAME)
        return l3d_fail(err, L3D_EINPUT, "%s: line %ld: scene name longer than %d characters",
                        name, lineno, L3D_CACHE_NAME - 1);
    if ((rc = scene_kept(p, l->scene_name, &kept, err)))
        return rc;
    if (!grow_samples(p))
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    int64_t s = p->n_samples;
    int32_t *slots = p->sample_scans + s * L3D_SLOTS;
    double *M = p->transforms + s * L3D_SLOTS * 16;
    float *lag = p->lags + s * L3D_SLOTS;
    for (int j = 0; j < L3D_SLOTS; j++)
        slots[j] = -1;
    memset(M, 0, L3D_SLOTS * 16 * sizeof *M);
    memset(lag, 0, L3D_SLOTS * sizeof *lag);
    if ((rc = add_scan(p, l->sample_data_token, l->root, &l->lidar, name, lineno, &slots[0], err)))
        return rc;
    M[0] = M[5] = M[10] = M[15] = 1;
    for (int j = 0; j < l->n_sweeps; j++) {
        const l3d_sweep *w = &l->sweeps[j];
        double *Mj = M + (j + 1) * 16;
        if ((rc = add_scan(p, w->sample_data_token, l->root, &w->lidar, name, lineno,
                           &slots[j + 1], err)))
            return rc;
        for (int a = 0; a < 3; a++) {
            for (int b = 0; b < 3; b++)
                Mj[4 * a + b] = w->rotation[3 * a + b];
            /* MMDetection3D >= 1.1 adds Rᵀ·T instead of T (spec lyft-data.md §5.1) */
            Mj[4 * a + 3] = o->mmdet_transform
                                ? w->rotation[a] * w->translation[0] + w->rotation[3 + a] * w->translation[1] +
                                      w->rotation[6 + a] * w->translation[2]
                                : w->translation[a];
        }
        Mj[15] = 1;
        lag[j + 1] = (float)w->time_lag;
    }
    p->timestamps[s] = l->timestamp;
    p->scene[s] = (int32_t)kept;
    pose7(l->lidar2ego_translation, l->lidar2ego_rotation, p->l2e + 7 * s);
    pose7(l->ego2global_translation, l->ego2global_rotation, p->e2g + 7 * s);
    if (strlen(l->token) > L3D_CACHE_TOKEN)
        return l3d_fail(err, L3D_EINPUT, "%s: line %ld: token longer than %d characters", name,
                        lineno, L3D_CACHE_TOKEN);
    memset(p->tokens + s * L3D_CACHE_TOKEN, 0, L3D_CACHE_TOKEN);
    memcpy(p->tokens + s * L3D_CACHE_TOKEN, l->token, strlen(l->token));
    p->box_offsets[s] = p->n_boxes;
    for (size_t b = 0; b < l->n_boxes; b++) {
        int label = l3d_lyft_class_index(l->gt_names[b]);
        if (label < 0)
            return l3d_fail(err, L3D_ECATEGORY, "%s: line %ld: box %zu has unknown class '%s'",
                            name, lineno, b, l->gt_names[b]);
        if (!GROW(p->boxes, p->n_boxes, p->cap_boxes, 7) ||
            !(p->labels = realloc(p->labels, (size_t)p->cap_boxes * sizeof *p->labels)))
            return l3d_fail(err, L3D_EINTERNAL, "out of memory");
        for (int k = 0; k < 7; k++)
            p->boxes[7 * p->n_boxes + k] = (float)l->gt_boxes[7 * b + k];
        p->labels[p->n_boxes++] = label;
    }
    p->n_samples++;
    p->box_offsets[p->n_samples] = p->n_boxes;
    return L3D_OK;
}

int plan_read(pack_plan *p, FILE *in, const char *name, const plan_opts *o, l3d_err *err)
{
    memset(p, 0, sizeof *p);
    l3d_strmap_init(&p->by_token);
    l3d_strmap_init(&p->scene_ids);
    l3d_strmap_init(&p->kept_ids);
    p->index_checksum = 1469598103934665603ull;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = L3D_OK;
    l3d_index_line l;
    l3d_index_line_init(&l);
    if (!grow_samples(p))
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    p->box_offsets[0] = 0;
    while ((len = getline(&buf, &cap, in)) > 0) {
        lineno++;
        p->index_checksum = l3d_hash_bytes(buf, (size_t)len, p->index_checksum);
        if (len == 1 && buf[0] == '\n')
            continue;
        if ((rc = l3d_index_line_parse(buf, name, lineno, &l, err)) ||
            (rc = add_sample(p, &l, name, lineno, o, err)))
            break;
    }
    if (!rc && ferror(in))
        rc = l3d_fail(err, L3D_EIO, "%s: read error", name);
    if (!rc && lineno == 0)
        rc = l3d_fail(err, L3D_EINPUT, "%s: no index lines (expected lyft-index output)", name);
    free(buf);
    l3d_index_line_free(&l);
    return rc;
}

void plan_free(pack_plan *p)
{
    for (int64_t i = 0; i < p->n_scans; i++)
        free(p->scans[i].path);
    for (int i = 0; i < p->n_roots; i++)
        free(p->roots[i]);
    l3d_strmap_free_keys(&p->by_token);
    l3d_strmap_free_keys(&p->scene_ids);
    l3d_strmap_free_keys(&p->kept_ids);
    free(p->roots); free(p->scans); free(p->sample_scans); free(p->transforms); free(p->lags);
    free(p->timestamps); free(p->scene); free(p->l2e); free(p->e2g); free(p->tokens);
    free(p->scene_names); free(p->boxes); free(p->labels); free(p->box_offsets);
    memset(p, 0, sizeof *p);
}
