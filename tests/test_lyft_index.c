/* lyft-index end to end on a hand-made dataset whose every number is known:
 * layouts, archives, splits, sweeps, boxes, and each bad input's message and
 * exit code. Real Lyft data is covered in test_real_data.c. */
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

#include "formats/index_line.h"
#include "tests/support/testutil.h"

static void replace_in(const char *dir, const char *rel, const char *from, const char *to)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    char *s = tu_read_file(p, NULL);
    assert_non_null(s);
    char *at = strstr(s, from);
    if (!at)
        fail_msg("'%s' not in %s", from, p);
    size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
    char *o = malloc(n);
    snprintf(o, n, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
    tu_write_file(p, o);
    free(s);
    free(o);
}

/* the hand-made dataset: see tu_write_tiny in tests/support/testutil.h */
static const char *tiny(void)
{
    const char *d = tu_tmpdir("tiny");
    tu_write_tiny(d, "train_data", "train_lidar", "train_lidar");
    return d;
}

/* ---- running the tool and reading its lines ---------------------------- */

typedef struct result {
    int rc;
    char *out, *err;
    int n;
    l3d_index_line lines[8];
} result;

static void run(result *r, const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s", tu_tool("lyft-index"), args);
    memset(r, 0, sizeof *r);
    r->rc = tu_run(cmd, &r->out, &r->err);
    char *save, *line = r->out && r->out[0] == '{' ? strtok_r(r->out, "\n", &save) : NULL;
    while (line && r->n < 8) {
        l3d_err err = {0};
        l3d_index_line_init(&r->lines[r->n]);
        if (l3d_index_line_parse(line, "stdout", r->n + 1, &r->lines[r->n], &err))
            fail_msg("cannot read back line %d: %s", r->n + 1, err.msg);
        r->n++;
        line = strtok_r(NULL, "\n", &save);
    }
}

static void done(result *r)
{
    for (int i = 0; i < r->n; i++)
        l3d_index_line_free(&r->lines[i]);
    free(r->out);
    free(r->err);
}

static void expect_failure(const char *args, int code, const char *needle)
{
    result r;
    run(&r, args);
    if (r.rc != code)
        fail_msg("lyft-index %s: exit %d, expected %d; stderr: %s", args, r.rc, code, r.err);
    if (!strstr(r.err, needle))
        fail_msg("lyft-index %s: stderr '%s' lacks '%s'", args, r.err, needle);
    done(&r);
}

static void near(double a, double b, double tol)
{
    if (fabs(a - b) > tol)
        fail_msg("%.17g differs from %.17g by more than %g", a, b, tol);
}

/* ---- tests ------------------------------------------------------------ */

static void test_values_and_order(void **state)
{
    (void)state;
    const char *d = tiny();
    result r;
    char args[4200];
    snprintf(args, sizeof args, "'%s'", d);
    run(&r, args);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.n, 4);
    /* scene order, then time order */
    assert_string_equal(r.lines[0].token, "smp0");
    assert_string_equal(r.lines[1].token, "smp1");
    assert_string_equal(r.lines[2].token, "smp2");
    assert_string_equal(r.lines[3].token, "smp3");
    assert_string_equal(r.lines[3].scene_name, "scene-two");
    char *real = realpath(d, NULL);
    assert_string_equal(r.lines[0].root, real);
    free(real);
    const l3d_index_line *l = &r.lines[2];
    assert_string_equal(l->lidar.path, "train_lidar/host-a000_lidar1_2.bin");
    assert_int_equal(l->lidar.num_points, 2);
    assert_true(l->timestamp == 1000000000400000.0);
    assert_int_equal(r.lines[0].n_sweeps, 0);
    assert_int_equal(r.lines[1].n_sweeps, 1);
    assert_int_equal(l->n_sweeps, 2);
    assert_false(l->sweeps_missing);
    /* nearest first; the sweep sensors sat 10 and 20 m behind, LiDAR x backwards */
    assert_string_equal(l->sweeps[0].sample_data_token, "sd1");
    assert_string_equal(l->sweeps[1].sample_data_token, "sd0");
    for (int k = 0; k < 2; k++) {
        near(l->sweeps[k].translation[0], 10.0 * (k + 1), 1e-12);
        near(l->sweeps[k].translation[1], 0, 1e-12);
        near(l->sweeps[k].translation[2], 0, 1e-12);
        for (int i = 0; i < 9; i++)
            near(l->sweeps[k].rotation[i], i % 4 == 0, 1e-12);
        near(l->sweeps[k].time_lag, 0.2 * (k + 1), 1e-6);
    }
    assert_true(l->annotated);
    assert_int_equal(l->n_boxes, 1);
    double want[7] = {-4, -3, -1, 4.5, 2, 1.7, 0.5 - M_PI};
    for (int i = 0; i < 7; i++)
        near(l->gt_boxes[i], want[i], 1e-9);
    assert_string_equal(l->gt_names[0], "car");
    assert_string_equal(l->gt_tokens[0], "ann1");
    assert_int_equal(l->num_lidar_pts[0], 7);
    assert_int_equal(r.lines[0].n_boxes, 0);
    done(&r);

    snprintf(args, sizeof args, "--sweeps 1 '%s'", d);
    run(&r, args);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.lines[2].n_sweeps, 1);
    done(&r);
    snprintf(args, sizeof args, "--sweeps 0 '%s'", d);
    run(&r, args);
    assert_int_equal(r.lines[2].n_sweeps, 0);
    done(&r);
}

