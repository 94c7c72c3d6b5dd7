#include "tools/lyft-synth/dataset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/geometry.h"
#include "tools/lyft-synth/classes.h"
#include "tools/lyft-synth/rng.h"

#define DEG (3.14159265358979323846 / 180)
#define FIRST_SCENE_S 1546819200LL   /* 2019-01-07 00:00 UTC */
#define PERIOD_Q 800000              /* 0.2 s in quarter µs */

/* Lyft train hosts, weighted by their number of train logs. */
static const struct { const char *name; double weight; } hosts[SYN_NHOSTS] = {
    {"a004", 42}, {"a005", 1}, {"a006", 3}, {"a007", 26}, {"a008", 5}, {"a009", 9},
    {"a011", 51}, {"a012", 2}, {"a015", 6}, {"a017", 3}, {"a101", 20}, {"a102", 12},
};

const char *syn_host_name(int host) { return hosts[host].name; }

void syn_token(char out[65], uint64_t seed, int tag, uint64_t index)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t x = syn_hash3(seed, (uint64_t)tag, index);
    int words = tag == SYN_TAG_MAP ? 2 : 4;
    for (int w = 0; w < words; w++) {
        uint64_t v = syn_mix64(x + (uint64_t)w * 0x632BE59BD9B4E019ull);
        for (int i = 0; i < 16; i++)
            out[16 * w + i] = hex[(v >> (60 - 4 * i)) & 15];
    }
    out[16 * words] = 0;
}

static int64_t gps_ns(int64_t q) { return q * 250 - SYN_GPS_EPOCH_US * 1000; }

void syn_lidar_filename(const syn_dataset *d, uint32_t sample, char *buf, size_t n)
{
    const syn_sample *s = &d->samples[sample];
    snprintf(buf, n, "train_lidar/host-%s_lidar1_%lld.bin",
             hosts[d->scenes[s->scene].host].name, (long long)gps_ns(s->ts_q));
}

void syn_yaw_quat(double yaw, double q[4])
{
    q[0] = cos(yaw / 2);
    q[1] = q[2] = 0;
    q[3] = sin(yaw / 2);
}

/* LIDAR_TOP mounting of a host: about 1.2 m ahead of and 1.85 m above the ego
 * origin, yawed 180 degrees (+-3) and tilted by up to 1.5 degrees. */
static void make_calib(syn_calib *c, uint64_t seed, int host)
{
    syn_rng g;
    syn_rng_init(&g, seed, SYN_TAG_HOST, (uint64_t)host);
    c->used = 1;
    c->t[0] = 1.197 + syn_range(&g, -0.05, 0.05);
    c->t[1] = syn_range(&g, -0.02, 0.02);
    c->t[2] = 1.83 + syn_range(&g, -0.04, 0.08);
    double yaw = 180 * DEG + syn_range(&g, -3, 3) * DEG;
    double pitch = syn_range(&g, -1.5, 1.5) * DEG, roll = syn_range(&g, -1.5, 1.5) * DEG;
    double qz[4], qy[4] = {cos(pitch / 2), 0, sin(pitch / 2), 0},
                  qx[4] = {cos(roll / 2), sin(roll / 2), 0, 0}, t[4];
    syn_yaw_quat(yaw, qz);
    l3d_quat_mul(qz, qy, t);
    l3d_quat_mul(t, qx, c->q);
}

static int push_ann(syn_dataset *d, const syn_ann *a)
{
    if (d->n_ann == d->cap_ann) {
        if (d->cap_ann > UINT32_MAX / 2)
            return L3D_EINTERNAL;
        uint32_t nc = d->cap_ann ? 2 * d->cap_ann : 4096;
        syn_ann *p = realloc(d->ann, (size_t)nc * sizeof *p);
        if (!p)
            return L3D_EINTERNAL;
        d->ann = p;
        d->cap_ann = nc;
    }
    d->ann[d->n_ann++] = *a;
    return L3D_OK;
}

