/* train_step: time of one full SSN optimizer step on the CPU (forward, targets,
 * losses, backward, loss-scale check, clip, AdamW), per step, on a deterministic
 * synthetic batch; the peer is bench/torch_step.py (same model in PyTorch), and
 * bench/train-speed.sh runs both side by side.
 *
 *   build/bench/train_step [--config small|lyft|FILE] [--set KEY=VALUE]... [--batch 2]
 *       [--pillars N] [--boxes G] [--steps K] [--warmup W] [--precision fp32|amp|fp16]
 *       [--threads T] [--seed S] [--dump-inputs FILE]
 *
 * Input (a function of the seed, the config and N, G alone): per sample, N distinct
 * pillar cells drawn uniformly from the canvas (at most max_voxels and the canvas
 * size), each with 1..max_points points (uniform) inside its cell, z in [-2.5, 1) m,
 * time lag k·0.05 s (k in 0..9), unused slots zero, coords (b, 0, y, x); and G boxes
 * (default 10) cycling through the nine classes (car first, then the rest in SSN
 * order), class size x U(0.9, 1.1), class anchor bottom z, centre within the range
 * less 4 m, yaw in [-pi, pi). Weights: the trainer's initialisation (spec §10.4)
 * from the seed.
 *
 * --dump-inputs FILE writes that batch and the initial state to HDF5 and exits
 * without timing (bench/torch_step.py reads it, so both sides run the same numbers):
 *   attrs        format "lidar3d-train-step-inputs", version 1, config (every key as
 *                l3d_config_print writes it), batch, pillars, seed, precision
 *   voxels       f32 [M][max_points][4];  num_points i32 [M];  coords i32 [M][4]
 *   boxes        f32 [B][G][7] (bottom z);  labels i32 [B][G]
 *   weights/NAME f32, every learnable tensor (our names = the PyTorch module paths)
 *   bn/NAME      f32, every BatchNorm running statistic
 *
 * The step is l3d_trainer_step's (trainer/trainer.c) without the loader: the batch
 * is already in memory, so data time is excluded on both sides. W untimed steps
 * (default 2), then K timed ones (default 10). Per step it prints wall ms, CPU ms
 * (CLOCK_PROCESS_CPUTIME_ID, all threads) and the wall ms of each phase; at the end
 * one line
 *   RESULT tool=ours precision=P threads=T batch=B pillars=M steps=K
 *          wall_ms_median=.. wall_ms_min=.. cpu_ms_median=.. cpu_ms_min=..
 *          peak_rss_mb=.. base_rss_mb=.. loss0=.. grad_norm0=.. skipped=..
 *          fwd_ms=.. tgt_ms=.. loss_ms=.. bwd_ms=.. opt_ms=..   (phase medians)
 * peak_rss_mb is getrusage's ru_maxrss at the end; base_rss_mb the same before the
 * model was built. loss0 / grad_norm0 are those of the first (warm-up) step, to
 * compare with the peer's from the same inputs and weights.
 * Exit status 2 on usage errors, 1 on other failures. */
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "kernels/cpu/ssn_losses.h"
#include "kernels/cpu/threads.h"
#include "trainer/assign.h"
#include "trainer/config.h"
#include "trainer/loss_scaler.h"
#include "trainer/model.h"
#include "trainer/optim.h"
#include "trainer/trainer.h"
#include "trainer/params.h"
#include "trainer/rng.h"

#define MAX_SETS 32
#define MAX_BATCH 64

static const char *usage_text =
    "usage: train_step [--config small|lyft|FILE] [--set KEY=VALUE]... [--batch B]\n"
    "                  [--pillars N] [--boxes G] [--steps K] [--warmup W]\n"
    "                  [--precision fp32|amp|fp16] [--threads T] [--seed S]\n"
    "                  [--dump-inputs FILE]\n";

static void usage(const char *msg)
{
    if (msg)
        fprintf(stderr, "train_step: %s\n", msg);
    fputs(usage_text, stderr);
    exit(2);
}

static double now_ms(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;   /* KiB on Linux */
}