/* Output lines of two runs, with the "root" field removed. */
static char *without_root(const char *out)
{
    char *s = strdup(out ? out : ""), *p;
    while ((p = strstr(s, "\"root\":\""))) {
        char *end = strchr(p + 8, '"');
        memmove(p, end + 2, strlen(end + 2) + 1);
    }
    return s;
}

static void same_as_folder(const char *folder_args, const char *other_args)
{
    result a, b;
    run(&a, folder_args);
    run(&b, other_args);
    if (a.rc || b.rc)
        fail_msg("exit %d / %d: %s %s", a.rc, b.rc, a.err, b.err);
    assert_int_equal(a.n, b.n);
    char *x = without_root(a.out), *y = without_root(b.out);
    if (strcmp(x, y) != 0)
        fail_msg("lyft-index %s and %s differ", folder_args, other_args);
    free(x);
    free(y);
    done(&a);
    done(&b);
}

static void test_layouts(void **state)
{
    (void)state;
    const char *d = tiny();
    char base[4200], args[4200];
    snprintf(base, sizeof base, "'%s'", d);
    /* MMDetection3D layout, given as the top folder or as v1.01-train */
    const char *m = tu_tmpdir("mmdet");
    tu_write_tiny(m, "v1.01-train/v1.01-train", "v1.01-train/lidar", "lidar");
    result r;
    snprintf(args, sizeof args, "'%s'", m);
    run(&r, args);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.n, 4);
    assert_string_equal(r.lines[2].lidar.path, "lidar/host-a000_lidar1_2.bin");
    done(&r);
    char args2[4200];
    snprintf(args2, sizeof args2, "'%s/v1.01-train'", m);
    same_as_folder(args, args2);
    /* a table folder with a bare lidar/ sibling, names prefixed train_lidar/ */
    const char *b = tu_tmpdir("bare");
    tu_write_tiny(b, "tables", "lidar", "train_lidar");
    snprintf(args, sizeof args, "'%s/tables'", b);
    run(&r, args);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.lines[2].lidar.path, "lidar/host-a000_lidar1_2.bin");
    done(&r);
    (void)base;
}

