/* voxel-cache: sweep cache -> voxel cache (merge, range filter, hard
 * voxelization per sample; spec ssn-model.md §1.4, §1.5 step 3, §2).
 *
 * One pass: worker threads voxelize a batch of samples while the main thread
 * appends the batch before it in sample order (the writer places the rows
 * where the final contiguous datasets will be, formats/h5stream.h); the
 * output does not depend on the thread count. */
#include <getopt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/sweep_cache.h"
#include "formats/voxel_cache.h"
#include "kernels/cpu/voxelize.h"
#include "tools/common/cli.h"

static const char usage[] =
    "usage: voxel-cache [OPTIONS] SWEEP_CACHE -o VOXEL_CACHE\n"
    "       voxel-cache --print-config [--config FILE]\n"
    "\n"
    "Merges each sample's key frame and sweeps from a sweep cache (sweep-pack output),\n"
    "drops the points outside point_cloud_range (strict compares, as MMDetection3D's\n"
    "PointsRangeFilter) and hard-voxelizes the rest (first-come, deterministic) into one\n"
    "HDF5 voxel cache with the same boxes and tokens. Format: docs/voxel-cache.md.\n"
    "\n"
    "  -o, --output FILE     the cache to write (atomically)\n"
    "      --sweeps K        sweeps merged with each key frame, 0-10 (default 10)\n"
    "      --config FILE     voxelization settings, 'key = value' lines (defaults: SSN's)\n"
    "      --print-config    print the settings in effect as a config file and exit\n"
    "  -j, --threads N       worker threads (default: online CPUs, at most 16)\n"
    "      --verify          also checksum the sweep cache's points before starting\n"
    "  -q, --quiet           no summary line\n"
    "  -h, --help, --version\n"
    "\n"
    "Config keys (default): point_cloud_range (-100 -100 -5 100 100 3), voxel_size\n"
    "(0.25 0.25 8), max_points (20), max_voxels (60000).\n"
    "\n"
    "Exit codes: 0 ok, 1 internal, 2 usage, 3 I/O (unreadable input, disk full),\n"
    "12 bad input (not a sweep cache, wrong schema version, truncated, bad config).\n";

typedef struct options {
    const char *input, *output, *config;
    int sweeps, threads, quiet, verify, print_config;
} options;

static void parse_args(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'},  {"sweeps", required_argument, 0, 'k'},
        {"config", required_argument, 0, 'c'},  {"print-config", no_argument, 0, 'P'},
        {"threads", required_argument, 0, 'j'}, {"verify", no_argument, 0, 'V'},
        {"quiet", no_argument, 0, 'q'},         {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'v'},       {0, 0, 0, 0},
    };
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    *o = (options){.sweeps = 10, .threads = cpus < 1 ? 1 : cpus > 16 ? 16 : (int)cpus};
    int c;
    char *end;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:j:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': o->output = optarg; break;
        case 'k':
            o->sweeps = (int)strtol(optarg, &end, 10);
            if (*end || end == optarg || o->sweeps < 0 || o->sweeps > 10)
                l3d_die(L3D_EUSAGE, "--sweeps '%s': expected a number from 0 to 10", optarg);
            break;
        case 'c': o->config = optarg; break;
        case 'P': o->print_config = 1; break;
        case 'j':
            o->threads = (int)strtol(optarg, &end, 10);
            if (*end || end == optarg || o->threads < 1 || o->threads > 64)
                l3d_die(L3D_EUSAGE, "--threads '%s': expected 1 to 64", optarg);
            break;
        case 'V': o->verify = 1; break;
        case 'q': o->quiet = 1; break;
        case 'h': fputs(usage, stdout); exit(0);
        case 'v': printf("voxel-cache %s\n", LIDAR3D_VERSION); exit(0);
        default:
            l3d_die(L3D_EUSAGE, "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (o->print_config) {
        if (optind < argc)
            l3d_die(L3D_EUSAGE, "--print-config takes no SWEEP_CACHE");
        return;
    }
    if (optind >= argc)
        l3d_die(L3D_EUSAGE, "no SWEEP_CACHE given (see --help)");
    if (optind + 1 < argc)
        l3d_die(L3D_EUSAGE, "one SWEEP_CACHE only; '%s' is extra", argv[optind + 1]);
    if (!o->output)
        l3d_die(L3D_EUSAGE, "no output: -o VOXEL_CACHE is required");
    o->input = argv[optind];
    struct stat a, b;
    if (!strcmp(o->input, o->output) ||
        (stat(o->input, &a) == 0 && stat(o->output, &b) == 0 && a.st_dev == b.st_dev &&
         a.st_ino == b.st_ino))
        l3d_die(L3D_EUSAGE, "-o '%s' is the input cache", o->output);
}

/* ---- the work ------------------------------------------------------------- */

typedef struct outset {          /* one sample's voxels */
    float *voxels;
    int32_t *coords, *num;
    int64_t sample;
    int m;
} outset;

typedef struct worker {
    struct job *job;
    pthread_t thread;
    int id;
    l3d_voxelizer vox;
    float *cloud;                /* [max merged points][4] */
    double merge_s, voxelize_s;  /* time spent per stage (this thread) */
    outset set[2];
} worker;

