/* The voxel cache: config file, writer + validating reader, and voxel-cache
 * end to end on hand-made sweep caches (written here with the sweep-cache
 * library), checked against a simple reference (strict range filter + a
 * linear-search voxelizer written here), plus determinism, the HDF5 layout as
 * h5dump shows it, and every bad input: wrong schema version, truncated or
 * damaged files, bad config files, a full disk. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "formats/sweep_cache.h"
#include "formats/voxel_cache.h"
#include "tests/support/testutil.h"

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return tu_run(cmd, NULL, NULL);
}

/* DIR/NAME in one of 8 rotating buffers. */
static const char *in_dir(const char *dir, const char *name)
{
    static char buf[8][4200];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 4200, "%s/%s", dir, name);
    return p;
}

/* Runs cmd; the exit status must be `code` and stderr must contain `msg`. */
static void expect_exit(const char *cmd, int code, const char *msg)
{
    char *out = NULL, *err = NULL;
    int rc = tu_run(cmd, &out, &err);
    if (rc != code || (msg && (!err || !strstr(err, msg))))
        fail_msg("%s\nexit %d (expected %d), stderr:\n%s\n(expected it to contain '%s')", cmd, rc,
                 code, err ? err : "", msg ? msg : "");
    free(out);
    free(err);
}

/* ---- a hand-made sweep cache ---------------------------------------------- */

static uint64_t rng_state;
static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 32);
}

#define NS 5          /* samples; sample s uses scans s, s-1, ..., 0 as key frame + sweeps */

typedef struct synth {
    int64_t n_points;
    int16_t *xyz;     /* [P][3] at 1/128 m */
    int64_t scan_offsets[NS + 1];
    char scan_tokens[NS][64], sample_tokens[NS][64], scene_names[1][128];
    int32_t sample_scans[NS][11], sample_scene[NS];
    double transforms[NS][11][4][4], timestamps[NS], l2e[NS][7], e2g[NS][7];
    float lags[NS][11];
    float boxes[7 * 7];
    int32_t labels[7];
    int64_t box_offsets[NS + 1];
} synth;

static int points_fn(void *ctx, int64_t row0, int64_t n, void *xyz, float *intensity, l3d_err *e)
{
    (void)intensity;
    (void)e;
    const synth *s = ctx;
    memcpy(xyz, s->xyz + 3 * row0, (size_t)n * 3 * sizeof(int16_t));
    return L3D_OK;
}

/* Scan k: `per` points, a quarter in a few tight blobs (cells over 20 points),
 * the rest spread over [-120, 120] x [-120, 120] x [-7, 5] (some outside the
 * range), some exactly on cell boundaries (multiples of 0.25 m) and on the
 * range edges. Sample s: key frame = scan s, sweep j = scan s-j, rotated by
 * 0.05 j rad and moved by (1.5 j, -0.5 j, 0.1 j) m. */
static void make_sweep_cache(const char *path, int per, int n_scans_used)
{
    synth *s = calloc(1, sizeof *s);
    s->n_points = (int64_t)per * NS;
    s->xyz = malloc((size_t)s->n_points * 3 * sizeof(int16_t));
    rng_state = 42;
    for (int k = 0; k < NS; k++) {
        s->scan_offsets[k] = (int64_t)k * per;
        snprintf(s->scan_tokens[k], 64, "scan-%d", k);
        for (int i = 0; i < per; i++) {
            int16_t *q = s->xyz + 3 * ((int64_t)k * per + i);
            uint32_t r = rnd() % 16;
            if (r < 4) {   /* blob around (10 r, -5 r) */
                q[0] = (int16_t)(1280 * r + (int)(rnd() % 40) - 20);
                q[1] = (int16_t)(-640 * (int)r + (int)(rnd() % 40) - 20);
                q[2] = (int16_t)((int)(rnd() % 200) - 100);
            } else if (r < 6) {   /* on boundaries: multiples of 32/128 = 0.25 m */
                q[0] = (int16_t)(32 * ((int)(rnd() % 801) - 400));
                q[1] = (int16_t)(32 * ((int)(rnd() % 801) - 400));
                q[2] = (int16_t)(128 * ((int)(rnd() % 9) - 5));
            } else {
                q[0] = (int16_t)((int)(rnd() % 30720) - 15360);
                q[1] = (int16_t)((int)(rnd() % 30720) - 15360);
                q[2] = (int16_t)((int)(rnd() % 1536) - 896);
            }
        }
    }
    s->scan_offsets[NS] = s->n_points;
    strcpy(s->scene_names[0], "scene-synth");
    for (int i = 0; i < NS; i++) {
        snprintf(s->sample_tokens[i], 64, "sample-token-%d", i);
        s->timestamps[i] = 1e15 + 2e5 * i;
        s->l2e[i][3] = s->e2g[i][3] = 1;
        for (int j = 0; j < 11; j++) {
            int scan = j < n_scans_used ? i - j : -1;
            s->sample_scans[i][j] = scan >= 0 ? scan : -1;
            double a = 0.05 * j, (*m)[4] = s->transforms[i][j];
            m[0][0] = cos(a), m[0][1] = -sin(a), m[1][0] = sin(a), m[1][1] = cos(a);
            m[2][2] = m[3][3] = 1;
            m[0][3] = 1.5 * j, m[1][3] = -0.5 * j, m[2][3] = 0.1 * j;
            s->lags[i][j] = 0.2f * (float)j;
        }
    }
    int nb[NS] = {2, 0, 1, 3, 1};
    int b = 0;
    for (int i = 0; i < NS; i++) {
        s->box_offsets[i] = b;
        for (int k = 0; k < nb[i]; k++, b++) {
            for (int c = 0; c < 7; c++)
                s->boxes[7 * b + c] = (float)(b * 10 + c) + 0.5f;
            s->labels[b] = b % 9;
        }
    }
    s->box_offsets[NS] = b;
    l3d_sweep_cache_meta m = {
        .n_samples = NS, .n_scans = NS, .n_points = s->n_points, .n_boxes = b, .n_scenes = 1,
        .quantised = 1, .scan_offsets = s->scan_offsets, .scan_tokens = &s->scan_tokens[0][0],
        .sample_scans = &s->sample_scans[0][0], .sample_transforms = &s->transforms[0][0][0][0],
        .sample_time_lags = &s->lags[0][0], .sample_timestamps = s->timestamps,
        .sample_scene = s->sample_scene, .sample_lidar2ego = &s->l2e[0][0],
        .sample_ego2global = &s->e2g[0][0], .sample_tokens = &s->sample_tokens[0][0],
        .scene_names = &s->scene_names[0][0], .boxes = s->boxes, .box_labels = s->labels,
        .box_offsets = s->box_offsets, .tool_version = "test", .command = "test",
        .index_checksum = "", .sweep_transform = "correct", .corrupt_policy = "error",
    };
    l3d_err err = {0};
    if (l3d_sweep_cache_write(path, &m, points_fn, s, &err))
        fail_msg("writing the sweep cache: %s", err.msg);
    free(s->xyz);
    free(s);
}