/* Samples, instances and annotations of scene i (its world is built). */
static int annotate_scene(syn_dataset *d, int i)
{
    syn_scene *sc = &d->scenes[i];
    const syn_world *w = &sc->world;
    int n_obj = w->n_obj;
    uint32_t *inst_of = malloc((size_t)(n_obj ? n_obj : 1) * sizeof *inst_of);
    unsigned char *seen = calloc((size_t)(n_obj ? n_obj : 1), 1);
    if (!inst_of || !seen) {
        free(inst_of);
        free(seen);
        return L3D_EINTERNAL;
    }
    const double r2 = d->o.radius * d->o.radius;
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t k = 0; k < sc->n_samples; k++) {
            syn_sample *s = &d->samples[sc->first_sample + k];
            double ego[3], ego_yaw;
            syn_ego_pose(w, s->t, ego, &ego_yaw);
            if (pass == 1)
                s->ann_begin = d->n_ann;
            for (int j = 0; j < n_obj; j++) {
                const syn_object *o = &w->obj[j];
                double b[3], yaw;
                syn_object_pose(w, o, s->t, b, &yaw);
                double dx = b[0] - ego[0], dy = b[1] - ego[1];
                if (dx * dx + dy * dy > r2)
                    continue;
                if (pass == 0) {
                    seen[j] = 1;
                    continue;
                }
                syn_instance *in = &d->inst[inst_of[j]];
                syn_ann a = {.sample = sc->first_sample + k, .inst = inst_of[j],
                             .prev = in->n_ann ? in->last_ann : SYN_NONE, .next = SYN_NONE,
                             .num_pts = -1};
                for (int c = 0; c < 3; c++)
                    a.centre[c] = w->origin[c] + b[c];
                a.centre[2] += o->lwh[2] / 2;
                syn_yaw_quat(yaw, a.q);
                if (in->n_ann)
                    d->ann[in->last_ann].next = d->n_ann;
                else
                    in->first_ann = d->n_ann;
                in->last_ann = d->n_ann;
                in->n_ann++;
                if (push_ann(d, &a)) {
                    free(inst_of);
                    free(seen);
                    return L3D_EINTERNAL;
                }
            }
            if (pass == 1)
                s->ann_end = d->n_ann;
        }
        if (pass == 0) {   /* instances: the objects that were ever annotated */
            sc->first_inst = d->n_inst;
            for (int j = 0; j < n_obj; j++)
                if (seen[j]) {
                    inst_of[j] = d->n_inst;
                    const syn_object *o = &w->obj[j];
                    d->inst[d->n_inst++] = (syn_instance){
                        .scene = (uint32_t)i, .obj = (uint32_t)j, .cls = o->cls, .attr = o->attr,
                        .lwh = {o->lwh[0], o->lwh[1], o->lwh[2]}};
                }
            sc->n_inst = d->n_inst - sc->first_inst;
        }
    }
    free(inst_of);
    free(seen);
    return L3D_OK;
}

/* Scene timing, host, world, samples and ego poses. */
static int make_scene(syn_dataset *d, int i, int64_t *clock_s, l3d_err *err)
{
    syn_scene *sc = &d->scenes[i];
    syn_rng g;
    syn_rng_init(&g, d->o.seed, SYN_TAG_SCENE, (uint64_t)i);
    double weights[SYN_NHOSTS];
    for (int h = 0; h < SYN_NHOSTS; h++)
        weights[h] = hosts[h].weight;
    sc->host = syn_pick(&g, weights, SYN_NHOSTS);
    *clock_s += (int64_t)syn_range(&g, 1800, 72000);
    sc->t0_q = (*clock_s * 1000000 + (int64_t)syn_range(&g, 0, 1e6)) * 4 + syn_below(&g, 4);
    sc->first_sample = (uint32_t)i * (uint32_t)d->o.samples;
    sc->n_samples = (uint32_t)d->o.samples;
    double duration = (d->o.samples - 1) * 0.2;
    int rc = syn_world_build(&sc->world, d->o.seed, i, d->o.objects, duration, d->o.radius, i == 0,
                             err);
    if (rc)
        return rc;
    for (uint32_t k = 0; k < sc->n_samples; k++) {
        syn_sample *s = &d->samples[sc->first_sample + k];
        s->scene = (uint32_t)i;
        s->k = k;
        s->ts_q = sc->t0_q + (int64_t)k * PERIOD_Q + (k ? syn_below(&g, 3201) - 1600 : 0);
        s->t = (double)(s->ts_q - sc->t0_q) / 4e6;
        double pos[3], yaw;
        syn_ego_pose(&sc->world, s->t, pos, &yaw);
        for (int c = 0; c < 3; c++)
            s->ego_t[c] = sc->world.origin[c] + pos[c];
        syn_yaw_quat(yaw, s->ego_q);
    }
    snprintf(sc->name, sizeof sc->name, "host-%s-lidar0-%lld-%lld", hosts[sc->host].name,
             (long long)gps_ns(sc->t0_q),
             (long long)gps_ns(d->samples[sc->first_sample + sc->n_samples - 1].ts_q));
    if (!d->calib[sc->host].used)
        make_calib(&d->calib[sc->host], d->o.seed, sc->host);
    return L3D_OK;
}