typedef struct job {
    const l3d_sweep_cache *sc;
    int sweeps, n_workers;
    int64_t n_samples;
    int64_t *counts;             /* [S][3] merged, in range, in voxels */
    worker *w;
    /* batch b = samples [b*T, b*T+T), worker t takes b*T+t into set b&1 */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    int run;                     /* 0 = exit */
    int64_t batch;               /* batch being computed, -1 none */
    int n_done;                  /* workers finished with `batch` */
} job;

/* The merged cloud of sample s into w->cloud; returns its point count. The
 * range filter runs inside the voxelizer (vox.range_filter). */
static int64_t load(worker *w, int64_t s)
{
    return l3d_sweep_cache_merge(w->job->sc, s, w->job->sweeps, 0, w->cloud);
}

static void voxelize_sample(worker *w, int64_t batch)
{
    job *j = w->job;
    int64_t s = batch * j->n_workers + w->id;
    outset *o = &w->set[batch & 1];
    o->sample = s;
    o->m = -1;
    if (s >= j->n_samples)
        return;
    double t0 = l3d_now_s();
    int64_t n = load(w, s);
    double t1 = l3d_now_s();
    o->m = l3d_voxelize(&w->vox, w->cloud, n, 4, o->voxels, o->coords, o->num);
    w->merge_s += t1 - t0;
    w->voxelize_s += l3d_now_s() - t1;
    int64_t *c = j->counts + 3 * s;
    c[0] = n;
    c[1] = w->vox.last_in_range;
    c[2] = w->vox.last_kept;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    job *j = w->job;
    int64_t seen = -1;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        while (j->run && j->batch == seen)
            pthread_cond_wait(&j->go, &j->mu);
        if (!j->run)
            break;
        seen = j->batch;
        pthread_mutex_unlock(&j->mu);
        voxelize_sample(w, seen);
        pthread_mutex_lock(&j->mu);
        j->n_done++;
        pthread_cond_broadcast(&j->done);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

static void start_batch(job *j, int64_t b)
{
    pthread_mutex_lock(&j->mu);
    j->batch = b;
    j->n_done = 0;
    pthread_cond_broadcast(&j->go);
    pthread_mutex_unlock(&j->mu);
}

static void wait_batch(job *j)
{
    pthread_mutex_lock(&j->mu);
    while (j->n_done < j->n_workers)
        pthread_cond_wait(&j->done, &j->mu);
    pthread_mutex_unlock(&j->mu);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        l3d_die(L3D_EINTERNAL, "out of memory (%zu bytes)", n);
    return p;
}

int main(int argc, char **argv)
{
    l3d_prog = "voxel-cache";
    options o;
    parse_args(argc, argv, &o);
    l3d_err err = {0};
    l3d_voxel_config cfg = L3D_VOXEL_CONFIG_SSN;
    if (o.config && l3d_voxel_config_load(&cfg, o.config, &err))
        l3d_die_err(&err);
    if (o.print_config) {
        char text[512];
        l3d_voxel_config_format(&cfg, text, sizeof text);
        fputs(text, stdout);
        return 0;
    }
    double t0 = l3d_now_s();
    l3d_sweep_cache sc;
    if (l3d_sweep_cache_open(&sc, o.input, o.verify ? L3D_CACHE_VERIFY_ALL : 0, &err))
        l3d_die_err(&err);
    char transform[64] = "";
    l3d_err ignore;
    l3d_h5r_attr_str(&sc.h5, "/", "sweep_transform", transform, sizeof transform, &ignore);

    const int64_t S = sc.n_samples;
    int T = o.threads;
    if (T > S)
        T = S > 0 ? (int)S : 1;
    int64_t max_pts = 0;
    for (int64_t s = 0; s < S; s++) {
        int64_t n = l3d_sweep_cache_merged_count(&sc, s, o.sweeps);
        max_pts = n > max_pts ? n : max_pts;
    }
    job j = {.sc = &sc, .sweeps = o.sweeps, .n_workers = T, .n_samples = S, .batch = -1,
             .run = 1};
    j.counts = xmalloc((size_t)(S + 1) * 3 * sizeof *j.counts);
    j.w = xmalloc((size_t)T * sizeof *j.w);
    pthread_mutex_init(&j.mu, NULL);
    pthread_cond_init(&j.go, NULL);
    pthread_cond_init(&j.done, NULL);
    const size_t vox_floats = (size_t)cfg.max_voxels * (size_t)cfg.max_points * 4;
    for (int t = 0; t < T; t++) {
        worker *w = &j.w[t];
        memset(w, 0, sizeof *w);
        w->job = &j;
        w->id = t;
        const char *why = "";
        if (l3d_voxelizer_init(&w->vox, &cfg, &why))
            l3d_die(L3D_EINTERNAL, "%s", why);
        w->vox.range_filter = 1;   /* PointsRangeFilter, then voxelization */
        w->cloud = xmalloc((size_t)max_pts * 4 * sizeof(float));
        for (int k = 0; k < 2; k++) {
            w->set[k].voxels = xmalloc(vox_floats * sizeof(float));
            w->set[k].coords = xmalloc((size_t)cfg.max_voxels * 3 * sizeof(int32_t));
            w->set[k].num = xmalloc((size_t)cfg.max_voxels * sizeof(int32_t));
        }
    }

    l3d_voxel_cache_writer vw;
    if (l3d_voxel_cache_begin(&vw, o.output, &cfg, &err))
        l3d_die_err(&err);
    for (int t = 0; t < T; t++)
        if (pthread_create(&j.w[t].thread, NULL, worker_main, &j.w[t]))
            l3d_die(L3D_EINTERNAL, "cannot start worker threads");

    /* workers voxelize batch b+1 while main writes batch b */
    int64_t *offsets = xmalloc((size_t)(S + 1) * sizeof *offsets);
    offsets[0] = 0;
    int64_t batches = (S + T - 1) / T;
    double write_s = 0;
    l3d_progress prog;
    l3d_progress_begin(&prog, "voxelizing", "samples", (double)S);
    if (batches > 0)
        start_batch(&j, 0);
    for (int64_t b = 0; b < batches; b++) {
        wait_batch(&j);
        if (b + 1 < batches)
            start_batch(&j, b + 1);
        double tw = l3d_now_s();
        for (int t = 0; t < T; t++) {
            const outset *os = &j.w[t].set[b & 1];
            if (os->m == -1)
                continue;
            offsets[os->sample + 1] = offsets[os->sample] + os->m;
            if (l3d_voxel_cache_append(&vw, os->m, os->voxels, os->num, os->coords, &err)) {
                l3d_voxel_cache_abort(&vw);
                l3d_die_err(&err);
            }
        }
        write_s += l3d_now_s() - tw;
        l3d_progress_update(&prog, (double)((b + 1) * T < S ? (b + 1) * T : S));
    }
    l3d_progress_end(&prog);
    pthread_mutex_lock(&j.mu);
    j.run = 0;
    pthread_cond_broadcast(&j.go);
    pthread_mutex_unlock(&j.mu);
    for (int t = 0; t < T; t++)
        pthread_join(j.w[t].thread, NULL);

    int64_t at_cap = 0, merged = 0, in_range = 0, kept = 0;
    for (int64_t s = 0; s < S; s++) {
        at_cap += offsets[s + 1] - offsets[s] == cfg.max_voxels;
        merged += j.counts[3 * s];
        in_range += j.counts[3 * s + 1];
        kept += j.counts[3 * s + 2];
    }
    l3d_voxel_cache_info info = {
        .cfg = cfg, .sweeps = o.sweeps, .n_samples = S, .n_boxes = sc.n_boxes,
        .voxel_offsets = offsets, .sample_point_counts = j.counts, .boxes = sc.boxes,
        .box_labels = sc.box_labels, .box_offsets = sc.box_offsets,
        .sample_tokens = sc.sample_tokens, .tool_version = "voxel-cache " LIDAR3D_VERSION,
        .source = o.input, .source_sweep_transform = transform,
    };
    double tf = l3d_now_s();
    if (l3d_voxel_cache_finish(&vw, &info, &err))
        l3d_die_err(&err);
    double t2 = l3d_now_s();
    write_s += t2 - tf;

    if (!o.quiet) {
        struct stat st;
        double mb = stat(o.output, &st) == 0 ? (double)st.st_size / 1e6 : 0;
        fprintf(stderr,
                "%s: %lld samples, %lld voxels (%lld samples at max_voxels); points: %lld "
                "merged, %lld in range, %lld in voxels; %.1f MB in %.2f s (%.1f M points/s, "
                "%d threads)\n",
                l3d_prog, (long long)S, (long long)offsets[S], (long long)at_cap,
                (long long)merged, (long long)in_range, (long long)kept, mb, t2 - t0,
                t2 > t0 ? (double)merged / (t2 - t0) / 1e6 : 0.0, T);
        double ms = 0, vs = 0;
        for (int t = 0; t < T; t++)
            ms += j.w[t].merge_s, vs += j.w[t].voxelize_s;
        fprintf(stderr,
                "%s: thread seconds: merge %.2f, range filter + voxelize %.2f (%.0f M "
                "points/s); writing %.2f (main thread, incl. checksums and fsync)\n",
                l3d_prog, ms, vs,
                vs > 0 ? (double)merged / vs / 1e6 : 0.0, write_s);
    }
    for (int t = 0; t < T; t++) {
        worker *w = &j.w[t];
        l3d_voxelizer_free(&w->vox);
        free(w->cloud);
        for (int k = 0; k < 2; k++) {
            free(w->set[k].voxels);
            free(w->set[k].coords);
            free(w->set[k].num);
        }
    }
    free(j.w);
    free(j.counts);
    free(offsets);
    pthread_mutex_destroy(&j.mu);
    pthread_cond_destroy(&j.go);
    pthread_cond_destroy(&j.done);
    l3d_sweep_cache_close(&sc);
    return 0;
}