static void *xmalloc(size_t n)
{
    void *p = calloc(n ? n : 1, 1);
    if (!p) {
        fprintf(stderr, "train_step: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static long parse_long(const char *opt, const char *s, long lo)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s needs an integer >= %ld", opt, lo);
        usage(msg);
    }
    return v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    double *s = xmalloc((size_t)n * sizeof *s);
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double r = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return r;
}

static double minimum(const double *v, int n)
{
    double r = v[0];
    for (int i = 1; i < n; i++)
        if (v[i] < r)
            r = v[i];
    return r;
}

/* ---- the synthetic batch ----------------------------------------------------- */

typedef struct batch {
    int B, G, P;
    int64_t M;
    float *voxels;        /* [M][P][4] */
    int32_t *num_points;  /* [M] */
    int32_t *coords;      /* [M][4] */
    float *boxes;         /* [B][G][7] */
    int32_t *labels;      /* [B][G] */
} batch;

static void make_batch(batch *bt, const l3d_model *m, int B, int64_t pillars, int G, uint64_t seed)
{
    const l3d_config *c = &m->cfg;
    int P = c->max_points, nx = m->nx, ny = m->ny;
    int64_t cells = (int64_t)nx * ny;
    int64_t per = pillars;
    if (per > c->max_voxels) per = c->max_voxels;
    if (per > cells) per = cells;
    bt->B = B;
    bt->G = G;
    bt->P = P;
    bt->M = per * B;
    bt->voxels = xmalloc((size_t)bt->M * P * 4 * sizeof(float));
    bt->num_points = xmalloc((size_t)bt->M * sizeof(int32_t));
    bt->coords = xmalloc((size_t)bt->M * 4 * sizeof(int32_t));
    bt->boxes = xmalloc((size_t)B * G * 7 * sizeof(float));
    bt->labels = xmalloc((size_t)B * G * sizeof(int32_t));
    int64_t *perm = xmalloc((size_t)cells * sizeof(int64_t));
    l3d_rng rng;
    l3d_rng_seed(&rng, seed);
    double x0 = c->point_cloud_range[0], y0 = c->point_cloud_range[1];
    double vx = c->voxel_size[0], vy = c->voxel_size[1];
    /* class order of the boxes: car first, then every class in SSN order */
    static const int cycle[] = {4, 2, 0, 1, 3, 5, 6, 7, 8, 4};
    int ncycle = (int)(sizeof cycle / sizeof *cycle);
    for (int b = 0; b < B; b++) {
        l3d_rng_permutation(&rng, perm, cells);
        for (int64_t i = 0; i < per; i++) {
            int64_t v = (int64_t)b * per + i, cell = perm[i];
            int ix = (int)(cell % nx), iy = (int)(cell / nx);
            int n = 1 + (int)l3d_rng_below(&rng, (uint64_t)P);
            bt->num_points[v] = n;
            int32_t *cc = bt->coords + 4 * v;
            cc[0] = b; cc[1] = 0; cc[2] = iy; cc[3] = ix;
            float *pt = bt->voxels + (size_t)v * P * 4;
            for (int k = 0; k < n; k++) {
                pt[4 * k + 0] = (float)(x0 + (ix + l3d_rng_uniform(&rng)) * vx);
                pt[4 * k + 1] = (float)(y0 + (iy + l3d_rng_uniform(&rng)) * vy);
                pt[4 * k + 2] = (float)l3d_rng_range(&rng, -2.5, 1.0);
                pt[4 * k + 3] = 0.05f * (float)l3d_rng_below(&rng, 10);
            }
        }
        double xlo = c->point_cloud_range[0] + 4, xhi = c->point_cloud_range[3] - 4;
        double ylo = c->point_cloud_range[1] + 4, yhi = c->point_cloud_range[4] - 4;
        for (int g = 0; g < G; g++) {
            int k = cycle[g % ncycle];
            const l3d_anchor_class *ac = &m->layout.cls[k];
            float *bx = bt->boxes + ((size_t)b * G + g) * 7;
            bx[0] = (float)l3d_rng_range(&rng, xlo, xhi);
            bx[1] = (float)l3d_rng_range(&rng, ylo, yhi);
            bx[2] = ac->z;
            for (int a = 0; a < 3; a++)
                bx[3 + a] = ac->size[a] * (float)l3d_rng_range(&rng, 0.9, 1.1);
            bx[6] = (float)l3d_rng_range(&rng, -M_PI, M_PI);
            bt->labels[(size_t)b * G + g] = k;
        }
    }
    free(perm);
}

