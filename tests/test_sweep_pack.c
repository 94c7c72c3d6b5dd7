/* sweep-pack and the sweep cache: hand-computed merged clouds, each scan stored
 * once, the 0/5/10 views, determinism, folder = archive, real data against a
 * double-precision reference, layout via h5dump, and every bad input. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "formats/index_line.h"
#include "formats/sweep_cache.h"
#include "tests/support/testutil.h"

static int sh(const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

/* tiny dataset -> index -> cache; returns the cache path */
static const char *tiny_cache(const char *extra)
{
    static char cache[4200];
    const char *d = tu_tmpdir("pack");
    tu_write_tiny(d, "train_data", "train_lidar", "train_lidar");
    snprintf(cache, sizeof cache, "%s/sweeps.h5", d);
    if (sh("'%s' -q '%s' > '%s/index.jsonl' && '%s' -q %s '%s/index.jsonl' -o '%s'",
           tu_tool("lyft-index"), d, d, tu_tool("sweep-pack"), extra, d, cache))
        fail_msg("packing the tiny dataset failed");
    return cache;
}

static void open_cache(l3d_sweep_cache *c, const char *path, int flags)
{
    l3d_err err = {0};
    if (l3d_sweep_cache_open(c, path, flags, &err))
        fail_msg("%s", err.msg);
}

static void test_tiny_merged_clouds(void **state)
{
    (void)state;
    l3d_sweep_cache c;
    open_cache(&c, tiny_cache(""), L3D_CACHE_VERIFY_ALL);
    assert_int_equal(c.n_samples, 4);
    assert_int_equal(c.n_scans, 4);          /* each scan once, though used 7 times */
    assert_int_equal(c.n_points, 8);
    assert_int_equal(c.n_boxes, 1);
    assert_int_equal(c.n_scenes, 2);
    assert_string_equal(c.sample_tokens + 2 * L3D_CACHE_TOKEN, "smp2");
    assert_string_equal(c.scene_names + L3D_CACHE_NAME, "scene-two");
    /* smp2: key frame, then the sweep sensors 10 m and 20 m behind (LiDAR x backwards) */
    float want[6][4] = {{1, 2, 3, 0},   {-4, 5, -6, 0},    {11, 2, 3, 0.2f},
                        {6, 5, -6, 0.2f}, {21, 2, 3, 0.4f}, {16, 5, -6, 0.4f}};
    int counts[] = {2, 4, 6, 6};
    for (int k = 0; k < 4; k++) {
        int sweeps = k == 3 ? 10 : k;
        assert_int_equal(l3d_sweep_cache_merged_count(&c, 2, sweeps), counts[k]);
        float out[6 * 4];
        assert_int_equal(l3d_sweep_cache_merge(&c, 2, sweeps, 0, out), counts[k]);
        for (int i = 0; i < counts[k]; i++)
            for (int a = 0; a < 4; a++)
                if (fabsf(out[4 * i + a] - want[i][a]) > (a < 3 ? 1.0f / 256 + 1e-6f : 1e-6f))
                    fail_msg("sweeps %d point %d col %d: %g vs %g", sweeps, i, a, out[4 * i + a],
                             want[i][a]);
    }
    /* the car: label of "car" in SSN order, box in smp2 */
    assert_int_equal(c.box_offsets[2], 0);
    assert_int_equal(c.box_offsets[3], 1);
    assert_int_equal(c.box_labels[0], 4);
    assert_true(fabsf(c.boxes[0] + 4) < 1e-6f && fabsf(c.boxes[6] - (float)(0.5 - M_PI)) < 1e-6f);
    assert_true(c.sample_ego2global[2 * 7] == 20 && c.sample_lidar2ego[2 * 7 + 6] == 1);
    l3d_sweep_cache_close(&c);
}

