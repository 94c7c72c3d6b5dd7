#include "trainer/loader.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trainer/augment.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int finish_open(l3d_loader *L, const l3d_config *cfg, int batch, uint64_t seed, l3d_err *err);

static int begin(l3d_loader *L, int n_paths, const l3d_config *cfg, int augment, int batch,
                 uint64_t seed, l3d_err *err)
{
    memset(L, 0, sizeof *L);
    if (batch < 1 || batch > 64)
        return l3d_fail(err, L3D_EUSAGE, "batch %d: expected 1 to 64", batch);
    L->cfg = *cfg;
    L->augment = augment;
    L->B = batch;
    L->seed = seed;
    L->first = calloc((size_t)n_paths + 1, sizeof *L->first);
    return L->first ? L3D_OK : l3d_fail(err, L3D_EINTERNAL, "out of memory");
}

int l3d_loader_open_voxels(l3d_loader *L, char *const *paths, int n_paths, const l3d_config *cfg,
                           int augment, int batch, uint64_t seed, l3d_err *err)
{
    int rc = begin(L, n_paths, cfg, augment, batch, seed, err);
    if (rc)
        return rc;
    L->vcaches = calloc((size_t)n_paths, sizeof *L->vcaches);
    if (!L->vcaches)
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    for (int i = 0; i < n_paths; i++) {
        l3d_voxel_cache *v = &L->vcaches[i];
        if ((rc = l3d_voxel_cache_open(v, paths[i], 0, err))) {
            l3d_loader_close(L);
            return rc;
        }
        L->n_caches++;
        L->first[i + 1] = L->first[i] + v->n_samples;
        int same = v->sweeps == cfg->sweeps && v->cfg.max_points == cfg->max_points &&
                   v->cfg.max_voxels == cfg->max_voxels;
        for (int a = 0; a < 6; a++)
            same &= v->cfg.range[a] == (float)cfg->point_cloud_range[a];
        for (int a = 0; a < 3; a++)
            same &= v->cfg.size[a] == (float)cfg->voxel_size[a];
        if (!same) {
            l3d_loader_close(L);
            return l3d_fail(err, L3D_EUSAGE, "%s: made for other sweeps or voxelization settings "
                            "than the training config (rebuild it with voxel-cache --sweeps %d "
                            "and the config's range, voxel size and caps)", paths[i], cfg->sweeps);
        }
    }
    return finish_open(L, cfg, batch, seed, err);
}

int l3d_loader_open(l3d_loader *L, char *const *paths, int n_paths, const l3d_config *cfg,
                    int augment, int batch, uint64_t seed, l3d_err *err)
{
    int rc0 = begin(L, n_paths, cfg, augment, batch, seed, err);
    if (rc0)
        return rc0;
    L->caches = calloc((size_t)n_paths, sizeof *L->caches);
    if (!L->caches)
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    for (int i = 0; i < n_paths; i++) {
        int rc = l3d_sweep_cache_open(&L->caches[i], paths[i], 0, err);
        if (rc) {
            l3d_loader_close(L);
            return rc;
        }
        L->n_caches++;
        L->first[i + 1] = L->first[i] + L->caches[i].n_samples;
    }
    return finish_open(L, cfg, batch, seed, err);
}

/* What both kinds of input share, once the caches are open. */
static int finish_open(l3d_loader *L, const l3d_config *cfg, int batch, uint64_t seed, l3d_err *err)
{
    L->n_samples = L->first[L->n_caches];
    if (L->n_samples == 0) {
        l3d_loader_close(L);
        return l3d_fail(err, L3D_EINPUT, "the caches hold no samples");
    }
    l3d_voxel_config vc;
    for (int a = 0; a < 6; a++) vc.range[a] = (float)cfg->point_cloud_range[a];
    for (int a = 0; a < 3; a++) vc.size[a] = (float)cfg->voxel_size[a];
    vc.max_points = cfg->max_points;
    vc.max_voxels = cfg->max_voxels;
    const char *why = NULL;
    if (l3d_voxelizer_init(&L->vox, &vc, &why)) {
        l3d_loader_close(L);
        return l3d_fail(err, L3D_EUSAGE, "voxelization config: %s", why ? why : "invalid");
    }
    size_t V = (size_t)batch * cfg->max_voxels;
    L->voxels = malloc(V * cfg->max_points * 4 * sizeof(float));
    L->coords = malloc(V * 4 * sizeof(int32_t));
    L->num_points = malloc(V * sizeof(int32_t));
    L->perm = malloc((size_t)L->n_samples * sizeof *L->perm);
    if (!L->voxels || !L->coords || !L->num_points || !L->perm) {
        l3d_loader_close(L);
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    }
    l3d_rng_seed(&L->rng, seed);
    l3d_loader_pos p = {0};
    l3d_rng_save(&L->rng, p.rng);
    return l3d_loader_set_pos(L, &p, err);
}