static void free_batch(batch *bt)
{
    free(bt->voxels); free(bt->num_points); free(bt->coords); free(bt->boxes); free(bt->labels);
}

/* ---- HDF5 dump ------------------------------------------------------------------ */

static int put(hid_t f, const char *name, hid_t ftype, hid_t mtype, int rank,
               const hsize_t *dims, const void *data)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, name, ftype, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    int rc = d < 0 || H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0;
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    H5Pclose(lcpl);
    if (rc)
        fprintf(stderr, "train_step: cannot write dataset %s\n", name);
    return rc;
}

static int put_f32(hid_t f, const char *name, int rank, const hsize_t *dims, const float *data)
{
    return put(f, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, rank, dims, data);
}

static int put_i32(hid_t f, const char *name, int rank, const hsize_t *dims, const int32_t *data)
{
    return put(f, name, H5T_STD_I32LE, H5T_NATIVE_INT32, rank, dims, data);
}

static int attr_str(hid_t f, const char *name, const char *s)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(s) + 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, t, s) < 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return rc;
}

static int attr_i64(hid_t f, const char *name, int64_t v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, H5T_NATIVE_INT64, &v) < 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return rc;
}

static int put_table(hid_t f, const char *group, const l3d_table *t, const float *arena)
{
    for (int i = 0; i < t->n; i++) {
        const l3d_tensor_info *ti = &t->t[i];
        char name[L3D_TENSOR_NAME_MAX + 32];
        hsize_t dims[L3D_TENSOR_MAX_DIMS];
        for (int d = 0; d < ti->ndim; d++)
            dims[d] = (hsize_t)ti->shape[d];
        snprintf(name, sizeof name, "%s/%s", group, ti->name);
        if (put_f32(f, name, ti->ndim, dims, arena + ti->offset))
            return 1;
    }
    return 0;
}

static int dump_inputs(const char *path, const batch *bt, const l3d_model *m, int64_t pillars,
                       uint64_t seed, const char *precision)
{
    char *cfgtext = NULL;
    size_t cfglen = 0;
    FILE *mem = open_memstream(&cfgtext, &cfglen);
    if (!mem)
        return 1;
    l3d_config_print(&m->cfg, mem);
    fclose(mem);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "train_step: cannot create %s\n", path);
        free(cfgtext);
        return 1;
    }
    int rc = attr_str(f, "format", "lidar3d-train-step-inputs") || attr_i64(f, "version", 1) ||
             attr_str(f, "config", cfgtext) || attr_i64(f, "batch", bt->B) ||
             attr_i64(f, "pillars", pillars) || attr_i64(f, "seed", (int64_t)seed) ||
             attr_str(f, "precision", precision);
    hsize_t dv[3] = {(hsize_t)bt->M, (hsize_t)bt->P, 4}, dn[1] = {(hsize_t)bt->M},
            dc[2] = {(hsize_t)bt->M, 4}, db[3] = {(hsize_t)bt->B, (hsize_t)bt->G, 7},
            dl[2] = {(hsize_t)bt->B, (hsize_t)bt->G};
    rc = rc || put_f32(f, "voxels", 3, dv, bt->voxels) ||
         put_i32(f, "num_points", 1, dn, bt->num_points) || put_i32(f, "coords", 2, dc, bt->coords) ||
         put_f32(f, "boxes", 3, db, bt->boxes) || put_i32(f, "labels", 2, dl, bt->labels) ||
         put_table(f, "weights", &m->P.layout, m->P.param) ||
         put_table(f, "bn", &m->P.bn_layout, m->P.bn);
    if (H5Fclose(f) < 0)
        rc = 1;
    free(cfgtext);
    return rc;
}