static void test_archives_index_like_the_folder(void **state)
{
    (void)state;
    const char *d = tiny(), *a = tu_tmpdir("arch");
    char cmd[9000], folder[4200], args[4200];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && tar cf '%s/all.tar' train_data train_lidar && "
             "tar czf '%s/all.tar.gz' train_data train_lidar && "
             "zip -qr '%s/all.zip' train_data train_lidar && "
             "zip -qr '%s/train_data.zip' train_data && zip -qr '%s/train_lidar.zip' train_lidar",
             d, a, a, a, a, a);
    assert_int_equal(system(cmd), 0);
    snprintf(folder, sizeof folder, "'%s'", d);
    const char *forms[] = {"all.tar", "all.tar.gz", "all.zip"};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "'%s/%s'", a, forms[i]);
        same_as_folder(folder, args);
    }
    snprintf(args, sizeof args, "'%s/train_data.zip' '%s/train_lidar.zip'", a, a);
    same_as_folder(folder, args);
    result r;
    run(&r, args);
    char want[4200];
    snprintf(want, sizeof want, "%s/train_lidar.zip", a);
    char *real = realpath(want, NULL);
    assert_string_equal(r.lines[0].root, real);
    free(real);
    done(&r);
    /* damaged archives */
    snprintf(cmd, sizeof cmd, "f='%s/all.tar.gz'; head -c $(( $(stat -c %%s $f) / 2 )) $f > '%s/cut.tar.gz' && "
             "cp '%s/all.zip' '%s/bad.zip' && printf 'XXXXXXXXXXXXXXXXXXXXXXXX' | "
             "dd of='%s/bad.zip' bs=1 seek=200 conv=notrunc 2>/dev/null && "
             "printf 'not an archive' > '%s/plain.zip'", a, a, a, a, a, a);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args, "'%s/cut.tar.gz'", a);
    expect_failure(args, 9, "cut.tar.gz");
    snprintf(args, sizeof args, "'%s/bad.zip'", a);
    expect_failure(args, 9, "bad.zip");
    snprintf(args, sizeof args, "'%s/plain.zip'", a);
    expect_failure(args, 9, "plain.zip");
}

static void test_split(void **state)
{
    (void)state;
    const char *d = tiny();
    char p[4200], args[8400];
    snprintf(p, sizeof p, "%s/val.txt", d);
    tu_write_file(p, "# MMDetection3D-style split file\nscene-two\nscene-nowhere\n");
    result r;
    snprintf(args, sizeof args, "--split val --split-file '%s' '%s'", p, d);
    run(&r, args);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.lines[0].token, "smp3");
    assert_non_null(strstr(r.err, "scene 'scene-nowhere' is not in the tables"));
    done(&r);
    snprintf(args, sizeof args, "--split val '%s'", d);
    expect_failure(args, 2, "--split val needs --split-file");
    snprintf(args, sizeof args, "--split nope --split-file x '%s'", d);
    expect_failure(args, 2, "expected train, val, test or all");
    snprintf(args, sizeof args, "--split train --split-file '%s/none.txt' '%s'", d, d);
    expect_failure(args, 3, "none.txt");
}

static void test_usage_errors(void **state)
{
    (void)state;
    expect_failure("--sweeps 11 x", 2, "--sweeps '11'");
    expect_failure("", 2, "no dataset SOURCE");
    expect_failure("--bogus x", 2, "--bogus");
    expect_failure("/nonexistent/lyft", 3, "/nonexistent/lyft");
    result r;
    run(&r, "--help");
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "usage: lyft-index"));
    done(&r);
}

/* Each defect: the tool stops with its code, names the file or record, and
 * leaves no output file behind. */
static void check_defect(const char *rel, const char *from, const char *to, int code,
                         const char *needle)
{
    const char *d = tiny();
    replace_in(d, rel, from, to);
    char args[9000];
    snprintf(args, sizeof args, "-o '%s/out.jsonl' '%s'", d, d);
    expect_failure(args, code, needle);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q out.jsonl", d);
    if (system(cmd) == 0)
        fail_msg("an output file was left behind after: %s", needle);
}

