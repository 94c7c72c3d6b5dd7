/* merge_speed: how fast the sweep cache gives merged K-sweep clouds, single-threaded.
 *
 *   build/bench/merge_speed CACHE [--sweeps K] [--repeat N] [--mode mmap|pread|h5dread]
 *
 * Merges every sample's K-sweep cloud (x, y, z, time_lag float32, key-frame LiDAR
 * frame) N times, after one untimed warm-up pass, and prints samples/s and points/s.
 *
 *   mmap     l3d_sweep_cache_merge over the memory-mapped file (the trainer's path)
 *   pread    the same with LIDAR3D_NO_MMAP=1: the reader pread()s every dataset at open
 *            (open time printed separately), then merges from memory
 *   h5dread  no mapped arrays: the metadata (scan_offsets, sample_scans,
 *            sample_transforms, sample_time_lags) is read once with H5Dread, and each
 *            sample's scans with H5Dread hyperslab selections of scan_points, decoded
 *            with the scale_factor/add_offset attributes and transformed as
 *            l3d_sweep_cache_merge does (written out again here, independently)
 *
 * Before timing, the mmap path's output is compared with the h5dread path's, bit for
 * bit, on the first sample and on the first sample that has K sweeps (the first sample
 * of a scene has none, so it alone would not test the transforms); in pread mode the
 * pread path is compared too. Any difference: exit status 1.
 *
 * The last line is machine-readable (bench/cache-speed.sh parses it):
 *   RESULT mode=M sweeps=K samples=S repeat=N points_per_pass=P seconds=T
 *          samples_per_s=X points_per_s=Y best_samples_per_s=Z cpu_s=C cpu_samples_per_s=V
 *          open_s=O
 * (samples/s are per wall second; cpu_samples_per_s per second of this process's CPU
 * time, which time-slicing by other processes on the same core does not inflate) 
 * Exit status: 0, 1 when the check fails, 2 on usage, 3 when the cache cannot be read.
 */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "formats/error.h"
#include "formats/sweep_cache.h"

enum { MODE_MMAP, MODE_PREAD, MODE_H5DREAD };
static const char *const mode_names[] = {"mmap", "pread", "h5dread"};

static double now(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: merge_speed CACHE [--sweeps K] [--repeat N] [--mode mmap|pread|h5dread]\n"
               "Merges every sample's K-sweep cloud (default K 10) N times (default 3),\n"
               "single-threaded, and prints samples/s and points/s.\n");
}

/* ---- the H5Dread path ---------------------------------------------------- */

typedef struct h5d_reader {
    hid_t dset, fspace, mtype;
    int quantised;
    float scale, offset;
    int64_t n_samples, n_scans;
    int64_t *scan_offsets;       /* [K+1] */
    int32_t *sample_scans;       /* [S][11] */
    double *sample_transforms;   /* [S][11][16] */
    float *sample_time_lags;     /* [S][11] */
    void *scratch;               /* one scan's xyz rows, file dtype */
} h5d_reader;

static void h5d_close(h5d_reader *r)
{
    if (r->fspace > 0)
        H5Sclose(r->fspace);
    if (r->dset > 0)
        H5Dclose(r->dset);
    free(r->scan_offsets);
    free(r->sample_scans);
    free(r->sample_transforms);
    free(r->sample_time_lags);
    free(r->scratch);
    memset(r, 0, sizeof *r);
}

/* Reads a whole (small) dataset of n elements of `type` into a new buffer. */
static void *read_all(hid_t file, const char *name, hid_t type, size_t elem, size_t n)
{
    void *buf = malloc(n * elem + 1);
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (!buf || d < 0 || H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        fprintf(stderr, "merge_speed: H5Dread of %s failed\n", name);
        free(buf);
        buf = NULL;
    }
    if (d >= 0)
        H5Dclose(d);
    return buf;
}

static double attr_f64(hid_t dset, const char *key)
{
    double v = 0;
    hid_t a = H5Aopen(dset, key, H5P_DEFAULT);
    if (a < 0 || H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0)
        fprintf(stderr, "merge_speed: attribute scan_points/%s unreadable\n", key);
    if (a >= 0)
        H5Aclose(a);
    return v;
}

/* `c` (already validated by l3d_sweep_cache_open) gives only the file handle and the
 * sizes; every array the merge uses comes from H5Dread. */