/* ---- the step -------------------------------------------------------------------- */

typedef struct stepper {
    l3d_config cfg;
    int precision, B;
    l3d_model m;
    float *anchors;
    l3d_ssn_targets t;
    float *dcls, *dreg, *ddir;
    l3d_adamw opt;
    l3d_lr_schedule sched;
    l3d_loss_scaler scaler;
    int64_t step;
} stepper;

typedef struct step_out {
    double loss, grad_norm, scale;
    int skipped;
    int64_t positives;
    double ph[5];   /* wall ms: forward, targets, losses, backward, clip + AdamW */
} step_out;

static void stepper_open(stepper *S, const l3d_config *cfg, int B, int precision)
{
    memset(S, 0, sizeof *S);
    S->cfg = *cfg;
    S->cfg.batch = B;
    S->B = B;
    S->precision = precision;
    l3d_err err = {0};
    if (l3d_model_build(&S->m, &S->cfg, B, precision, &err)) {
        fprintf(stderr, "train_step: %s\n", err.msg);
        exit(1);
    }
    int64_t N = S->m.N, R = (int64_t)B * N;
    int C = S->m.layout.num_classes;
    S->anchors = xmalloc((size_t)N * 7 * sizeof(float));
    if (l3d_ssn_targets_alloc(&S->t, R)) {
        fprintf(stderr, "train_step: out of memory\n");
        exit(1);
    }
    S->dcls = xmalloc((size_t)R * C * sizeof(float));
    S->dreg = xmalloc((size_t)R * 7 * sizeof(float));
    S->ddir = xmalloc((size_t)R * 2 * sizeof(float));
    l3d_anchors_generate(&S->m.layout, S->anchors);
    l3d_rng init;
    l3d_rng_seed(&init, (uint64_t)S->cfg.seed * 2);
    l3d_model_init(&S->m, &init);
    if (S->m.P.master)
        memcpy(S->m.P.master, S->m.P.param, S->m.P.layout.numel * sizeof(float));
    l3d_optim_from_config(cfg, 1000, &S->opt, &S->sched, &S->scaler);
}

static void stepper_close(stepper *S)
{
    l3d_model_free(&S->m);
    free(S->anchors);
    l3d_ssn_targets_free(&S->t);
    free(S->dcls); free(S->dreg); free(S->ddir);
}

static void scale_grads(float *g, size_t n, float s)
{
    if (s != 1.0f)
        for (size_t i = 0; i < n; i++)
            g[i] *= s;
}