static void test_float32_intensity_and_pread(void **state)
{
    (void)state;
    const char *path = tiny_cache("--no-quantize --intensity");
    setenv("LIDAR3D_NO_MMAP", "1", 1);
    l3d_sweep_cache c;
    open_cache(&c, path, L3D_CACHE_VERIFY_ALL);
    unsetenv("LIDAR3D_NO_MMAP");
    assert_false(c.quantised);
    assert_null(c.h5.map);
    assert_non_null(c.intensity);
    float out[6 * 5];
    assert_int_equal(l3d_sweep_cache_merge(&c, 2, 10, 1, out), 6);
    assert_true(out[4 * 5 + 0] == 21 && fabsf(out[4 * 5 + 3] - 0.4f) < 1e-6f && out[4 * 5 + 4] == 100);
    l3d_sweep_cache_close(&c);
    /* the dump command prints the same */
    char *out_text = NULL, cmd[8400];
    snprintf(cmd, sizeof cmd, "'%s' --dump smp2 --sweeps 1 --intensity '%s'", tu_tool("sweep-pack"), path);
    assert_int_equal(tu_run(cmd, &out_text, NULL), 0);
    /* the lag is a difference of second-valued doubles, stored as float32 */
    char want[256];
    float lag = (float)(1000000000400000.0 / 1e6 - 1000000000200000.0 / 1e6);   /* smp2 - sd1 */
    snprintf(want, sizeof want, "1 2 3 0 100\n-4 5 -6 0 100\n11 2 3 %.9g 100\n6 5 -6 %.9g 100\n", lag, lag);
    assert_string_equal(out_text, want);
    free(out_text);
}

static void test_mmdet_transform_option(void **state)
{
    (void)state;
    const char *d = tu_shared_data("lyft-scene");
    if (!d)
        return;
    const char *o = tu_tmpdir("mmdet");
    assert_int_equal(sh("'%s' -q --sweeps 2 '%s' | head -5 > '%s/i.jsonl' && "
                        "'%s' -q --sweep-transform mmdet3d-1.x '%s/i.jsonl' -o '%s/m.h5' && "
                        "'%s' -q '%s/i.jsonl' -o '%s/c.h5'",
                        tu_tool("lyft-index"), d, o, tu_tool("sweep-pack"), o, o,
                        tu_tool("sweep-pack"), o, o), 0);
    char p[4200];
    snprintf(p, sizeof p, "%s/i.jsonl", o);
    char *text = tu_read_file(p, NULL), *save, *line = strtok_r(text, "\n", &save);
    l3d_index_line l;
    l3d_index_line_init(&l);
    for (int i = 0; i < 4; i++)
        line = strtok_r(NULL, "\n", &save);
    l3d_err err = {0};
    assert_int_equal(l3d_index_line_parse(line, "i", 5, &l, &err), 0);
    l3d_sweep_cache m, c;
    snprintf(p, sizeof p, "%s/m.h5", o);
    open_cache(&m, p, 0);
    snprintf(p, sizeof p, "%s/c.h5", o);
    open_cache(&c, p, 0);
    for (int j = 0; j < 2; j++) {
        const double *R = l.sweeps[j].rotation, *T = l.sweeps[j].translation;
        const double *Mm = m.sample_transforms + (4 * 11 + j + 1) * 16;
        const double *Mc = c.sample_transforms + (4 * 11 + j + 1) * 16;
        for (int a = 0; a < 3; a++) {
            double rt = R[a] * T[0] + R[3 + a] * T[1] + R[6 + a] * T[2];   /* Rᵀ·T */
            assert_true(fabs(Mm[4 * a + 3] - rt) < 1e-12);
            assert_true(Mc[4 * a + 3] == T[a]);
            for (int b = 0; b < 3; b++)
                assert_true(Mm[4 * a + b] == R[3 * a + b]);
        }
    }
    l3d_sweep_cache_close(&m);
    l3d_sweep_cache_close(&c);
    l3d_index_line_free(&l);
    free(text);
}

/* Real data: every scan once, its point count = file size / 20, and the merged
 * 10-sweep cloud within quantisation error of a double-precision reference
 * computed from the raw files and the index line. */