static int h5d_open(h5d_reader *r, const l3d_sweep_cache *c)
{
    memset(r, 0, sizeof *r);
    hid_t file = c->h5.file;
    r->n_samples = c->n_samples;
    r->n_scans = c->n_scans;
    size_t S = (size_t)c->n_samples, K = (size_t)c->n_scans;
    r->scan_offsets = read_all(file, "scan_offsets", H5T_NATIVE_INT64, 8, K + 1);
    r->sample_scans = read_all(file, "sample_scans", H5T_NATIVE_INT32, 4, S * L3D_SLOTS);
    r->sample_transforms =
        read_all(file, "sample_transforms", H5T_NATIVE_DOUBLE, 8, S * L3D_SLOTS * 16);
    r->sample_time_lags = read_all(file, "sample_time_lags", H5T_NATIVE_FLOAT, 4, S * L3D_SLOTS);
    r->dset = H5Dopen2(file, "scan_points", H5P_DEFAULT);
    if (!r->scan_offsets || !r->sample_scans || !r->sample_transforms || !r->sample_time_lags ||
        r->dset < 0) {
        h5d_close(r);
        return -1;
    }
    r->fspace = H5Dget_space(r->dset);
    r->quantised = H5Aexists(r->dset, "scale_factor") > 0;
    r->mtype = r->quantised ? H5T_NATIVE_INT16 : H5T_NATIVE_FLOAT;
    /* CF convention: value * scale_factor + add_offset, in float32 as the reader does */
    r->scale = r->quantised ? (float)attr_f64(r->dset, "scale_factor") : 1.0f;
    r->offset = r->quantised ? (float)attr_f64(r->dset, "add_offset") : 0.0f;
    int64_t most = 0;
    for (int64_t k = 0; k < r->n_scans; k++)
        if (r->scan_offsets[k + 1] - r->scan_offsets[k] > most)
            most = r->scan_offsets[k + 1] - r->scan_offsets[k];
    r->scratch = malloc((size_t)most * 3 * (r->quantised ? sizeof(int16_t) : sizeof(float)) + 1);
    if (!r->scratch) {
        h5d_close(r);
        return -1;
    }
    return 0;
}

static int h5d_slots(const h5d_reader *r, int64_t s, int k)
{
    int n = 1;
    while (n <= k && n < L3D_SLOTS && r->sample_scans[s * L3D_SLOTS + n] >= 0)
        n++;
    return n;
}

/* Merged cloud of sample s with k sweeps into out (x, y, z, time_lag); returns the
 * point count, or -1 when H5Dread fails. */
static int64_t h5d_merge(h5d_reader *r, int64_t s, int k, float *out)
{
    int n = h5d_slots(r, s, k);
    int64_t w = 0;
    for (int j = 0; j < n; j++) {
        int32_t scan = r->sample_scans[s * L3D_SLOTS + j];
        const double *M = r->sample_transforms + (s * L3D_SLOTS + j) * 16;
        float lag = r->sample_time_lags[s * L3D_SLOTS + j];
        int64_t row0 = r->scan_offsets[scan], rows = r->scan_offsets[scan + 1] - row0;
        if (rows == 0)
            continue;
        hsize_t start[2] = {(hsize_t)row0, 0}, count[2] = {(hsize_t)rows, 3};
        hid_t ms = H5Screate_simple(2, count, NULL);
        herr_t e = H5Sselect_hyperslab(r->fspace, H5S_SELECT_SET, start, NULL, count, NULL);
        if (e >= 0)
            e = H5Dread(r->dset, r->mtype, ms, r->fspace, H5P_DEFAULT, r->scratch);
        H5Sclose(ms);
        if (e < 0)
            return -1;
        const int16_t *q = r->scratch;
        const float *f = r->scratch;
        for (int64_t i = 0; i < rows; i++, w++) {
            float p[3];
            for (int a = 0; a < 3; a++)
                p[a] = r->quantised ? (float)q[3 * i + a] * r->scale + r->offset : f[3 * i + a];
            float *o = out + w * 4;
            if (j == 0) {
                o[0] = p[0];
                o[1] = p[1];
                o[2] = p[2];
            } else {
                /* MMDetection3D's order: rotate in float64, store float32, translate */
                for (int a = 0; a < 3; a++) {
                    float rot = (float)(M[4 * a] * p[0] + M[4 * a + 1] * p[1] + M[4 * a + 2] * p[2]);
                    o[a] = (float)((double)rot + M[4 * a + 3]);
                }
            }
            o[3] = lag;
        }
    }
    return w;
}