/* l3d_trainer_step with accum 1 and the batch in memory. */
static void stepper_step(stepper *S, const batch *bt, step_out *o)
{
    memset(o, 0, sizeof *o);
    l3d_model *m = &S->m;
    int B = S->B, C = m->layout.num_classes;
    int64_t N = m->N, R = (int64_t)B * N;
    double scale = S->precision == L3D_FP32 ? 1.0 : S->scaler.scale;
    double t0 = now_ms(CLOCK_MONOTONIC), t1;
    l3d_params_zero_grad(&m->P);
    l3d_pillars in = {bt->M, bt->voxels, bt->num_points, bt->coords};
    if (l3d_model_forward(m, &in, 1)) {
        fprintf(stderr, "train_step: a pillar lies outside the canvas\n");
        exit(1);
    }
    t1 = now_ms(CLOCK_MONOTONIC); o->ph[0] = t1 - t0; t0 = t1;
    int64_t P[MAX_BATCH];
    for (int b = 0; b < B; b++) {
        l3d_ssn_targets tb = l3d_ssn_targets_at(&S->t, (int64_t)b * N);
        P[b] = l3d_assign_targets(&m->layout, S->anchors, bt->boxes + (size_t)7 * b * bt->G,
                                  bt->labels + (size_t)b * bt->G, bt->G, &tb);
        if (P[b] < 0) {
            fprintf(stderr, "train_step: out of memory in the assigner\n");
            exit(1);
        }
        o->positives += P[b];
    }
    double ntp = (double)l3d_num_total_pos(P, B);
    t1 = now_ms(CLOCK_MONOTONIC); o->ph[1] = t1 - t0; t0 = t1;
    l3d_ssn_loss L = l3d_ssn_loss_forward(m->cls, m->reg, m->dir, R, C, &S->t, ntp);
    l3d_ssn_loss_backward(m->cls, m->reg, m->dir, R, C, &S->t, ntp, S->dcls, S->dreg, S->ddir);
    float s = (float)scale;
    scale_grads(S->dcls, (size_t)R * C, s);
    scale_grads(S->dreg, (size_t)R * 7, s);
    scale_grads(S->ddir, (size_t)R * 2, s);
    o->loss = L.total;
    t1 = now_ms(CLOCK_MONOTONIC); o->ph[2] = t1 - t0; t0 = t1;
    l3d_model_backward(m, S->dcls, S->dreg, S->ddir);
    t1 = now_ms(CLOCK_MONOTONIC); o->ph[3] = t1 - t0; t0 = t1;
    o->scale = scale;
    if (S->precision != L3D_FP32) {
        char ev_log[160];
        int ev = l3d_scaler_unscale_update(&S->scaler, m->P.grad, m->P.layout.numel, ev_log,
                                           sizeof ev_log);
        if (l3d_scaler_skipped(ev)) {
            o->skipped = 1;
            l3d_params_zero_grad(&m->P);
        }
    }
    double lr = l3d_lr_at(&S->sched, S->step);
    if (!o->skipped) {
        o->grad_norm = S->cfg.grad_clip > 0 ? l3d_params_clip_grad_norm(&m->P, S->cfg.grad_clip)
                                            : l3d_grad_norm(m->P.grad, m->P.layout.numel);
        l3d_adamw_step(&S->opt, lr, &m->P);
        l3d_model_refresh_weights(m);
    }
    S->step++;
    t1 = now_ms(CLOCK_MONOTONIC); o->ph[4] = t1 - t0;
}