/* ---- the reference --------------------------------------------------------- */

/* Spec §1.5 step 3 then §2, literally (see also tests/test_voxelize.c). */
static int ref_voxelize(const l3d_voxel_config *c, const float *pts, int64_t n, float *vox,
                        int32_t *coords, int32_t *num, int64_t *in_range)
{
    int grid[3];
    for (int j = 0; j < 3; j++)
        grid[j] = (int)roundf((c->range[j + 3] - c->range[j]) / c->size[j]);
    size_t vsz = (size_t)c->max_points * 4;
    int m = 0;
    *in_range = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *p = pts + 4 * i;
        if (!(p[0] > c->range[0] && p[0] < c->range[3] && p[1] > c->range[1] &&
              p[1] < c->range[4] && p[2] > c->range[2] && p[2] < c->range[5]))
            continue;
        ++*in_range;
        int idx[3], valid = 1;
        for (int j = 0; j < 3; j++) {
            float q = (p[j] - c->range[j]) / c->size[j];
            float f = floorf(q);
            if (f >= 0.0f && f < (float)grid[j])
                idx[j] = (int)f;
            else
                valid = 0;
        }
        if (!valid)
            continue;
        int found = -1;
        for (int v = m - 1; v >= 0 && found < 0; v--)
            if (coords[3 * v] == idx[2] && coords[3 * v + 1] == idx[1] &&
                coords[3 * v + 2] == idx[0])
                found = v;
        if (found < 0) {
            if (m == c->max_voxels)
                continue;
            found = m++;
            coords[3 * found] = idx[2];
            coords[3 * found + 1] = idx[1];
            coords[3 * found + 2] = idx[0];
            num[found] = 0;
            memset(vox + found * vsz, 0, vsz * sizeof(float));
        }
        if (num[found] < c->max_points) {
            memcpy(vox + found * vsz + (size_t)num[found] * 4, p, 4 * sizeof(float));
            num[found]++;
        }
    }
    return m;
}

/* Every sample of the voxel cache equals the reference applied to the sweep
 * cache's merged cloud; boxes and tokens equal the sweep cache's. */