/* Marks n samples with defect `bit` (with need_k: only samples after the first
 * of their scene), never one that already has a defect. */
static int pick_defects(syn_dataset *d, syn_rng *g, int n, int bit, int need_k)
{
    uint32_t *pool = malloc((size_t)d->n_samples * sizeof *pool + 1), m = 0;
    if (!pool)
        return L3D_EINTERNAL;
    for (uint32_t s = 0; s < d->n_samples; s++)
        if (!d->samples[s].defects && (!need_k || d->samples[s].k > 0))
            pool[m++] = s;
    for (uint32_t i = 0; i < (uint32_t)n && i < m; i++) {
        uint32_t j = i + (uint32_t)(syn_unif(g) * (m - i));
        uint32_t t = pool[i];
        pool[i] = pool[j];
        pool[j] = t;
        d->samples[pool[i]].defects |= bit;
    }
    free(pool);
    return L3D_OK;
}

static void pick_val(syn_dataset *d)
{
    int n = d->n_scenes;
    int n_val = (int)lround(n * d->o.val_fraction);
    if (d->o.val_fraction > 0 && n_val == 0 && n >= 2)
        n_val = 1;
    if (n_val >= n && n >= 2)
        n_val = n - 1;
    syn_rng g;
    syn_rng_init(&g, d->o.seed, SYN_TAG_SPLIT, 0);
    for (int i = 0; i < n_val; i++) {   /* Floyd's sampling of n_val distinct scenes */
        int j = n - n_val + i, r = syn_below(&g, j + 1);
        d->scenes[d->scenes[r].val ? j : r].val = 1;
    }
}

int syn_dataset_build(syn_dataset *d, const syn_opts *o, void (*progress)(void *, double),
                      void *ctx, l3d_err *err)
{
    memset(d, 0, sizeof *d);
    d->o = *o;
    d->n_scenes = o->scenes;
    d->n_samples = (uint32_t)o->scenes * (uint32_t)o->samples;
    d->scenes = calloc((size_t)o->scenes, sizeof *d->scenes);
    d->samples = calloc(d->n_samples, sizeof *d->samples);
    d->inst = calloc((size_t)o->scenes * (size_t)(o->objects ? o->objects : 1), sizeof *d->inst);
    if (!d->scenes || !d->samples || !d->inst)
        return l3d_fail(err, L3D_EINTERNAL, "out of memory for %d scenes", o->scenes);
    int64_t clock_s = FIRST_SCENE_S;
    for (int i = 0; i < d->n_scenes; i++) {
        int rc = make_scene(d, i, &clock_s, err);
        if (rc)
            return rc;
        if (annotate_scene(d, i))
            return l3d_fail(err, L3D_EINTERNAL, "out of memory after %u annotations", d->n_ann);
        if (o->tables_only)   /* the worlds are only needed for scans */
            syn_world_free(&d->scenes[i].world);
        if (progress)
            progress(ctx, i + 1);
    }
    syn_rng g;
    syn_rng_init(&g, o->seed, SYN_TAG_DEFECTS, 0);
    if (pick_defects(d, &g, o->missing_bin, SYN_DEFECT_MISSING, 0) ||
        pick_defects(d, &g, o->corrupt_bin, SYN_DEFECT_CORRUPT, 0) ||
        pick_defects(d, &g, o->dangling_prev, SYN_DEFECT_DANGLING, 1))
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    pick_val(d);
    return L3D_OK;
}

void syn_dataset_free(syn_dataset *d)
{
    for (int i = 0; d->scenes && i < d->n_scenes; i++)
        syn_world_free(&d->scenes[i].world);
    free(d->scenes);
    free(d->samples);
    free(d->inst);
    free(d->ann);
    memset(d, 0, sizeof *d);
}