/* ---- main -------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    const char *config = "small", *dump = NULL, *prec_name = "fp32";
    const char *sets[MAX_SETS];
    int n_sets = 0, B = 2, G = 10, steps = 10, warmup = 2, threads = 0;
    long pillars = 10000;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (i + 1 >= argc)
            usage("every option takes a value");
        const char *v = argv[++i];
        if (!strcmp(a, "--config")) config = v;
        else if (!strcmp(a, "--set")) {
            if (n_sets == MAX_SETS) usage("too many --set");
            sets[n_sets++] = v;
        } else if (!strcmp(a, "--batch")) B = (int)parse_long(a, v, 1);
        else if (!strcmp(a, "--pillars")) pillars = parse_long(a, v, 1);
        else if (!strcmp(a, "--boxes")) G = (int)parse_long(a, v, 1);
        else if (!strcmp(a, "--steps")) steps = (int)parse_long(a, v, 1);
        else if (!strcmp(a, "--warmup")) warmup = (int)parse_long(a, v, 0);
        else if (!strcmp(a, "--threads")) threads = (int)parse_long(a, v, 1);
        else if (!strcmp(a, "--seed")) seed = (uint64_t)parse_long(a, v, 0);
        else if (!strcmp(a, "--precision")) prec_name = v;
        else if (!strcmp(a, "--dump-inputs")) dump = v;
        else usage("unknown option");
    }
    if (B > MAX_BATCH)
        usage("--batch is at most 64");
    int precision;
    if (!strcmp(prec_name, "fp32")) precision = L3D_FP32;
    else if (!strcmp(prec_name, "amp")) precision = L3D_AMP;
    else if (!strcmp(prec_name, "fp16")) precision = L3D_FP16;
    else usage("--precision is fp32, amp or fp16");

    l3d_config cfg;
    l3d_err err = {0};
    int rc = (!strcmp(config, "small") || !strcmp(config, "lyft"))
                 ? l3d_config_preset(&cfg, config, &err)
                 : (l3d_config_preset(&cfg, "lyft", &err) || l3d_config_load(&cfg, config, &err));
    for (int i = 0; !rc && i < n_sets; i++)
        rc = l3d_config_set(&cfg, sets[i], "--set", &err);
    if (rc) {
        fprintf(stderr, "train_step: %s\n", err.msg);
        return 2;
    }
    cfg.batch = B;
    cfg.accum = 1;
    if (threads)
        l3d_set_threads(threads);

    double base_rss = peak_rss_mb();
    stepper S;
    stepper_open(&S, &cfg, B, precision);
    batch bt;
    make_batch(&bt, &S.m, B, pillars, G, seed);
    if (dump) {
        rc = dump_inputs(dump, &bt, &S.m, pillars, seed, prec_name);
        if (!rc)
            printf("train_step: wrote %s (%lld pillars, %d boxes per sample, %zu parameters)\n",
                   dump, (long long)bt.M, G, l3d_table_count(&S.m.P.layout));
        free_batch(&bt);
        stepper_close(&S);
        return rc ? 1 : 0;
    }

    printf("train_step: config %s, batch %d, %lld pillars (%lld per sample) of %d points max, "
           "%d boxes per sample, canvas %dx%d, %lld anchors per sample, %zu parameters, "
           "precision %s, BLAS threads %d\n",
           config, B, (long long)bt.M, (long long)(bt.M / B), cfg.max_points, G, S.m.nx,
           S.m.ny, (long long)S.m.N, l3d_table_count(&S.m.P.layout), prec_name,
           l3d_get_threads());
    double *wall = xmalloc((size_t)steps * sizeof *wall), *cpu = xmalloc((size_t)steps * sizeof *cpu);
    double *ph[5];
    for (int p = 0; p < 5; p++)
        ph[p] = xmalloc((size_t)steps * sizeof *ph[p]);
    double loss0 = 0, norm0 = 0;
    int skipped = 0;
    for (int i = 0; i < warmup + steps; i++) {
        step_out o;
        double w0 = now_ms(CLOCK_MONOTONIC), c0 = now_ms(CLOCK_PROCESS_CPUTIME_ID);
        stepper_step(&S, &bt, &o);
        double w = now_ms(CLOCK_MONOTONIC) - w0, c = now_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
        if (i == 0) {
            loss0 = o.loss;
            norm0 = o.grad_norm;
        }
        int k = i - warmup;
        if (k >= 0) {
            wall[k] = w;
            cpu[k] = c;
            for (int p = 0; p < 5; p++)
                ph[p][k] = o.ph[p];
            skipped += o.skipped;
        }
        printf("step %2d%s: wall %8.1f ms  cpu %8.1f ms  [fwd %.1f tgt %.1f loss %.1f bwd %.1f "
               "opt %.1f]  loss %.6f  grad_norm %.4f  positives %lld%s\n",
               i, k < 0 ? " (warm-up)" : "", w, c, o.ph[0], o.ph[1], o.ph[2], o.ph[3], o.ph[4],
               o.loss, o.grad_norm, (long long)o.positives, o.skipped ? "  SKIPPED (overflow)" : "");
        fflush(stdout);
    }
    printf("RESULT tool=ours precision=%s threads=%d batch=%d pillars=%lld steps=%d "
           "wall_ms_median=%.2f wall_ms_min=%.2f cpu_ms_median=%.2f cpu_ms_min=%.2f "
           "peak_rss_mb=%.1f base_rss_mb=%.1f loss0=%.6f grad_norm0=%.6f skipped=%d "
           "fwd_ms=%.2f tgt_ms=%.2f loss_ms=%.2f bwd_ms=%.2f opt_ms=%.2f\n",
           prec_name, l3d_get_threads(), B, (long long)bt.M, steps, median(wall, steps),
           minimum(wall, steps), median(cpu, steps), minimum(cpu, steps), peak_rss_mb(), base_rss,
           loss0, norm0, skipped, median(ph[0], steps), median(ph[1], steps),
           median(ph[2], steps), median(ph[3], steps), median(ph[4], steps));
    free(wall);
    free(cpu);
    for (int p = 0; p < 5; p++)
        free(ph[p]);
    free_batch(&bt);
    stepper_close(&S);
    return 0;
}
