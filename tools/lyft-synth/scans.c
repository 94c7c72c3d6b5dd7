#include "tools/lyft-synth/scans.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "formats/geometry.h"
#include "tools/common/cli.h"
#include "tools/lyft-synth/classes.h"

int syn_scan_scene(const syn_dataset *d, uint32_t s, double max_range, double inset, rc_scene *sc,
                   double R[9])
{
    const syn_sample *smp = &d->samples[s];
    const syn_scene *scene = &d->scenes[smp->scene];
    const syn_world *w = &scene->world;
    const syn_calib *cal = &d->calib[scene->host];
    double ego[3], yaw, Re[9], Rc[9], qe[4];
    syn_ego_pose(w, smp->t, ego, &yaw);
    syn_yaw_quat(yaw, qe);
    l3d_quat_to_rot(qe, Re);
    l3d_quat_to_rot(cal->q, Rc);
    l3d_mat3_mul(Re, Rc, R);
    double o[3];
    l3d_mat3_vec(Re, cal->t, o);
    for (int c = 0; c < 3; c++)
        o[c] += ego[c];
    rc_scene_clear(sc, 0);
    for (int i = 0; i < w->n_st; i++) {
        const syn_static *st = &w->st[i];
        double reach = st->kind == SYN_BUILDING ? hypot(st->l, st->w) / 2
                                                : fmax(st->r, st->crown_r);
        if (hypot(st->x - o[0], st->y - o[1]) - reach > max_range)
            continue;
        int bad = rc_item_begin(sc, RC_STATIC);
        if (st->kind == SYN_BUILDING)
            bad = bad || rc_add_box(sc, (double[3]){st->x, st->y, 0}, st->yaw, st->l, st->w, st->h);
        else if (st->kind == SYN_POLE)
            bad = bad || rc_add_cylinder(sc, st->x, st->y, st->r, 0, st->h);
        else
            bad = bad || rc_add_cylinder(sc, st->x, st->y, st->r, 0, st->crown_z) ||
                  rc_add_cylinder(sc, st->x, st->y, st->crown_r, st->crown_z, st->h);
        if (bad)
            return L3D_EINTERNAL;
    }
    for (int j = 0; j < w->n_obj; j++) {
        const syn_object *ob = &w->obj[j];
        double b[3], oyaw;
        syn_object_pose(w, ob, smp->t, b, &oyaw);
        if (hypot(b[0] - o[0], b[1] - o[1]) - ob->lwh[0] > max_range)
            continue;
        if (rc_add_object(sc, j, ob->cls, b, oyaw, ob->lwh, inset))
            return L3D_EINTERNAL;
    }
    return rc_prepare(sc, o, max_range) ? L3D_EINTERNAL : L3D_OK;
}

/* ---- the worker pool --------------------------------------------------- */

typedef struct pool {
    syn_dataset *d;
    const syn_scan_opts *o;
    syn_sensor sensor;
    const char *root;
    volatile sig_atomic_t *stop;
    pthread_mutex_t mu;
    uint32_t next, done;        /* guarded by mu */
    uint64_t points;
    l3d_err err;                /* the first error */
    int max_obj;
} pool;

__attribute__((format(printf, 3, 4))) static void fail(pool *p, int code, const char *fmt, ...)
{
    char msg[sizeof p->err.msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&p->mu);
    if (!p->err.code)
        l3d_fail(&p->err, code, "%s", msg);
    pthread_mutex_unlock(&p->mu);
}

static int write_bin(pool *p, uint32_t s, float *pts, size_t n)
{
    int defects = p->d->samples[s].defects;
    if (defects & SYN_DEFECT_MISSING)
        return 0;
    size_t bytes = 20 * n + (defects & SYN_DEFECT_CORRUPT ? 12 : 0);   /* 3 stray floats */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; i < bytes / 4; i++) {   /* .bin files are little-endian */
        uint32_t u;
        memcpy(&u, &pts[i], 4);
        u = __builtin_bswap32(u);
        memcpy(&pts[i], &u, 4);
    }