static void test_lyft_scene_against_reference(void **state)
{
    (void)state;
    const char *d = tu_shared_data("lyft-scene");
    if (!d)
        return;
    const char *o = tu_tmpdir("scene");
    assert_int_equal(sh("'%s' -q '%s' > '%s/i.jsonl' && '%s' -q -j 2 '%s/i.jsonl' -o '%s/s.h5'",
                        tu_tool("lyft-index"), d, o, tu_tool("sweep-pack"), o, o), 0);
    char p[4200];
    snprintf(p, sizeof p, "%s/s.h5", o);
    l3d_sweep_cache c;
    open_cache(&c, p, L3D_CACHE_VERIFY_ALL);
    assert_int_equal(c.n_samples, 40);
    assert_int_equal(c.n_scans, 40);
    snprintf(p, sizeof p, "%s/i.jsonl", o);
    char *text = tu_read_file(p, NULL), *save, *line = strtok_r(text, "\n", &save);
    l3d_index_line l;
    l3d_index_line_init(&l);
    for (int s = 0; s < 40; s++, line = strtok_r(NULL, "\n", &save)) {
        l3d_err err = {0};
        assert_int_equal(l3d_index_line_parse(line, "i", s + 1, &l, &err), 0);
        int32_t scan = c.sample_scans[s * L3D_SLOTS];
        assert_int_equal(c.scan_offsets[scan + 1] - c.scan_offsets[scan], l.lidar.num_points);
        if (s != 39 && s != 12)
            continue;
        int64_t n = l3d_sweep_cache_merged_count(&c, s, 10);
        float *got = malloc((size_t)n * 4 * sizeof *got);
        assert_int_equal(l3d_sweep_cache_merge(&c, s, 10, 0, got), n);
        int64_t w = 0;
        double worst = 0;
        for (int j = 0; j <= l.n_sweeps; j++) {
            const l3d_lidar_file *f = j ? &l.sweeps[j - 1].lidar : &l.lidar;
            char bin[8400];
            snprintf(bin, sizeof bin, "%s/%s", l.root, f->path);
            size_t bytes;
            float *raw = (float *)tu_read_file(bin, &bytes);
            for (size_t i = 0; i < bytes / 20; i++, w++) {
                double q[3] = {raw[5 * i], raw[5 * i + 1], raw[5 * i + 2]}, r[3];
                for (int a = 0; a < 3; a++)
                    r[a] = j ? l.sweeps[j - 1].rotation[3 * a] * q[0] +
                                   l.sweeps[j - 1].rotation[3 * a + 1] * q[1] +
                                   l.sweeps[j - 1].rotation[3 * a + 2] * q[2] +
                                   l.sweeps[j - 1].translation[a]
                             : q[a];
                for (int a = 0; a < 3; a++) {
                    double e = fabs(got[4 * w + a] - r[a]);
                    worst = e > worst ? e : worst;
                }
                double lag = j ? l.sweeps[j - 1].time_lag : 0;
                assert_true(fabs(got[4 * w + 3] - lag) < 1e-7);
            }
            free(raw);
        }
        assert_int_equal(w, n);
        /* rounding to the 1/128 m grid moves a coordinate by at most 1/256 m,
         * and a rotation mixes three such errors: |R e| <= sqrt(3)/256 */
        if (worst > sqrt(3.0) / 256 + 1e-4)
            fail_msg("sample %d: worst error %g m", s, worst);
        free(got);
    }
    l3d_index_line_free(&l);
    free(text);
    /* the same from a tar of the folder: identical datasets */
    assert_int_equal(sh("cd '%s' && tar cf '%s/s.tar' train_data train_lidar && "
                        "'%s' -q '%s/s.tar' > '%s/t.jsonl' && '%s' -q '%s/t.jsonl' -o '%s/t.h5' && "
                        "h5diff '%s/s.h5' '%s/t.h5' scan_points && h5diff '%s/s.h5' '%s/t.h5' sample_transforms &&"
                        "h5diff '%s/s.h5' '%s/t.h5' scan_offsets",
                        d, o, tu_tool("lyft-index"), o, o, tu_tool("sweep-pack"), o, o, o, o, o,
                        o, o, o), 0);
    l3d_sweep_cache_close(&c);
    sh("rm -rf '%s'", o);
}