static void check_against_reference(const char *sweeps_path, const char *voxels_path,
                                    const l3d_voxel_config *cfg, int k)
{
    l3d_err err = {0};
    l3d_sweep_cache sc;
    l3d_voxel_cache vc;
    if (l3d_sweep_cache_open(&sc, sweeps_path, 0, &err))
        fail_msg("%s", err.msg);
    if (l3d_voxel_cache_open(&vc, voxels_path, L3D_CACHE_VERIFY_ALL, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(vc.n_samples, sc.n_samples);
    assert_int_equal(vc.sweeps, k);
    assert_memory_equal(&vc.cfg, cfg, sizeof *cfg);
    assert_int_equal(vc.n_boxes, sc.n_boxes);
    assert_memory_equal(vc.boxes, sc.boxes, (size_t)sc.n_boxes * 7 * sizeof(float));
    assert_memory_equal(vc.box_labels, sc.box_labels, (size_t)sc.n_boxes * sizeof(int32_t));
    assert_memory_equal(vc.box_offsets, sc.box_offsets, (size_t)(sc.n_samples + 1) * 8);
    assert_memory_equal(vc.sample_tokens, sc.sample_tokens, (size_t)sc.n_samples * 64);
    size_t vsz = (size_t)cfg->max_points * 4;
    float *vox = malloc((size_t)cfg->max_voxels * vsz * sizeof(float));
    int32_t *coords = malloc((size_t)cfg->max_voxels * 3 * sizeof(int32_t));
    int32_t *num = malloc((size_t)cfg->max_voxels * sizeof(int32_t));
    for (int64_t s = 0; s < sc.n_samples; s++) {
        int64_t n = l3d_sweep_cache_merged_count(&sc, s, k);
        float *pts = malloc((size_t)(n + 1) * 4 * sizeof(float));
        assert_int_equal(l3d_sweep_cache_merge(&sc, s, k, 0, pts), n);
        int64_t in_range;
        int m = ref_voxelize(cfg, pts, n, vox, coords, num, &in_range);
        l3d_voxel_sample vs;
        l3d_voxel_cache_sample(&vc, s, &vs);
        if (vs.n_voxels != m)
            fail_msg("sample %lld, %d sweeps: %lld voxels, reference %d", (long long)s, k,
                     (long long)vs.n_voxels, m);
        assert_memory_equal(vs.coords, coords, (size_t)m * 12);
        assert_memory_equal(vs.num_points, num, (size_t)m * 4);
        assert_memory_equal(vs.points, vox, (size_t)m * vsz * sizeof(float));
        int64_t kept = 0;
        for (int v = 0; v < m; v++)
            kept += num[v];
        const int64_t *pc = vc.sample_point_counts + 3 * s;
        assert_int_equal(pc[0], n);
        assert_int_equal(pc[1], in_range);
        assert_int_equal(pc[2], kept);
        assert_int_equal(vs.n_boxes, sc.box_offsets[s + 1] - sc.box_offsets[s]);
        free(pts);
    }
    free(vox);
    free(coords);
    free(num);
    l3d_voxel_cache_close(&vc);
    l3d_sweep_cache_close(&sc);
}

/* ---- config file ------------------------------------------------------------ */

static void test_config(void **state)
{
    (void)state;
    l3d_voxel_config ssn = L3D_VOXEL_CONFIG_SSN, c = ssn;
    l3d_err err = {0};
    char text[512];
    /* the defaults, as a file, by hand */
    l3d_voxel_config_format(&c, text, sizeof text);
    assert_string_equal(text, "point_cloud_range = -100 -100 -5 100 100 3\n"
                              "voxel_size = 0.25 0.25 8\n"
                              "max_points = 20\n"
                              "max_voxels = 60000\n");
    assert_int_equal(l3d_voxel_config_parse(&c, "", "empty", &err), 0);
    assert_memory_equal(&c, &ssn, sizeof c);
    assert_int_equal(l3d_voxel_config_parse(&c,
                                            "# a comment\n\n  max_voxels = 5000   # fewer\n"
                                            "voxel_size=[0.3, 0.3, 4]\r\n",
                                            "f", &err),
                     0);
    assert_int_equal(c.max_voxels, 5000);
    assert_int_equal(c.max_points, 20);
    assert_true(c.size[0] == 0.3f && c.size[1] == 0.3f && c.size[2] == 4.f);
    assert_true(c.range[0] == -100.f && c.range[5] == 3.f);
    /* format -> parse gives the same floats (0.3 is not a short binary fraction) */
    l3d_voxel_config back = ssn;
    l3d_voxel_config_format(&c, text, sizeof text);
    assert_int_equal(l3d_voxel_config_parse(&back, text, "round-trip", &err), 0);
    assert_memory_equal(&back, &c, sizeof c);

    struct {
        const char *text, *msg;
    } bad[] = {
        {"max_voxel = 3\n", "cfg:1: unknown key 'max_voxel'"},
        {"\nmax_points = 0\n", "cfg:2: max_points: expected a whole number >= 1"},
        {"max_points = 2x\n", "cfg:1: max_points"},
        {"max_points = 3000000000\n", "cfg:1: max_points"},
        {"voxel_size = 0.25 0.25\n", "cfg:1: voxel_size: expected 3 finite numbers"},
        {"voxel_size = 0.25 0.25 8 1\n", "cfg:1: voxel_size: expected 3 finite numbers"},
        {"voxel_size = 0.25 nan 8\n", "cfg:1: voxel_size"},
        {"voxel_size = 0.25 abc 8\n", "cfg:1: voxel_size"},
        {"point_cloud_range = -100 -100 -5 100 100 1e99\n", "cfg:1: point_cloud_range"},
        {"max_points = 2\nmax_points = 3\n", "cfg:2: 'max_points' given twice"},
        {"max_points 2\n", "cfg:1: expected 'key = value'"},
        {"voxel_size = 0 0.25 8\n", "cfg: voxel_size"},
        {"point_cloud_range = 100 -100 -5 -100 100 3\n", "cfg: point_cloud_range"},
        {"voxel_size = 0.001 0.001 8\n", "cfg: voxel_size: grid of more than 2^28 cells"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        l3d_voxel_config k = ssn;
        memset(&err, 0, sizeof err);
        if (l3d_voxel_config_parse(&k, bad[i].text, "cfg", &err) != L3D_EINPUT ||
            !strstr(err.msg, bad[i].msg))
            fail_msg("config '%s': got '%s', expected '%s'", bad[i].text, err.msg, bad[i].msg);
        assert_memory_equal(&k, &ssn, sizeof k);   /* untouched on error */
    }
    assert_int_equal(l3d_voxel_config_load(&c, "/nonexistent/voxel.cfg", &err), L3D_EIO);
}

/* ---- writer and reader ------------------------------------------------------- */

/* Three samples of 3, 0 and 2 voxels (appended as 1 + 2, then 2, so the
 * checksums are streamed over pieces that are not multiples of 8 bytes). */
static void write_small(const char *path, l3d_voxel_config *cfg)
{
    *cfg = (l3d_voxel_config){{-4, -4, -2, 4, 4, 2}, {1, 1, 4}, 3, 3};
    int64_t off[4] = {0, 3, 3, 5}, counts[3][3] = {{9, 8, 5}, {0, 0, 0}, {4, 4, 2}};
    float boxes[2][7] = {{1, 2, 3, 4, 5, 6, 7}, {8, 9, 10, 11, 12, 13, 14}};
    int32_t labels[2] = {4, 8};
    int64_t boff[4] = {0, 1, 1, 2};
    char tokens[3][64] = {"tok-a", "tok-b", "tok-c"};
    l3d_voxel_cache_info info = {
        .cfg = *cfg, .sweeps = 2, .n_samples = 3, .n_boxes = 2, .voxel_offsets = off,
        .sample_point_counts = &counts[0][0], .boxes = &boxes[0][0], .box_labels = labels,
        .box_offsets = boff, .sample_tokens = &tokens[0][0], .tool_version = "test",
        .source = "hand-made", .source_sweep_transform = "correct",
    };
    float pts[5][3][4] = {
        {{0.5f, 0.5f, 0, 0}, {0.6f, 0.7f, 1, 0.1f}, {0.9f, 0.1f, -1, 0.2f}},
        {{-3.5f, 2.5f, 0, 0}},
        {{3.5f, -3.5f, 0.5f, 0.4f}, {3.6f, -3.4f, 0.5f, 0.4f}},
        {{1.5f, 1.5f, 1.5f, 0}},
        {{-0.5f, -0.5f, -1.5f, 0}},
    };
    int32_t num[5] = {3, 1, 2, 1, 1};
    int32_t coords[5][3] = {{0, 4, 4}, {0, 6, 0}, {0, 0, 7}, {0, 5, 5}, {0, 3, 3}};
    l3d_voxel_cache_writer w;
    l3d_err err = {0};
    if (l3d_voxel_cache_begin(&w, path, cfg, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(l3d_voxel_cache_append(&w, 1, &pts[0][0][0], num, coords[0], &err), 0);
    assert_int_equal(l3d_voxel_cache_append(&w, 2, &pts[1][0][0], num + 1, coords[1], &err), 0);
    assert_int_equal(l3d_voxel_cache_append(&w, 2, &pts[3][0][0], num + 3, coords[3], &err), 0);
    if (l3d_voxel_cache_finish(&w, &info, &err))
        fail_msg("%s", err.msg);
}

static void test_write_read(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("vc-rw");
    char p[4200];
    snprintf(p, sizeof p, "%s/v.h5", d);
    l3d_voxel_config cfg;
    write_small(p, &cfg);
    struct stat st;
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    assert_int_equal(stat(tmp, &st), -1);   /* renamed away */
    for (int no_mmap = 0; no_mmap < 2; no_mmap++) {
        if (no_mmap)
            setenv("LIDAR3D_NO_MMAP", "1", 1);
        l3d_voxel_cache c;
        l3d_err err = {0};
        if (l3d_voxel_cache_open(&c, p, L3D_CACHE_VERIFY_ALL, &err))
            fail_msg("%s", err.msg);
        assert_int_equal(c.n_samples, 3);
        assert_int_equal(c.n_voxels, 5);
        assert_int_equal(c.n_boxes, 2);
        assert_int_equal(c.sweeps, 2);
        assert_memory_equal(&c.cfg, &cfg, sizeof cfg);
        assert_int_equal(c.grid[0], 8);
        assert_int_equal(c.grid[2], 1);
        l3d_voxel_sample s;
        l3d_voxel_cache_sample(&c, 0, &s);
        assert_int_equal(s.n_voxels, 3);
        assert_int_equal(s.num_points[0], 3);
        assert_true(s.points[4] == 0.6f && s.points[7] == 0.1f);
        assert_int_equal(s.coords[3 * 2 + 2], 7);
        assert_string_equal(s.token, "tok-a");
        assert_int_equal(s.n_boxes, 1);
        assert_true(s.boxes[6] == 7.f);
        assert_int_equal(s.labels[0], 4);
        l3d_voxel_cache_sample(&c, 1, &s);
        assert_int_equal(s.n_voxels, 0);
        assert_int_equal(s.n_boxes, 0);
        l3d_voxel_cache_sample(&c, 2, &s);
        assert_int_equal(s.n_voxels, 2);
        assert_true(s.points[0] == 1.5f && s.points[3 * 4] == -0.5f);
        assert_true(s.points[4] == 0.f && s.points[3 * 4 + 4] == 0.f);   /* unused slots */
        assert_string_equal(s.token, "tok-c");
        assert_int_equal(c.sample_point_counts[3 * 0 + 1], 8);
        /* zero-copy: the datasets are pointers into the map; none without mmap */
        const char *map = c.h5.map;
        if (!no_mmap) {
            assert_non_null(map);
            assert_true((const char *)c.voxel_points >= map &&
                        (const char *)c.voxel_points < map + c.h5.map_len);
            assert_int_equal(((const char *)c.voxel_points - map) % 4096, 0);
        } else
            assert_null(map);
        l3d_voxel_cache_close(&c);
    }
    unsetenv("LIDAR3D_NO_MMAP");
}

static void test_writer_misuse(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("vc-misuse");
    char p[4200];
    snprintf(p, sizeof p, "%s/v.h5", d);
    l3d_voxel_config cfg = {{-4, -4, -2, 4, 4, 2}, {1, 1, 4}, 2, 2};
    int64_t off[2] = {0, 2}, counts[3] = {2, 2, 2}, boff[2] = {0, 0};
    char tok[64] = "t";
    l3d_voxel_cache_info info = {.cfg = cfg, .n_samples = 1, .voxel_offsets = off,
                                 .sample_point_counts = counts, .box_offsets = boff,
                                 .sample_tokens = tok};
    float pts[3][2][4] = {{{0}}};
    int32_t num[3] = {1, 1, 1}, coords[3][3] = {{0}};
    l3d_voxel_cache_writer w;
    l3d_err err = {0};
    /* more voxels in a sample than max_voxels */
    int64_t off3[2] = {0, 3};
    info.voxel_offsets = off3;
    assert_int_equal(l3d_voxel_cache_begin(&w, p, &cfg, &err), 0);
    assert_int_equal(l3d_voxel_cache_append(&w, 3, &pts[0][0][0], num, coords[0], &err), 0);
    assert_int_equal(l3d_voxel_cache_finish(&w, &info, &err), L3D_EINTERNAL);
    assert_non_null(strstr(err.msg, "bad voxel or box offsets"));
    assert_int_equal(sh("test -z \"$(ls -A '%s')\"", d), 0);   /* nothing left behind */
    /* offsets that do not end at the rows appended */
    info.voxel_offsets = off;
    assert_int_equal(l3d_voxel_cache_begin(&w, p, &cfg, &err), 0);
    assert_int_equal(l3d_voxel_cache_append(&w, -1, &pts[0][0][0], num, coords[0], &err),
                     L3D_EINTERNAL);
    assert_int_equal(l3d_voxel_cache_append(&w, 1, &pts[0][0][0], num, coords[0], &err), 0);
    assert_int_equal(l3d_voxel_cache_finish(&w, &info, &err), L3D_EINTERNAL);   /* 1 of 2 rows */
    assert_non_null(strstr(err.msg, "1 voxels written, the offsets say 2"));
    assert_int_equal(sh("test -z \"$(ls -A '%s')\"", d), 0);
    /* a bad config is refused before anything is created */
    l3d_voxel_config bad = cfg;
    bad.size[0] = 0;
    assert_int_equal(l3d_voxel_cache_begin(&w, p, &bad, &err), L3D_EINPUT);
    assert_int_equal(sh("test -z \"$(ls -A '%s')\"", d), 0);
}

/* Rewrites root attribute `key` (int64) in place, as a newer tool would. */
static void set_attr_i64(const char *path, const char *key, int64_t v)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t a = H5Aopen_by_name(f, "/", key, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0);
    assert_true(H5Awrite(a, H5T_NATIVE_INT64, &v) >= 0);
    H5Aclose(a);
    H5Fclose(f);
}

static long dataset_offset(const char *path, const char *name)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    long off = (long)H5Dget_offset(d);
    H5Dclose(d);
    H5Fclose(f);
    return off;
}

static void expect_open_fails(const char *path, int flags, int code, const char *msg)
{
    l3d_voxel_cache c;
    l3d_err err = {0};
    int rc = l3d_voxel_cache_open(&c, path, flags, &err);
    if (rc != code || !strstr(err.msg, msg))
        fail_msg("open '%s': code %d '%s', expected %d and '%s'", path, rc, err.msg, code, msg);
}

static void test_reader_rejects(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("vc-bad");
    char p[4200], q[4200];
    snprintf(p, sizeof p, "%s/v.h5", d);
    l3d_voxel_config cfg;
    write_small(p, &cfg);

    expect_open_fails("/nonexistent/v.h5", 0, L3D_EIO, "No such file");
    /* wrong schema version: a clear error, before anything is mapped */
    snprintf(q, sizeof q, "%s/v2.h5", d);
    assert_int_equal(sh("cp '%s' '%s'", p, q), 0);
    set_attr_i64(q, "schema_version", 2);
    expect_open_fails(q, 0, L3D_EINPUT, "schema version 2, this build reads version 1");
    /* a sweep cache is not a voxel cache */
    snprintf(q, sizeof q, "%s/sweeps.h5", d);
    make_sweep_cache(q, 100, 1);
    expect_open_fails(q, 0, L3D_EINPUT, "not a lidar3d-voxel-cache");
    /* truncated: to a few bytes, and to just short of the end */
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    snprintf(q, sizeof q, "%s/cut.h5", d);
    assert_int_equal(sh("head -c 100 '%s' > '%s'", p, q), 0);
    expect_open_fails(q, 0, L3D_EINPUT, "truncated");
    assert_int_equal(sh("head -c %ld '%s' > '%s'", (long)st.st_size - 1, p, q), 0);
    expect_open_fails(q, 0, L3D_EINPUT, "truncated");
    /* a damaged small dataset fails its checksum on every open */
    snprintf(q, sizeof q, "%s/dmg.h5", d);
    assert_int_equal(sh("cp '%s' '%s'", p, q), 0);
    long off = dataset_offset(q, "voxel_offsets");
    assert_int_equal(sh("printf '\\001' | dd of='%s' bs=1 seek=%ld conv=notrunc 2>/dev/null", q,
                        off + 8),
                     0);
    expect_open_fails(q, 0, L3D_EINPUT, "'voxel_offsets' fails its checksum");
    /* a damaged voxel: found by the full check only */
    assert_int_equal(sh("cp '%s' '%s'", p, q), 0);
    off = dataset_offset(q, "voxel_points");
    assert_int_equal(sh("printf '\\177' | dd of='%s' bs=1 seek=%ld conv=notrunc 2>/dev/null", q,
                        off + 3),
                     0);
    l3d_voxel_cache c;
    l3d_err err = {0};
    assert_int_equal(l3d_voxel_cache_open(&c, q, 0, &err), 0);
    l3d_voxel_cache_close(&c);
    expect_open_fails(q, L3D_CACHE_VERIFY_ALL, L3D_EINPUT, "'voxel_points' fails its checksum");
    /* an inconsistent attribute */
    assert_int_equal(sh("cp '%s' '%s'", p, q), 0);
    set_attr_i64(q, "max_points", 4);
    expect_open_fails(q, 0, L3D_EINPUT, "voxel_points is [5,3,...], expected [V,max_points,4]");
    assert_int_equal(sh("cp '%s' '%s'", p, q), 0);
    set_attr_i64(q, "max_voxels", 2);   /* sample 0 has 3 */
    expect_open_fails(q, 0, L3D_EINPUT, "sample 0: 3 voxels");
}

/* ---- the tool ------------------------------------------------------------------ */

static void test_end_to_end(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("vc-e2e");
    char sweeps[4200], out[4200], cfgp[4200], cmd[16384];
    snprintf(sweeps, sizeof sweeps, "%s/sweeps.h5", d);
    snprintf(cfgp, sizeof cfgp, "%s/small.cfg", d);
    make_sweep_cache(sweeps, 6000, 4);
    /* a coarse grid with small caps: both overflow in every sample */
    tu_write_file(cfgp, "# test grid\npoint_cloud_range = -50 -40 -5 50 40 3\n"
                        "voxel_size = 1.5 1.25 2\nmax_points = 7\nmax_voxels = 900\n");
    l3d_voxel_config small = {{-50, -40, -5, 50, 40, 3}, {1.5f, 1.25f, 2}, 7, 900};
    l3d_voxel_config ssn = L3D_VOXEL_CONFIG_SSN;
    static const int ks[] = {0, 2, 10};
    for (size_t i = 0; i < 3; i++) {
        snprintf(out, sizeof out, "%s/v-%d.h5", d, ks[i]);
        snprintf(cmd, sizeof cmd, "'%s' -q -j 2 --sweeps %d '%s' -o '%s'", tu_tool("voxel-cache"),
                 ks[i], sweeps, out);
        expect_exit(cmd, 0, NULL);
        check_against_reference(sweeps, out, &ssn, ks[i]);
        snprintf(cmd, sizeof cmd, "'%s' -q -j 3 --config '%s' --sweeps %d '%s' -o '%s'",
                 tu_tool("voxel-cache"), cfgp, ks[i], sweeps, out);
        expect_exit(cmd, 0, NULL);
        check_against_reference(sweeps, out, &small, ks[i]);
    }
    /* the small config did overflow both caps */
    l3d_voxel_cache vc;
    l3d_err err = {0};
    assert_int_equal(l3d_voxel_cache_open(&vc, out, 0, &err), 0);
    int full = 0, capped = 0;
    for (int64_t s = 0; s < vc.n_samples; s++)
        capped += vc.voxel_offsets[s + 1] - vc.voxel_offsets[s] == 900;
    for (int64_t v = 0; v < vc.n_voxels; v++)
        full += vc.voxel_num_points[v] == 7;
    if (capped < 3 || full < 20)
        fail_msg("caps not exercised: %d samples at max_voxels, %d full voxels", capped, full);
    /* the config is recorded */
    char text[512];
    assert_int_equal(l3d_h5r_attr_str(&vc.h5, "/", "config", text, sizeof text, &err), 0);
    assert_string_equal(text, "point_cloud_range = -50 -40 -5 50 40 3\nvoxel_size = 1.5 1.25 2\n"
                              "max_points = 7\nmax_voxels = 900\n");
    assert_int_equal(l3d_h5r_attr_str(&vc.h5, "/", "sweep_transform", text, sizeof text, &err), 0);
    assert_string_equal(text, "correct");
    l3d_voxel_cache_close(&vc);
}

static void test_deterministic(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("vc-det");
    make_sweep_cache(in_dir(d, "s.h5"), 3000, 11);
    for (int j = 1; j <= 4; j++) {
        char cmd[9000];
        snprintf(cmd, sizeof cmd, "cd '%s' && '%s' -q -j %d s.h5 -o v.h5%s", d,
                 tu_tool("voxel-cache"), j,
                 j == 1 ? " && cp v.h5 first.h5" : " && cmp first.h5 v.h5");
        expect_exit(cmd, 0, NULL);
    }
}

static void test_h5dump_layout(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("vc-h5dump");
    char cmd[9000];
    make_sweep_cache(in_dir(d, "s.h5"), 500, 3);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' -q s.h5 -o v.h5", d, tu_tool("voxel-cache"));
    expect_exit(cmd, 0, NULL);
    l3d_voxel_cache vc;
    l3d_err err = {0};
    assert_int_equal(l3d_voxel_cache_open(&vc, in_dir(d, "v.h5"), 0, &err), 0);
    long long V = vc.n_voxels;
    l3d_voxel_cache_close(&vc);
    assert_true(V > 100);
    char *out = NULL;
    snprintf(cmd, sizeof cmd, "h5dump -H -p '%s/v.h5'", d);
    if (tu_run(cmd, &out, NULL) != 0)
        fail_msg("h5dump -H -p failed (is hdf5-tools installed? make deps)");
    char want[20][400];
    int n = 0;
    snprintf(want[n++], 400, "DATASET \"voxel_points\" {\n      DATATYPE  H5T_IEEE_F32LE\n      "
             "DATASPACE  SIMPLE { ( %lld, 20, 4 ) / ( %lld, 20, 4 ) }", V, V);
    snprintf(want[n++], 400, "DATASET \"voxel_num_points\" {\n      DATATYPE  H5T_STD_I32LE\n      "
             "DATASPACE  SIMPLE { ( %lld ) / ( %lld ) }", V, V);
    snprintf(want[n++], 400, "DATASET \"voxel_coords\" {\n      DATATYPE  H5T_STD_I32LE\n      "
             "DATASPACE  SIMPLE { ( %lld, 3 ) / ( %lld, 3 ) }", V, V);
    snprintf(want[n++], 400, "DATASET \"voxel_offsets\" {\n      DATATYPE  H5T_STD_I64LE\n      "
             "DATASPACE  SIMPLE { ( 6 ) / ( 6 ) }");
    snprintf(want[n++], 400, "DATASET \"sample_point_counts\" {\n      DATATYPE  H5T_STD_I64LE\n"
             "      DATASPACE  SIMPLE { ( 5, 3 ) / ( 5, 3 ) }");
    snprintf(want[n++], 400, "DATASET \"boxes\" {\n      DATATYPE  H5T_IEEE_F32LE\n      "
             "DATASPACE  SIMPLE { ( 7, 7 ) / ( 7, 7 ) }");
    snprintf(want[n++], 400, "DATASET \"box_labels\" {\n      DATATYPE  H5T_STD_I32LE\n      "
             "DATASPACE  SIMPLE { ( 7 ) / ( 7 ) }");
    snprintf(want[n++], 400, "DATASET \"box_offsets\" {\n      DATATYPE  H5T_STD_I64LE\n      "
             "DATASPACE  SIMPLE { ( 6 ) / ( 6 ) }");
    snprintf(want[n++], 400, "DATASET \"sample_tokens\" {\n      DATATYPE  H5T_STRING {\n"
             "         STRSIZE 64;\n         STRPAD H5T_STR_NULLPAD;");
    for (const char *a = "format\0schema_version\0point_cloud_range\0voxel_size\0grid_size\0"
                         "max_points\0max_voxels\0sweeps\0config\0source\0tool_version\0";
         *a; a += strlen(a) + 1)
        snprintf(want[n++], 400, "ATTRIBUTE \"%s\"", a);
    for (int i = 0; i < n; i++)
        if (!strstr(out, want[i]))
            fail_msg("h5dump -H -p lacks:\n%s\n---- it printed:\n%s", want[i], out);
    /* every dataset: contiguous, no filters, data at a page boundary */
    int datasets = 0;
    for (const char *s = strstr(out, "DATASET \""); s; s = strstr(s + 1, "DATASET \"")) {
        datasets++;
        const char *next = strstr(s + 1, "DATASET \"");
        const char *lay = strstr(s, "STORAGE_LAYOUT {\n         CONTIGUOUS");
        const char *off = strstr(s, "OFFSET ");
        const char *filt = strstr(s, "FILTERS {\n         NONE");
        if (!lay || !off || !filt || (next && (lay > next || off > next || filt > next)))
            fail_msg("dataset at '%.40s' is not contiguous, unfiltered with an offset", s);
        long long o = atoll(off + 7);
        if (o % 4096)
            fail_msg("dataset at '%.40s' starts at byte %lld, not on a 4096-byte page", s, o);
    }
    assert_int_equal(datasets, 9);
    free(out);
}

static void test_bad_input_and_usage(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("vc-usage");
    char cmd[9000], s[4200];
    snprintf(s, sizeof s, "%s/s.h5", d);
    make_sweep_cache(s, 200, 2);
    const char *vc = tu_tool("voxel-cache");
#define RUN(code, msg, ...)                                   \
    do {                                                      \
        snprintf(cmd, sizeof cmd, __VA_ARGS__);               \
        expect_exit(cmd, code, msg);                          \
    } while (0)
    RUN(2, "--sweeps '11'", "'%s' --sweeps 11 '%s' -o '%s/v.h5'", vc, s, d);
    RUN(2, "-o VOXEL_CACHE is required", "'%s' '%s'", vc, s);
    RUN(2, "no SWEEP_CACHE", "'%s' -o '%s/v.h5'", vc, d);
    RUN(2, "is the input cache", "'%s' '%s' -o '%s'", vc, s, s);
    RUN(2, "unknown or incomplete option", "'%s' --frobnicate '%s' -o '%s/v.h5'", vc, s, d);
    RUN(3, "No such file", "'%s' '%s/none.h5' -o '%s/v.h5'", vc, d, d);
    RUN(3, "config file", "'%s' --config '%s/none.cfg' '%s' -o '%s/v.h5'", vc, d, s, d);
    tu_write_file(in_dir(d, "bad.cfg"), "max_points = 20\nvoxel = 1\n");
    RUN(12, "bad.cfg:2: unknown key 'voxel'", "'%s' --config '%s/bad.cfg' '%s' -o '%s/v.h5'", vc,
        d, s, d);
    /* not a sweep cache; a sweep cache of another schema version; truncated */
    RUN(0, NULL, "'%s' -q '%s' -o '%s/v.h5'", vc, s, d);
    RUN(12, "not a lidar3d-sweep-cache", "'%s' '%s/v.h5' -o '%s/w.h5'", vc, d, d);
    snprintf(cmd, sizeof cmd, "%s/s9.h5", d);
    assert_int_equal(sh("cp '%s' '%s'", s, cmd), 0);
    set_attr_i64(cmd, "schema_version", 9);
    RUN(12, "schema version 9", "'%s' '%s/s9.h5' -o '%s/w.h5'", vc, d, d);
    assert_int_equal(sh("head -c 5000 '%s' > '%s/cut.h5'", s, d), 0);
    RUN(12, "truncated", "'%s' '%s/cut.h5' -o '%s/w.h5'", vc, d, d);
    assert_int_equal(sh("test ! -e '%s/w.h5' && test ! -e '%s/w.h5.tmp'", d, d), 0);
    /* --print-config */
    char *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' --print-config", vc);
    assert_int_equal(tu_run(cmd, &out, NULL), 0);
    assert_string_equal(out, "point_cloud_range = -100 -100 -5 100 100 3\n"
                             "voxel_size = 0.25 0.25 8\nmax_points = 20\nmax_voxels = 60000\n");
    free(out);
    tu_write_file(in_dir(d, "few.cfg"), "max_voxels = 16000\n");
    snprintf(cmd, sizeof cmd, "'%s' --print-config --config '%s/few.cfg'", vc, d);
    assert_int_equal(tu_run(cmd, &out, NULL), 0);
    assert_non_null(strstr(out, "max_voxels = 16000\n"));
    free(out);
#undef RUN
}

static void test_disk_full(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("vc-full");
    char s[4200];
    snprintf(s, sizeof s, "%s/s.h5", d);
    make_sweep_cache(s, 4000, 3);   /* a voxel cache of several MB */
    if (sh("mkdir -p '%s/small' && mount -t tmpfs -o size=256k tmpfs '%s/small' 2>/dev/null", d,
           d)) {
        printf("skipped: cannot mount a small tmpfs (needs root)\n");
        return;
    }
    tu_write_file(in_dir(d, "small/v.h5"), "the old cache\n");
    char cmd[9000], *err = NULL;
    snprintf(cmd, sizeof cmd, "'%s' '%s' -o '%s/small/v.h5'", tu_tool("voxel-cache"), s, d);
    int rc = tu_run(cmd, NULL, &err);
    char *old = tu_read_file(in_dir(d, "small/v.h5"), NULL);
    int only_old = sh("test \"$(ls -A '%s/small')\" = v.h5", d);
    sh("umount '%s/small'", d);
    if (rc != 3 || !err || !strstr(err, "disk full"))
        fail_msg("disk full: exit %d, stderr: %s", rc, err ? err : "");
    assert_non_null(old);
    assert_string_equal(old, "the old cache\n");   /* the old output survives */
    assert_int_equal(only_old, 0);                 /* and no temporary file is left */
    free(old);
    free(err);

    /* the same on ext4, where the rows go with O_DIRECT (tmpfs refuses it) */
    if (sh("truncate -s 4M '%s/ext4.img' && mkfs.ext4 -q -F '%s/ext4.img' >/dev/null 2>&1 && "
           "mkdir -p '%s/ext4' && mount -o loop '%s/ext4.img' '%s/ext4' 2>/dev/null",
           d, d, d, d, d)) {
        printf("skipped: cannot mount a small ext4 image (needs root, mkfs.ext4, loop devices)\n");
        return;
    }
    snprintf(cmd, sizeof cmd, "'%s' '%s' -o '%s/ext4/v.h5'", tu_tool("voxel-cache"), s, d);
    err = NULL;
    rc = tu_run(cmd, NULL, &err);
    int empty = sh("test \"$(ls -A '%s/ext4')\" = lost+found", d);
    sh("umount '%s/ext4'", d);
    if (rc != 3 || !err || !strstr(err, "disk full"))
        fail_msg("disk full (ext4): exit %d, stderr: %s", rc, err ? err : "");
    assert_int_equal(empty, 0);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),          cmocka_unit_test(test_write_read),
        cmocka_unit_test(test_writer_misuse),   cmocka_unit_test(test_reader_rejects),
        cmocka_unit_test(test_end_to_end),      cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_h5dump_layout),   cmocka_unit_test(test_bad_input_and_usage),
        cmocka_unit_test(test_disk_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