static void test_bad_tables(void **state)
{
    (void)state;
    check_defect("train_data/ego_pose.json", "\"ep1\",", "\"ep1\" ", 4, "ego_pose.json: line 2, column");
    check_defect("train_data/ego_pose.json", "[10, 0, 0]", "[10, 0, 1e999]", 10, "'translation'[2] is not finite");
    check_defect("train_data/sample.json", "\"timestamp\": 1000000000400000", "\"timestamp\": \"x\"", 5,
                 "sample.json: record 1 (line 2): field 'timestamp' has the wrong type");
    check_defect("train_data/sample_data.json", "\"ego_pose_token\": \"ep2\"", "\"ego_pose_token\": \"ep9\"", 7,
                 "ego_pose_token 'ep9' names no record of ego_pose.json");
    check_defect("train_data/sample.json", "\"scene_token\": \"sc2\"", "\"scene_token\": \"scX\"", 7,
                 "sample record 'smp3': scene_token 'scX'");
    check_defect("train_data/category.json", "\"name\": \"animal\"", "\"name\": \"unicorn\"", 11,
                 "unknown category 'unicorn'");
    check_defect("train_data/sample_annotation.json", "[2, 4.5, 1.7]", "[2, 0, 1.7]", 12,
                 "size[1] = 0, expected a positive size");
    check_defect("train_data/sample_data.json", "host-a000_lidar1_2.bin", "host-a000_lidar1_9.bin", 8,
                 "LiDAR file 'train_lidar/host-a000_lidar1_9.bin' not found");
    /* a missing table */
    const char *d = tiny();
    char p[4200], args[8400];
    snprintf(p, sizeof p, "%s/train_data/sample.json", d);
    unlink(p);
    snprintf(args, sizeof args, "'%s'", d);
    expect_failure(args, 6, "table 'sample.json' not found");
    d = tiny();
    snprintf(p, sizeof p, "%s/train_data/instance.json", d);
    unlink(p);
    snprintf(args, sizeof args, "'%s'", d);
    expect_failure(args, 6, "'instance.json' not found, but sample_annotation.json needs it");
}

static void test_missing_lidar_policies(void **state)
{
    (void)state;
    const char *d = tiny();
    char p[4200], args[8400];
    snprintf(p, sizeof p, "%s/train_lidar/host-a000_lidar1_0.bin", d);
    unlink(p);   /* key frame of smp0, sweep of smp1 and smp2 */
    result r;
    snprintf(args, sizeof args, "--missing-lidar skip '%s'", d);
    run(&r, args);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.lines[0].token, "smp3");
    assert_non_null(strstr(r.err, "3 samples left out"));
    done(&r);
    snprintf(args, sizeof args, "--missing-lidar keep '%s'", d);
    run(&r, args);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.n, 4);
    assert_int_equal(r.lines[0].lidar.num_points, -1);
    assert_int_equal(r.lines[2].sweeps[1].lidar.num_points, -1);
    assert_int_equal(r.lines[2].sweeps[0].lidar.num_points, 2);
    assert_non_null(strstr(r.err, "3 samples written with \"lidar_missing\""));
    done(&r);
}

static void test_corrupt_and_nonfinite_bins(void **state)
{
    (void)state;
    const char *d = tiny();
    char p[4200], args[8400];
    float pts[11] = {1, 2, 3, 100, 1, 4, 5, NAN, 100, 1, 7}; /* 44 bytes: 2 points + 4 */
    snprintf(p, sizeof p, "%s/train_lidar/host-a000_lidar1_1.bin", d);
    tu_write_bytes(p, pts, 43);
    result r;
    snprintf(args, sizeof args, "--verify-lidar '%s'", d);
    run(&r, args);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.lines[1].lidar.num_points, 2);
    assert_int_equal(r.lines[1].lidar.tail_bytes, 3);
    assert_int_equal(r.lines[1].lidar.nonfinite, 1);
    assert_int_equal(r.lines[2].sweeps[0].lidar.tail_bytes, 3);
    assert_int_equal(r.lines[0].lidar.nonfinite, 0);
    /* reported once although two samples use the file */
    char *first = strstr(r.err, "not a multiple of 20 bytes (3 stray bytes)");
    assert_non_null(first);
    assert_null(strstr(first + 1, "not a multiple of 20"));
    assert_non_null(strstr(r.err, "1 non-finite floats"));
    assert_non_null(strstr(r.err, "1 corrupt .bin, 1 with non-finite values"));
    done(&r);
    /* the same through an archive */
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cd '%s' && tar czf all.tgz train_data train_lidar", d);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args, "--verify-lidar '%s/all.tgz'", d);
    run(&r, args);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.lines[1].lidar.tail_bytes, 3);
    assert_int_equal(r.lines[1].lidar.nonfinite, 1);
    done(&r);
}