void l3d_loader_close(l3d_loader *L)
{
    for (int i = 0; i < L->n_caches; i++) {
        if (L->caches)
            l3d_sweep_cache_close(&L->caches[i]);
        if (L->vcaches)
            l3d_voxel_cache_close(&L->vcaches[i]);
    }
    free(L->caches);
    free(L->vcaches);
    free(L->first);
    if (L->vox.cell_voxel)
        l3d_voxelizer_free(&L->vox);
    free(L->points); free(L->shuffled); free(L->order);
    free(L->voxels); free(L->coords); free(L->num_points);
    free(L->boxes); free(L->labels); free(L->perm);
    memset(L, 0, sizeof *L);
}

/* The permutation of an epoch depends on the seed and the epoch only. */
static void make_perm(l3d_loader *L)
{
    l3d_rng r;
    l3d_rng_seed_stream(&r, L->seed, (unsigned)(L->at.epoch + 1));
    if (L->augment)
        l3d_rng_permutation(&r, L->perm, L->n_samples);
    else
        for (int64_t i = 0; i < L->n_samples; i++)
            L->perm[i] = i;
}

void l3d_loader_get_pos(const l3d_loader *L, l3d_loader_pos *p)
{
    *p = L->at;
    l3d_rng_save(&L->rng, p->rng);
}

int l3d_loader_set_pos(l3d_loader *L, const l3d_loader_pos *p, l3d_err *err)
{
    if (p->pos < 0 || p->pos > L->n_samples || p->epoch < 0)
        return l3d_fail(err, L3D_EINPUT, "data position epoch %lld index %lld is outside the "
                        "caches (%lld samples)", (long long)p->epoch, (long long)p->pos,
                        (long long)L->n_samples);
    L->at = *p;
    if (l3d_rng_restore(&L->rng, p->rng))
        return l3d_fail(err, L3D_EINPUT, "bad RNG state in the data position");
    make_perm(L);
    return L3D_OK;
}

static int grow_points(l3d_loader *L, int64_t n, l3d_err *err)
{
    if (n <= L->cap_points)
        return L3D_OK;
    free(L->points); free(L->shuffled); free(L->order);
    L->points = malloc((size_t)n * 4 * sizeof(float));
    L->shuffled = malloc((size_t)n * 4 * sizeof(float));
    L->order = malloc((size_t)n * sizeof(int64_t));
    L->cap_points = n;
    if (!L->points || !L->shuffled || !L->order) {
        L->cap_points = 0;
        return l3d_fail(err, L3D_EINTERNAL, "out of memory for %lld points", (long long)n);
    }
    return L3D_OK;
}

static int grow_boxes(l3d_loader *L, int64_t n, l3d_err *err)
{
    if (n <= L->cap_boxes)
        return L3D_OK;
    int64_t cap = L->cap_boxes ? 2 * L->cap_boxes : 256;
    while (cap < n)
        cap *= 2;
    float *b = realloc(L->boxes, (size_t)cap * 7 * sizeof *b);
    if (b)
        L->boxes = b;
    int32_t *l = realloc(L->labels, (size_t)cap * sizeof *l);
    if (l)
        L->labels = l;
    if (!b || !l)
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    L->cap_boxes = cap;
    return L3D_OK;
}

/* Spreads voxelizer coords (z, y, x) at base to (b, z, y, x), in place. */
static void spread_coords(int32_t *c3, int m, int b)
{
    for (int i = m - 1; i >= 0; i--) {
        int32_t z = c3[3 * i], y = c3[3 * i + 1], x = c3[3 * i + 2];
        c3[4 * i] = b;
        c3[4 * i + 1] = z;
        c3[4 * i + 2] = y;
        c3[4 * i + 3] = x;
    }
}

/* Loads global sample s into slot b of the batch; returns 1 if it has boxes
 * left after the filters (else the slot is not used), 0 if not, <0 on error. */