/* ---- the check ------------------------------------------------------------- */

/* Compares the mapped (and, when given, the pread) merge of sample s with the
 * H5Dread merge; prints the result. Returns 0 when all are equal bit for bit. */
static int check_sample(const l3d_sweep_cache *mapped, const l3d_sweep_cache *preadc,
                        h5d_reader *r, int64_t s, int k, float *a, float *b)
{
    int64_t n = l3d_sweep_cache_merged_count(mapped, s, k);
    int64_t na = l3d_sweep_cache_merge(mapped, s, k, 0, a);
    int64_t nb = h5d_merge(r, s, k, b);
    int sweeps = l3d_sweep_cache_slots(mapped, s, k) - 1;
    if (na != n || nb != n || memcmp(a, b, (size_t)n * 4 * sizeof(float)) != 0) {
        int64_t first = -1;
        for (int64_t i = 0; nb == n && na == n && i < 4 * n && first < 0; i++)
            if (memcmp(a + i, b + i, sizeof(float)))
                first = i / 4;
        fprintf(stderr, "merge_speed: CHECK FAILED: sample %lld (%d sweeps): mmap gives %lld "
                "points, h5dread %lld; first different point %lld\n", (long long)s, sweeps,
                (long long)na, (long long)nb, (long long)first);
        return 1;
    }
    if (preadc) {
        int64_t np = l3d_sweep_cache_merge(preadc, s, k, 0, a);
        if (np != n || memcmp(a, b, (size_t)n * 4 * sizeof(float)) != 0) {
            fprintf(stderr, "merge_speed: CHECK FAILED: sample %lld: pread differs from h5dread\n",
                    (long long)s);
            return 1;
        }
    }
    printf("merge_speed: check: sample %lld (%d sweeps, %lld points): mmap%s == h5dread, "
           "bit for bit\n", (long long)s, sweeps, (long long)n, preadc ? " == pread" : "");
    return 0;
}