/* Tables read in chunks on several threads (formats/json_split.h; here
 * chunks of 64 bytes, about a record each) give the same output, and on
 * each defect the same message, as tables streamed through yajl. */
static void same_in_chunks(const char *d)
{
    char cmd[9000];
    char *out1, *err1, *out2, *err2;
    snprintf(cmd, sizeof cmd, "LIDAR3D_CHUNK_BYTES=0 '%s' '%s'", tu_tool("lyft-index"), d);
    int rc1 = tu_run(cmd, &out1, &err1);
    snprintf(cmd, sizeof cmd, "LIDAR3D_CHUNK_BYTES=64 '%s' '%s'", tu_tool("lyft-index"), d);
    int rc2 = tu_run(cmd, &out2, &err2);
    if (rc1 != rc2 || strcmp(out1, out2) || strcmp(err1, err2))
        fail_msg("%s: streamed: exit %d, %s; in chunks: exit %d, %s", d, rc1, err1, rc2, err2);
    free(out1);
    free(err1);
    free(out2);
    free(err2);
}

static void test_tables_in_chunks(void **state)
{
    (void)state;
    same_in_chunks(tiny());
    /* real tables: one field per line (lyft-scene), one line (lyft-mini) */
    const char *real[] = {"lyft-scene", "lyft-mini"};
    for (size_t i = 0; i < 2; i++) {
        const char *d = tu_shared_data(real[i]);
        if (d)
            same_in_chunks(d);
    }
    const char *defects[][3] = {
        {"train_data/ego_pose.json", "\"ep1\",", "\"ep1\" "},
        {"train_data/ego_pose.json", "\"ep3\",", "\"ep3\" "},
        {"train_data/ego_pose.json", "[500, 0, 0]", "[500, 0, 1e999]"},
        {"train_data/ego_pose.json", "[10, 0, 0]", "[10, 0, 1e999]"},
        {"train_data/sample.json", "\"timestamp\": 1000000000200000", "\"timestamp\": \"x\""},
        {"train_data/sample.json", "\"timestamp\": 1000000000400000", "\"timestamp\": \"x\""},
        {"train_data/sample_data.json", "\"next\": \"\"}]", "\"next\": \"\"}"},
        {"train_data/sample_data.json", "\"next\": \"\"}]", "\"next\": \"\"}]]"},
        {"train_data/sample_data.json", "\"ego_pose_token\": \"ep3\"", "\"ego_pose_token\": \"ep9\""},
        {"train_data/category.json", "\"name\": \"bicycle\"", "\"name\": \"unicycle\""},
        {"train_data/category.json", "\"name\": \"animal\"", "\"name\": \"unicorn\""},
    };
    for (size_t i = 0; i < sizeof defects / sizeof *defects; i++) {
        const char *d = tiny();
        replace_in(d, defects[i][0], defects[i][1], defects[i][2]);
        same_in_chunks(d);
    }
}

/* Records no line can use (sample_data of other sensors, ego poses no
 * kept sample_data names) are skipped, yet checked as before; and a prev
 * link to a skipped record is followed, as MMDetection3D follows it. */
static void test_skipped_records(void **state)
{
    (void)state;
    /* the camera record and an unused ego pose, with the defects a kept
     * record is refused for */
    check_defect("train_data/sample_data.json", "\"filename\": \"images/cam0.jpeg\"",
                 "\"filename\": 7", 5, "field 'filename' has the wrong type");
    check_defect("train_data/sample_data.json", "\"ego_pose_token\": \"ep0\", \"calibrated_sensor_token\": \"c_cam\"",
                 "\"ego_pose_token\": \"ep0\", \"calibrated_sensor_token\": \"c_gone\"", 7,
                 "calibrated_sensor_token 'c_gone' names no record of calibrated_sensor.json");
    check_defect("train_data/ego_pose.json", "{\"token\": \"ep0\"",
                 "{\"token\": \"ep_unused\", \"translation\": [1e999, 0, 0], \"rotation\": [1, 0, 0, 0], "
                 "\"timestamp\": 0},\n {\"token\": \"ep0\"", 10, "'translation'[0] is not finite");
    /* sd1's prev names the camera record: its sweep is that record */
    const char *d = tiny();
    replace_in(d, "train_data/sample_data.json", "\"prev\": \"sd0\"", "\"prev\": \"cam0\"");
    char args[9000];
    snprintf(args, sizeof args, "--missing-lidar keep '%s'", d);
    result r;
    run(&r, args);
    assert_int_equal(r.rc, 0);
    int found = 0;
    for (int i = 0; i < r.n; i++)
        if (strcmp(r.lines[i].token, "smp1") == 0) {
            found = 1;
            assert_int_equal(r.lines[i].n_sweeps, 1);
            assert_string_equal(r.lines[i].sweeps[0].sample_data_token, "cam0");
            assert_string_equal(r.lines[i].sweeps[0].lidar.path, "images/cam0.jpeg");
        }
    assert_true(found);
    done(&r);
    same_in_chunks(d);
}