static int load_sample(l3d_loader *L, int64_t s, int b, l3d_err *err)
{
    int c = 0;
    while (s >= L->first[c + 1])
        c++;
    const l3d_sweep_cache *C = &L->caches[c];
    int64_t ls = s - L->first[c];
    int64_t n = l3d_sweep_cache_merged_count(C, ls, L->cfg.sweeps);
    int rc = grow_points(L, n ? n : 1, err);
    if (rc)
        return -rc;
    l3d_sweep_cache_merge(C, ls, L->cfg.sweeps, 0, L->points);
    int64_t b0 = C->box_offsets[ls], nb = C->box_offsets[ls + 1] - b0;
    if ((rc = grow_boxes(L, L->nb + nb, err)))
        return -rc;
    float *boxes = L->boxes + 7 * L->nb;
    int32_t *labels = L->labels + L->nb;
    memcpy(boxes, C->boxes + 7 * b0, (size_t)nb * 7 * sizeof *boxes);
    memcpy(labels, C->box_labels + b0, (size_t)nb * sizeof *labels);
    l3d_boxes_to_bottom(boxes, nb);
    float range[6];
    for (int a = 0; a < 6; a++)
        range[a] = (float)L->cfg.point_cloud_range[a];
    const float *pts = L->points;
    if (L->augment) {
        /* draw order of spec §1.5: rotation, scale, translation (3 zero-sd
         * normals, drawn and unused), horizontal flip, vertical flip */
        l3d_aug_draw d;
        d.rotation = (float)l3d_rng_range(&L->rng, -L->cfg.rot_range, L->cfg.rot_range);
        d.scale = (float)l3d_rng_range(&L->rng, L->cfg.scale_min, L->cfg.scale_max);
        for (int k = 0; k < 3; k++)
            (void)l3d_rng_normal(&L->rng);
        d.flip_h = l3d_rng_uniform(&L->rng) < L->cfg.flip_h;
        d.flip_v = l3d_rng_uniform(&L->rng) < L->cfg.flip_v;
        l3d_augment_apply(&d, L->points, n, 4, boxes, nb);
    }
    int64_t kept = l3d_points_range_filter(L->points, n, 4, range, L->points);
    nb = l3d_boxes_range_filter(boxes, labels, nb, range);
    if (nb == 0)
        return 0;
    if (L->augment && L->cfg.shuffle_points) {
        l3d_rng_permutation(&L->rng, L->order, kept);
        l3d_points_permute(L->points, L->order, kept, 4, L->shuffled);
        pts = L->shuffled;
    }
    int64_t P = L->cfg.max_points, base = L->m;
    int M = l3d_voxelize(&L->vox, pts, kept, 4, L->voxels + base * P * 4, L->coords + base * 4,
                         L->num_points + base);
    /* voxelizer coords are (z, y, x) with stride 3 at the same base */
    spread_coords(L->coords + base * 4, M, b);
    L->m += M;
    L->nb += nb;
    return 1;
}

/* Voxel input: the cached pillars, flipped on the grid when drawn. */
static int load_voxel_sample(l3d_loader *L, int64_t s, int b, l3d_err *err)
{
    int c = 0;
    while (s >= L->first[c + 1])
        c++;
    l3d_voxel_sample vs;
    l3d_voxel_cache_sample(&L->vcaches[c], s - L->first[c], &vs);
    int rc = grow_boxes(L, L->nb + vs.n_boxes, err);
    if (rc)
        return -rc;
    float *boxes = L->boxes + 7 * L->nb;
    int32_t *labels = L->labels + L->nb;
    memcpy(boxes, vs.boxes, (size_t)vs.n_boxes * 7 * sizeof *boxes);
    memcpy(labels, vs.labels, (size_t)vs.n_boxes * sizeof *labels);
    l3d_boxes_to_bottom(boxes, vs.n_boxes);
    int64_t P = L->cfg.max_points, base = L->m, M = vs.n_voxels;
    float *vox = L->voxels + base * P * 4;
    int32_t *c3 = L->coords + base * 4;
    memcpy(vox, vs.points, (size_t)M * P * 4 * sizeof *vox);
    memcpy(L->num_points + base, vs.num_points, (size_t)M * sizeof(int32_t));
    memcpy(c3, vs.coords, (size_t)M * 3 * sizeof(int32_t));
    if (L->augment) {
        /* the flip draws of spec §1.5, no rotation or scaling: horizontal (y), then vertical (x) */
        int flip_h = l3d_rng_uniform(&L->rng) < L->cfg.flip_h;
        int flip_v = l3d_rng_uniform(&L->rng) < L->cfg.flip_v;
        if (flip_h)
            l3d_voxels_flip(&L->vox, 1, (int)M, vox, c3, L->num_points + base, 4);
        if (flip_v)
            l3d_voxels_flip(&L->vox, 0, (int)M, vox, c3, L->num_points + base, 4);
        l3d_aug_draw d = {.rotation = 0, .scale = 1, .flip_h = flip_h, .flip_v = flip_v};
        l3d_augment_apply(&d, NULL, 0, 4, boxes, vs.n_boxes);
    }
    float range[6];
    for (int a = 0; a < 6; a++)
        range[a] = (float)L->cfg.point_cloud_range[a];
    int64_t nb = l3d_boxes_range_filter(boxes, labels, vs.n_boxes, range);
    if (nb == 0)
        return 0;
    spread_coords(c3, (int)M, b);
    L->m += M;
    L->nb += nb;
    return 1;
}

int l3d_loader_next(l3d_loader *L, l3d_err *err)
{
    double t0 = now_ms();
    L->m = 0;
    L->nb = 0;
    L->box_off[0] = 0;
    int64_t skipped = 0;
    for (int b = 0; b < L->B;) {
        if (L->at.pos >= L->n_samples) {
            L->at.epoch++;
            L->at.pos = 0;
            make_perm(L);
        }
        int64_t s = L->perm[L->at.pos++];
        int rc = L->vcaches ? load_voxel_sample(L, s, b, err) : load_sample(L, s, b, err);
        if (rc < 0)
            return -rc;
        if (rc == 0) {
            if (++skipped > L->n_samples)
                return l3d_fail(err, L3D_EINPUT, "no sample has a box inside "
                                "point_cloud_range: nothing to train on");
            continue;
        }
        L->sample[b] = s;
        L->box_off[++b] = L->nb;
    }
    L->wait_ms = now_ms() - t0;
    return L3D_OK;
}