static void test_deterministic_and_layout(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("det");
    tu_write_tiny(d, "train_data", "train_lidar", "train_lidar");
    assert_int_equal(sh("cd '%s' && '%s' -q . > i.jsonl && '%s' -q -j 1 i.jsonl -o c.h5 && cp c.h5 a.h5"
                        " && '%s' -q -j 1 i.jsonl -o c.h5 && cmp a.h5 c.h5",
                        d, tu_tool("lyft-index"), tu_tool("sweep-pack"), tu_tool("sweep-pack")), 0);
    char *out = NULL, cmd[8400];
    snprintf(cmd, sizeof cmd, "h5dump -H '%s/c.h5'", d);
    if (tu_run(cmd, &out, NULL) != 0) {
        printf("skipped: h5dump not installed (hdf5-tools)\n");
        free(out);
        return;
    }
    const char *expect[] = {
        "DATASET \"scan_points\" {\n      DATATYPE  H5T_STD_I16LE\n      DATASPACE  SIMPLE { ( 8, 3 ) / ( 8, 3 ) }",
        "DATASET \"scan_offsets\" {\n      DATATYPE  H5T_STD_I64LE\n      DATASPACE  SIMPLE { ( 5 ) / ( 5 ) }",
        "DATASET \"sample_scans\" {\n      DATATYPE  H5T_STD_I32LE\n      DATASPACE  SIMPLE { ( 4, 11 ) / ( 4, 11 ) }",
        "DATASET \"sample_transforms\" {\n      DATATYPE  H5T_IEEE_F64LE\n      DATASPACE  SIMPLE { ( 4, 11, 4, 4 ) / ( 4, 11, 4, 4 ) }",
        "DATASET \"sample_time_lags\" {\n      DATATYPE  H5T_IEEE_F32LE\n      DATASPACE  SIMPLE { ( 4, 11 ) / ( 4, 11 ) }",
        "DATASET \"boxes\" {\n      DATATYPE  H5T_IEEE_F32LE\n      DATASPACE  SIMPLE { ( 1, 7 ) / ( 1, 7 ) }",
        "DATASET \"box_labels\" {\n      DATATYPE  H5T_STD_I32LE\n      DATASPACE  SIMPLE { ( 1 ) / ( 1 ) }",
        "DATASET \"box_offsets\" {\n      DATATYPE  H5T_STD_I64LE\n      DATASPACE  SIMPLE { ( 5 ) / ( 5 ) }",
        "DATASET \"sample_tokens\" {\n      DATATYPE  H5T_STRING {\n         STRSIZE 64;",
        "ATTRIBUTE \"scale_factor\"",
        "ATTRIBUTE \"schema_version\"",
    };
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++)
        if (!strstr(out, expect[i]))
            fail_msg("h5dump -H lacks:\n%s", expect[i]);
    free(out);
}

static void test_shards_and_merge(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("shard");
    tu_write_tiny(d, "train_data", "train_lidar", "train_lidar");
    assert_int_equal(sh("cd '%s' && '%s' -q . > i.jsonl && '%s' -q i.jsonl -o all.h5 && "
                        "'%s' -q --shard 0/2 i.jsonl -o s0.h5 && '%s' -q --shard 1/2 i.jsonl -o s1.h5 && "
                        "'%s' -q --merge s0.h5 s1.h5 -o m.h5",
                        d, tu_tool("lyft-index"), tu_tool("sweep-pack"), tu_tool("sweep-pack"),
                        tu_tool("sweep-pack"), tu_tool("sweep-pack")), 0);
    l3d_sweep_cache a, b, m;
    char p[4200];
    snprintf(p, sizeof p, "%s/s0.h5", d);
    open_cache(&a, p, 0);
    snprintf(p, sizeof p, "%s/s1.h5", d);
    open_cache(&b, p, 0);
    assert_int_equal(a.n_samples, 3);   /* scene-one */
    assert_int_equal(b.n_samples, 1);   /* scene-two */
    assert_int_equal(b.n_scans, 1);
    l3d_sweep_cache_close(&a);
    l3d_sweep_cache_close(&b);
    /* the merge of the shards is the whole cache */
    snprintf(p, sizeof p, "%s/m.h5", d);
    open_cache(&m, p, L3D_CACHE_VERIFY_ALL);
    snprintf(p, sizeof p, "%s/all.h5", d);
    open_cache(&a, p, 0);
    assert_int_equal(m.n_samples, a.n_samples);
    assert_int_equal(m.n_scans, a.n_scans);
    assert_memory_equal(m.points_q, a.points_q, (size_t)a.n_points * 6);
    assert_memory_equal(m.sample_scans, a.sample_scans, (size_t)a.n_samples * L3D_SLOTS * 4);
    assert_memory_equal(m.sample_transforms, a.sample_transforms, (size_t)a.n_samples * L3D_SLOTS * 128);
    assert_memory_equal(m.box_offsets, a.box_offsets, (size_t)(a.n_samples + 1) * 8);
    assert_memory_equal(m.scene_names, a.scene_names, (size_t)a.n_scenes * L3D_CACHE_NAME);
    l3d_sweep_cache_close(&a);
    l3d_sweep_cache_close(&m);
    /* overlapping inputs are refused */
    char cmd[9000], *err = NULL;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' --merge s0.h5 all.h5 -o bad.h5", d, tu_tool("sweep-pack"));
    assert_int_equal(tu_run(cmd, NULL, &err), 12);
    assert_non_null(strstr(err, "is in more than one input"));
    free(err);
}