static void test_output_file_is_atomic(void **state)
{
    (void)state;
    const char *d = tiny();
    char args[9000], p[4200];
    snprintf(p, sizeof p, "%s/index.jsonl", d);
    tu_write_file(p, "old\n");
    snprintf(args, sizeof args, "-q -o '%s' '%s'", p, d);
    result r;
    run(&r, args);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    char *text = tu_read_file(p, NULL);
    assert_int_equal(strncmp(text, "{\"token\":\"smp0\"", 15), 0);
    free(text);
    done(&r);
    /* a failing run keeps the old file */
    replace_in(d, "train_data/ego_pose.json", "\"ep1\",", "\"ep1\" ");
    tu_write_file(p, "old\n");
    snprintf(args, sizeof args, "-o '%s' '%s'", p, d);
    run(&r, args);
    assert_int_equal(r.rc, 4);
    text = tu_read_file(p, NULL);
    assert_string_equal(text, "old\n");
    free(text);
    done(&r);
}

/* A full disk: clear message, exit 3, the old output file kept, no
 * temporary file left. */
static void test_disk_full(void **state)
{
    (void)state;
    const char *d = tiny();
    char args[9000];
    snprintf(args, sizeof args, "-q '%s' > /dev/full", d);
    expect_failure(args, 3, "cannot write to standard output");

    const char *scene = tu_shared_data("lyft-scene");   /* an index of 224 KB */
    if (!scene)
        return;
    char small[4200], cmd[9000], p[4300];
    snprintf(small, sizeof small, "%s/small", d);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && mount -t tmpfs -o size=64k tmpfs '%s' 2>/dev/null",
             small, small);
    if (tu_run(cmd, NULL, NULL)) {
        printf("skipped: cannot mount a small tmpfs (needs root)\n");
        return;
    }
    snprintf(p, sizeof p, "%s/index.jsonl", small);
    tu_write_file(p, "old\n");
    snprintf(args, sizeof args, "-q -o '%s' '%s'", p, scene);
    result r;
    run(&r, args);
    char *text = tu_read_file(p, NULL);
    snprintf(cmd, sizeof cmd, "test \"$(ls -A '%s')\" = index.jsonl", small);
    int only_old = tu_run(cmd, NULL, NULL);
    snprintf(cmd, sizeof cmd, "umount '%s'", small);
    tu_run(cmd, NULL, NULL);
    if (r.rc != 3 || !strstr(r.err, "cannot write to") || !strstr(r.err, "disk full"))
        fail_msg("full disk: exit %d, stderr: %s", r.rc, r.err);
    assert_string_equal(text, "old\n");
    assert_int_equal(only_old, 0);
    free(text);
    done(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_and_order),
        cmocka_unit_test(test_layouts),
        cmocka_unit_test(test_archives_index_like_the_folder),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_bad_tables),
        cmocka_unit_test(test_missing_lidar_policies),
        cmocka_unit_test(test_corrupt_and_nonfinite_bins),
        cmocka_unit_test(test_output_file_is_atomic),
        cmocka_unit_test(test_tables_in_chunks),
        cmocka_unit_test(test_skipped_records),
        cmocka_unit_test(test_disk_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