/* ---- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    const char *path = NULL;
    int k = 10, repeat = 3, mode = MODE_MMAP;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--sweeps") && i + 1 < argc) {
            k = atoi(argv[++i]);
        } else if (!strcmp(a, "--repeat") && i + 1 < argc) {
            repeat = atoi(argv[++i]);
        } else if (!strcmp(a, "--mode") && i + 1 < argc) {
            const char *m = argv[++i];
            mode = !strcmp(m, "mmap") ? MODE_MMAP : !strcmp(m, "pread") ? MODE_PREAD
                 : !strcmp(m, "h5dread") ? MODE_H5DREAD : -1;
        } else if (a[0] == '-' || path) {
            usage(stderr);
            return 2;
        } else {
            path = a;
        }
    }
    if (!path || k < 0 || k > L3D_SLOTS - 1 || repeat < 1 || mode < 0) {
        usage(stderr);
        return 2;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);

    /* 1. the check, on an mmap-opened cache (and a pread-opened one in pread mode) */
    l3d_err err = {0};
    l3d_sweep_cache mapped, preadc;
    setenv("LIDAR3D_NO_MMAP", "0", 1);
    if (l3d_sweep_cache_open(&mapped, path, 0, &err)) {
        fprintf(stderr, "merge_speed: %s\n", err.msg);
        return 3;
    }
    if (!mapped.h5.map) {
        fprintf(stderr, "merge_speed: %s: mmap failed; the mmap path cannot be measured\n", path);
        l3d_sweep_cache_close(&mapped);
        return 3;
    }
    int64_t S = mapped.n_samples, most = 0, full = -1;
    for (int64_t s = 0; s < S; s++) {
        int64_t n = l3d_sweep_cache_merged_count(&mapped, s, k);
        if (n > most)
            most = n;
        if (full < 0 && l3d_sweep_cache_slots(&mapped, s, k) == k + 1)
            full = s;
    }
    float *out = malloc((size_t)(most + 1) * 4 * sizeof(float));
    float *ref = malloc((size_t)(most + 1) * 4 * sizeof(float));
    if (!out || !ref) {
        fprintf(stderr, "merge_speed: out of memory\n");
        return 3;
    }
    h5d_reader r;
    if (S == 0 || h5d_open(&r, &mapped)) {
        fprintf(stderr, "merge_speed: %s: %s\n", path, S ? "H5Dread setup failed" : "no samples");
        return 3;
    }
    int use_pread = mode == MODE_PREAD;
    if (use_pread) {
        setenv("LIDAR3D_NO_MMAP", "1", 1);
        if (l3d_sweep_cache_open(&preadc, path, 0, &err)) {
            fprintf(stderr, "merge_speed: %s\n", err.msg);
            return 3;
        }
    }
    int bad = check_sample(&mapped, use_pread ? &preadc : NULL, &r, 0, k, out, ref);
    if (full > 0)
        bad |= check_sample(&mapped, use_pread ? &preadc : NULL, &r, full, k, out, ref);
    h5d_close(&r);
    if (use_pread)
        l3d_sweep_cache_close(&preadc);
    l3d_sweep_cache_close(&mapped);
    if (bad) {
        free(out);
        free(ref);
        return 1;
    }

    /* 2. open as the mode does (timed), warm up, then time `repeat` passes */
    setenv("LIDAR3D_NO_MMAP", mode == MODE_PREAD ? "1" : "0", 1);
    l3d_sweep_cache c;
    double t0 = now(CLOCK_MONOTONIC);
    if (l3d_sweep_cache_open(&c, path, 0, &err)) {
        fprintf(stderr, "merge_speed: %s\n", err.msg);
        return 3;
    }
    if (mode == MODE_H5DREAD && h5d_open(&r, &c)) {
        fprintf(stderr, "merge_speed: %s: H5Dread setup failed\n", path);
        return 3;
    }
    double open_s = now(CLOCK_MONOTONIC) - t0;
    int64_t points = 0;
    double sink = 0, total = 0, best = 1e300, cpu0 = 0;
    for (int pass = -1; pass < repeat; pass++) {
        if (pass == 0)
            cpu0 = now(CLOCK_PROCESS_CPUTIME_ID);
        double p0 = now(CLOCK_MONOTONIC);
        int64_t pts = 0;
        for (int64_t s = 0; s < c.n_samples; s++) {
            int64_t n = mode == MODE_H5DREAD ? h5d_merge(&r, s, k, out)
                                             : l3d_sweep_cache_merge(&c, s, k, 0, out);
            if (n < 0) {
                fprintf(stderr, "merge_speed: %s: H5Dread of sample %lld failed\n", path,
                        (long long)s);
                return 3;
            }
            pts += n;
            if (n)
                sink += out[0] + out[4 * n - 1];
        }
        double dt = now(CLOCK_MONOTONIC) - p0;
        if (pass >= 0) {
            total += dt;
            if (dt < best)
                best = dt;
        }
        points = pts;
    }
    double cpu = now(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    double sps = (double)c.n_samples * repeat / total, pps = (double)points * repeat / total;
    printf("merge_speed: %s: %s, %d sweeps, %lld samples x %d passes (after 1 warm-up), "
           "%.2f M points per pass (%.3f M per sample), open %.4f s, checksum %.6g\n",
           mode_names[mode], path, k, (long long)c.n_samples, repeat, (double)points / 1e6,
           (double)points / 1e6 / (double)(c.n_samples ? c.n_samples : 1), open_s, sink);
    printf("merge_speed: %s: %.1f samples/s, %.1f M points/s (best pass %.1f samples/s); "
           "cpu/wall %.2f, %.1f samples per CPU second\n", mode_names[mode], sps, pps / 1e6,
           (double)c.n_samples / best, cpu / total, (double)c.n_samples * repeat / cpu);
    printf("RESULT mode=%s sweeps=%d samples=%lld repeat=%d points_per_pass=%lld seconds=%.6f "
           "samples_per_s=%.3f points_per_s=%.1f best_samples_per_s=%.3f cpu_s=%.6f "
           "cpu_samples_per_s=%.3f open_s=%.6f\n",
           mode_names[mode], k, (long long)c.n_samples, repeat, (long long)points, total, sps,
           pps, (double)c.n_samples / best, cpu, (double)c.n_samples * repeat / cpu, open_s);
    if (mode == MODE_H5DREAD)
        h5d_close(&r);
    l3d_sweep_cache_close(&c);
    free(out);
    free(ref);
    return 0;
}