static void expect_exit(const char *cmd, int code, const char *needle)
{
    char *err = NULL;
    int rc = tu_run(cmd, NULL, &err);
    if (rc != code || !strstr(err, needle))
        fail_msg("%s: exit %d (expected %d), stderr '%s' (expected '%s')", cmd, rc, code, err, needle);
    free(err);
}

static void test_bad_input(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("bad");
    tu_write_tiny(d, "train_data", "train_lidar", "train_lidar");
    char cmd[9000];
    assert_int_equal(sh("'%s' -q '%s' > '%s/i.jsonl'", tu_tool("lyft-index"), d, d), 0);
    /* index line with a missing field, on line 3 */
    assert_int_equal(sh("cd '%s' && sed '3s/\"timestamp\"/\"tmestamp\"/' i.jsonl > bad.jsonl", d), 0);
    snprintf(cmd, sizeof cmd, "'%s' '%s/bad.jsonl' -o '%s/x.h5'", tu_tool("sweep-pack"), d, d);
    expect_exit(cmd, 5, "bad.jsonl: line 3: field 'timestamp' is missing");
    assert_int_equal(sh("cd '%s' && sed '2s/\"num_points\":2/\"num_points\":\"2\"/' i.jsonl > bad2.jsonl", d), 0);
    snprintf(cmd, sizeof cmd, "'%s' '%s/bad2.jsonl' -o '%s/x.h5'", tu_tool("sweep-pack"), d, d);
    expect_exit(cmd, 5, "line 2: field 'num_points'");
    snprintf(cmd, sizeof cmd, "printf 'not json\\n' | '%s' -o '%s/x.h5'", tu_tool("sweep-pack"), d);
    expect_exit(cmd, 4, "<stdin>: line 1: malformed JSON");
    /* a truncated scan (fewer points than the index promised) */
    assert_int_equal(sh("cd '%s' && head -c 20 train_lidar/host-a000_lidar1_1.bin > t && mv t train_lidar/host-a000_lidar1_1.bin", d), 0);
    snprintf(cmd, sizeof cmd, "'%s' '%s/i.jsonl' -o '%s/x.h5'", tu_tool("sweep-pack"), d, d);
    expect_exit(cmd, 12, "host-a000_lidar1_1.bin: truncated: 20 bytes, but the index (line 2) promised 2 points");
    /* a missing scan */
    assert_int_equal(sh("rm '%s/train_lidar/host-a000_lidar1_1.bin'", d), 0);
    expect_exit(cmd, 8, "host-a000_lidar1_1.bin: No such file or directory");
    assert_int_equal(sh("ls '%s' | grep -q 'x.h5'", d) != 0, 1);  /* nothing half-written */
    /* non-finite points: dropped, counted, reported */
    float pts[15] = {1, 2, 3, 100, 1, NAN, 5, -6, 100, 1, 7, INFINITY, 9, 100, 1};
    char p[4200];
    snprintf(p, sizeof p, "%s/train_lidar/host-a000_lidar1_1.bin", d);
    tu_write_bytes(p, pts, sizeof pts);
    assert_int_equal(sh("'%s' -q '%s' > '%s/i2.jsonl'", tu_tool("lyft-index"), d, d), 0);
    char *err = NULL;
    snprintf(cmd, sizeof cmd, "'%s' '%s/i2.jsonl' -o '%s/x.h5'", tu_tool("sweep-pack"), d, d);
    assert_int_equal(tu_run(cmd, NULL, &err), 0);
    assert_non_null(strstr(err, "host-a000_lidar1_1.bin: dropped 2 points with non-finite values"));
    assert_non_null(strstr(err, "dropped 2 non-finite"));
    free(err);
    l3d_sweep_cache c;
    snprintf(p, sizeof p, "%s/x.h5", d);
    open_cache(&c, p, 0);
    assert_int_equal(c.n_points, 7);
    l3d_sweep_cache_close(&c);
    /* usage */
    snprintf(cmd, sizeof cmd, "'%s' '%s/i.jsonl'", tu_tool("sweep-pack"), d);
    expect_exit(cmd, 2, "no output: give -o");
    snprintf(cmd, sizeof cmd, "'%s' --shard 3/2 '%s/i.jsonl' -o x", tu_tool("sweep-pack"), d);
    expect_exit(cmd, 2, "--shard '3/2'");
    char *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' --help", tu_tool("sweep-pack"));
    assert_int_equal(tu_run(cmd, &out, NULL), 0);
    assert_non_null(strstr(out, "position % N == I"));   /* printed as is, not by printf */
    free(out);
}