#endif
    char rel[256], path[4096];
    syn_lidar_filename(p->d, s, rel, sizeof rel);
    snprintf(path, sizeof path, "%s/%s", p->root, rel);
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        fail(p, L3D_EIO, "cannot create '%s': %s", path, strerror(errno));
        return -1;
    }
    /* start the write-back now; flush_bins waits for it once all scans are made */
    int bad = fwrite(pts, 1, bytes, fp) != bytes || fflush(fp) != 0;
    if (!bad)
        sync_file_range(fileno(fp), 0, 0, SYNC_FILE_RANGE_WRITE);
    if (fclose(fp) != 0 || bad) {
        fail(p, L3D_EIO, "cannot write '%s': %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void *worker(void *arg)
{
    pool *p = arg;
    const syn_scan_opts *o = p->o;
    rc_scene sc;
    rc_scene_init(&sc);
    size_t cap = (size_t)o->beams * (size_t)o->steps + 1;   /* +1: room for a corrupt tail */
    float *pts = malloc(cap * 5 * sizeof *pts);
    uint32_t *hits = malloc((size_t)(p->max_obj + 1) * sizeof *hits);
    if (!pts || !hits)
        fail(p, L3D_EINTERNAL, "out of memory for scans");
    for (; pts && hits;) {
        pthread_mutex_lock(&p->mu);
        uint32_t s = p->next++;
        int quit = p->err.code || *p->stop || s >= p->d->n_samples;
        pthread_mutex_unlock(&p->mu);
        if (quit)
            break;
        double R[9];
        if (syn_scan_scene(p->d, s, o->max_range, SYN_NOISE_CLIP * o->noise_sd, &sc, R)) {
            fail(p, L3D_EINTERNAL, "out of memory for scans");
            break;
        }
        syn_rng g;
        syn_rng_init(&g, p->d->o.seed, SYN_TAG_SCAN, s);
        memset(hits, 0, (size_t)(p->max_obj + 1) * sizeof *hits);
        size_t n = syn_sensor_scan(&p->sensor, &sc, R, &g, pts, hits, p->max_obj);
        const syn_sample *smp = &p->d->samples[s];
        for (uint32_t a = smp->ann_begin; a < smp->ann_end; a++) {
            syn_ann *an = &p->d->ann[a];
            an->num_pts = (int32_t)hits[p->d->inst[an->inst].obj];
        }
        if (smp->defects & SYN_DEFECT_CORRUPT) {   /* the x, y, z of a repeated first point */
            float tail[3] = {0, 0, 0};
            if (n)
                memcpy(tail, pts, sizeof tail);
            memcpy(pts + 5 * n, tail, sizeof tail);
        }
        if (write_bin(p, s, pts, n))
            break;
        pthread_mutex_lock(&p->mu);
        p->done++;
        p->points += n;
        pthread_mutex_unlock(&p->mu);
    }
    free(pts);
    free(hits);
    rc_scene_free(&sc);
    return NULL;
}

/* Waits until every .bin written is on disk (the folder is renamed into
 * place afterwards, so it must be complete then). */
static int flush_bins(const syn_dataset *d, const char *root, l3d_err *err)
{
    for (uint32_t s = 0; s < d->n_samples; s++) {
        if (d->samples[s].defects & SYN_DEFECT_MISSING)
            continue;
        char rel[256], path[4096];
        syn_lidar_filename(d, s, rel, sizeof rel);
        snprintf(path, sizeof path, "%s/%s", root, rel);
        int fd = open(path, O_RDONLY);
        if (fd < 0 || fdatasync(fd) != 0) {
            int saved = errno;
            if (fd >= 0)
                close(fd);
            return l3d_fail(err, L3D_EIO, "cannot write '%s': %s", path, strerror(saved));
        }
        close(fd);
    }
    return L3D_OK;
}

int syn_scans_run(syn_dataset *d, const syn_scan_opts *o, const char *root,
                  volatile sig_atomic_t *stop, uint64_t *points, l3d_err *err)
{
    pool p = {.d = d, .o = o, .root = root, .stop = stop};
    for (int i = 0; i < d->n_scenes; i++)
        if (d->scenes[i].world.n_obj > p.max_obj)
            p.max_obj = d->scenes[i].world.n_obj;
    if (syn_sensor_init(&p.sensor, o->beams, o->steps, o->min_range, o->max_range, o->noise_sd))
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    pthread_mutex_init(&p.mu, NULL);
    int n_threads = o->threads < 1 ? 1 : o->threads;
    if ((uint32_t)n_threads > d->n_samples)
        n_threads = d->n_samples ? (int)d->n_samples : 1;
    pthread_t *tid = calloc((size_t)n_threads, sizeof *tid);
    int started = 0;
    for (; tid && started < n_threads; started++)
        if (pthread_create(&tid[started], NULL, worker, &p) != 0)
            break;
    if (!started) {   /* no threads at all: work here */
        worker(&p);
    }
    l3d_progress prog;
    l3d_progress_begin(&prog, "scanning", "samples", d->n_samples);
    for (;;) {
        pthread_mutex_lock(&p.mu);
        uint32_t done = p.done;
        int over = p.err.code || *stop || done >= d->n_samples;
        pthread_mutex_unlock(&p.mu);
        l3d_progress_update(&prog, done);
        if (over || !started)
            break;
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    l3d_progress_end(&prog);
    free(tid);
    pthread_mutex_destroy(&p.mu);
    syn_sensor_free(&p.sensor);
    *points = p.points;
    if (p.err.code) {
        *err = p.err;
        return err->code;
    }
    if (*stop)
        return l3d_fail(err, L3D_EINTERNAL, "interrupted");
    return flush_bins(d, root, err);
}