static void test_bad_caches(void **state)
{
    (void)state;
    const char *path = tiny_cache("");
    char dir[4200], p[4300], cmd[9000];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = 0;
    l3d_sweep_cache c;
    l3d_err err = {0};
    /* truncated: an error before any dataset is touched */
    snprintf(p, sizeof p, "%s/cut.h5", dir);
    sh("head -c 5000 '%s' > '%s'", path, p);
    assert_int_not_equal(l3d_sweep_cache_open(&c, p, 0, &err), 0);
    if (!strstr(err.msg, "truncated"))
        fail_msg("%s", err.msg);
    /* not HDF5 at all */
    snprintf(p, sizeof p, "%s/index.jsonl", dir);
    assert_int_equal(l3d_sweep_cache_open(&c, p, 0, &err), L3D_EINPUT);
    assert_non_null(strstr(err.msg, "not an HDF5 file"));
    /* another schema version */
    snprintf(p, sizeof p, "%s/v2.h5", dir);
    sh("cp '%s' '%s' && h5modify() { :; }", path, p);
    if (sh("command -v h5py >/dev/null; python3 -c 1 2>/dev/null") == 0 &&
        sh("python3 -c \"import h5py; f=h5py.File('%s','r+'); f.attrs['schema_version']=2\" 2>/dev/null", p) == 0) {
        assert_int_equal(l3d_sweep_cache_open(&c, p, 0, &err), L3D_EINPUT);
        assert_non_null(strstr(err.msg, "schema version 2, this build reads version 1"));
    } else {
        printf("skipped: schema-version case needs h5py to rewrite an attribute\n");
    }
    /* a damaged point: found by the full checksum */
    snprintf(p, sizeof p, "%s/flip.h5", dir);
    sh("cp '%s' '%s'", path, p);
    assert_int_equal(l3d_sweep_cache_open(&c, p, 0, &err), 0);
    long off = (long)((const char *)c.points_q - (const char *)c.h5.map);
    l3d_sweep_cache_close(&c);
    snprintf(cmd, sizeof cmd, "printf '\\177' | dd of='%s' bs=1 seek=%ld conv=notrunc 2>/dev/null", p, off);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(l3d_sweep_cache_open(&c, p, 0, &err), 0);   /* quick open: not checked */
    l3d_sweep_cache_close(&c);
    assert_int_equal(l3d_sweep_cache_open(&c, p, L3D_CACHE_VERIFY_ALL, &err), L3D_EINPUT);
    assert_non_null(strstr(err.msg, "'scan_points' fails its checksum"));
}

static void test_disk_full(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("full");
    tu_write_tiny(d, "train_data", "train_lidar", "train_lidar");
    if (sh("mkdir -p '%s/small' && mount -t tmpfs -o size=12k tmpfs '%s/small' 2>/dev/null", d, d)) {
        printf("skipped: cannot mount a small tmpfs (needs root)\n");
        return;
    }
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "'%s' -q '%s' | '%s' -o '%s/small/c.h5'", tu_tool("lyft-index"), d,
             tu_tool("sweep-pack"), d);
    expect_exit(cmd, 3, "disk full");
    int leftovers = sh("test -z \"$(ls -A '%s/small')\"", d);
    sh("umount '%s/small'", d);
    assert_int_equal(leftovers, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_merged_clouds),
        cmocka_unit_test(test_float32_intensity_and_pread),
        cmocka_unit_test(test_mmdet_transform_option),
        cmocka_unit_test(test_lyft_scene_against_reference),
        cmocka_unit_test(test_deterministic_and_layout),
        cmocka_unit_test(test_shards_and_merge),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_bad_caches),
        cmocka_unit_test(test_disk_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
