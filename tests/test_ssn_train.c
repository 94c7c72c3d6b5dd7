/* ssn-train end to end on a small synthetic dataset: training runs and logs,
 * resuming continues bit-identically, SIGTERM checkpoints and exits 75, a
 * corrupt newest checkpoint is skipped, amp's loss scaler backs off, and bad
 * usage is refused. A shrunken configuration keeps each step well under a
 * second. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/support/testutil.h"

static char data_dir[4096];

static int sh(const char *fmt, ...)
{
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

#define SHRINK "--config small --set 'point_cloud_range = -16 -16 -5 16 16 3' " \
               "--set 'max_voxels = 800' --set 'vfe_channels = 4 8' --set 'out_channels = 8 8 8' " \
               "--set 'neck_channels = 8' --set 'layer_nums = 1 1 1' --set 'warmup_iters = 2' --batch 1"

static int setup(void **state)
{
    (void)state;
    const char *d = tu_tmpdir("train-data");
    snprintf(data_dir, sizeof data_dir, "%s", d);
    if (sh("cd '%s' && '%s' -q --scenes 1 --samples-per-scene 6 --points 4000 --objects 20 data && "
           "'%s' -q data -o index.jsonl && '%s' -q index.jsonl -o sweeps.h5",
           d, tu_tool("lyft-synth"), tu_tool("lyft-index"), tu_tool("sweep-pack")))
        return -1;
    return 0;
}

static int train(const char *run, const char *extra, char **err_out)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' --cache '%s/sweeps.h5' " SHRINK " --out '%s' %s",
             tu_tool("ssn-train"), data_dir, run, extra);
    return tu_run(cmd, NULL, err_out);
}

static void test_trains_and_logs(void **state)
{
    (void)state;
    const char *run = tu_tmpdir("run");
    char *err = NULL;
    int rc = train(run, "--steps 3 --log-every 1", &err);
    if (rc != 0)
        fail_msg("exit %d: %s", rc, err);
    assert_non_null(strstr(err, "step 3 epoch"));
    free(err);
    char p[4200];
    snprintf(p, sizeof p, "%s/metrics.jsonl", run);
    char *m = tu_read_file(p, NULL);
    assert_non_null(m);
    const char *keys[] = {"\"step\":1,", "\"step\":3,", "\"loss\":", "\"loss_cls\":", "\"loss_bbox\":",
                          "\"loss_dir\":", "\"lr\":", "\"loss_scale\":1,", "\"grad_norm\":",
                          "\"samples_per_s\":"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (!strstr(m, keys[i]))
            fail_msg("metrics.jsonl lacks %s:\n%s", keys[i], m);
    free(m);
    assert_int_equal(sh("test -s '%s/config.txt' && test -s '%s/ckpt/ckpt-00000003.l3d' && "
                        "ls '%s/tb' | grep -q '^events.out.tfevents.'", run, run, run), 0);
}

/* The loss values of metrics.jsonl, "step loss" per line, for comparison. */
static char *losses(const char *run)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/metrics.jsonl", run);
    char *m = tu_read_file(p, NULL), *out = calloc(1, 65536), *save, *line;
    for (line = strtok_r(m, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *s = strstr(line, "\"step\":"), *l = strstr(line, "\"loss\":"), *g = strstr(line, "\"grad_norm\":");
        char one[256];
        snprintf(one, sizeof one, "%ld %.*s %.*s\n", strtol(s + 7, NULL, 10),
                 (int)strcspn(l + 7, ","), l + 7, (int)strcspn(g + 12, ","), g + 12);
        strcat(out, one);
    }
    free(m);
    return out;
}

static void test_resume_is_bit_identical(void **state)
{
    (void)state;
    const char *a = tu_tmpdir("full"), *b = tu_tmpdir("parts");
    char *err = NULL;
    assert_int_equal(train(a, "--steps 4 --log-every 1", NULL), 0);
    int rc = train(b, "--steps 4 --log-every 1 --stop-after 2", &err);
    if (rc != 75)
        fail_msg("--stop-after: exit %d, expected 75: %s", rc, err);
    assert_non_null(strstr(err, "stopped (resume with --resume auto) at step 2"));
    free(err);
    err = NULL;
    rc = train(b, "--steps 4 --log-every 1 --resume auto", &err);
    if (rc != 0)
        fail_msg("resume: exit %d: %s", rc, err);
    assert_non_null(strstr(err, "resumed from"));
    free(err);
    /* the same weights, optimizer state, data position: the same file */
    assert_int_equal(sh("cmp '%s/ckpt/ckpt-00000004.l3d' '%s/ckpt/ckpt-00000004.l3d'", a, b), 0);
    char *la = losses(a), *lb = losses(b);
    assert_string_equal(la, lb);
    free(la);
    free(lb);
}

static void test_sigterm_checkpoints(void **state)
{
    (void)state;
    const char *run = tu_tmpdir("term");
    char cmd[9000];
    snprintf(cmd, sizeof cmd,
             "'%s' --cache '%s/sweeps.h5' " SHRINK " --out '%s' --steps 100000 --log-every 1 "
             "2>'%s/err' & pid=$!; for i in $(seq 1 300); do grep -q 'step 2 ' '%s/err' && break; "
             "sleep 0.1; done; kill -TERM $pid; wait $pid; echo $? > '%s/rc'",
             tu_tool("ssn-train"), data_dir, run, run, run, run);
    assert_int_equal(system(cmd), 0);
    char p[4200];
    snprintf(p, sizeof p, "%s/rc", run);
    char *rc = tu_read_file(p, NULL);
    assert_string_equal(rc, "75\n");
    free(rc);
    assert_int_equal(sh("ls '%s/ckpt' | grep -q 'ckpt-.*l3d$'", run), 0);
}

static void test_corrupt_checkpoint_is_skipped(void **state)
{
    (void)state;
    const char *run = tu_tmpdir("corrupt");
    assert_int_equal(train(run, "--steps 2 --ckpt-every 1", NULL), 0);
    /* damage the newest: resume falls back to step 1 and redoes step 2 */
    assert_int_equal(sh("printf 'XXXX' | dd of='%s/ckpt/ckpt-00000002.l3d' bs=1 seek=200 "
                        "conv=notrunc 2>/dev/null", run), 0);
    char *err = NULL;
    int rc = train(run, "--steps 2 --ckpt-every 1 --resume auto", &err);
    if (rc != 0)
        fail_msg("exit %d: %s", rc, err);
    assert_non_null(strstr(err, "ckpt-00000002.l3d"));
    assert_non_null(strstr(err, "at step 1"));
    free(err);
}

static void test_amp_loss_scaler(void **state)
{
    (void)state;
    const char *run = tu_tmpdir("amp");
    char *err = NULL;
    int rc = train(run, "--steps 3 --log-every 1 --precision amp", &err);
    if (rc != 0)
        fail_msg("exit %d: %s", rc, err);
    /* 2^32 overflows fp32 gradients: hysteresis first, then back-off */
    assert_non_null(strstr(err, "scale 4.29e+09"));
    assert_non_null(strstr(err, "(skipped: overflow)"));
    free(err);
    /* fp16 weights with fp32 masters, from a scale that does not overflow */
    const char *run16 = tu_tmpdir("fp16");
    err = NULL;
    rc = train(run16, "--steps 3 --log-every 1 --precision fp16 --set init_scale=1024", &err);
    if (rc != 0)
        fail_msg("fp16: exit %d: %s", rc, err);
    assert_non_null(strstr(err, "step 3 epoch"));
    assert_null(strstr(err, "skipped"));
    assert_null(strstr(err, "nan"));
    free(err);
}

/* The short learning check (the long one is `make learn-check`): 150 steps of
 * the shrunken config on 6 synthetic samples; the mean loss of the last 10
 * steps must be at most 0.7 of the first 10's (measured: 1.9x lower at 200). */
static void test_learns(void **state)
{
    (void)state;
    const char *run = tu_tmpdir("learn");
    assert_int_equal(train(run, "--steps 150 --log-every 1 --ckpt-every 1000", NULL), 0);
    char *l = losses(run), *save, *line;
    double v[200];
    int n = 0;
    for (line = strtok_r(l, "\n", &save); line && n < 200; line = strtok_r(NULL, "\n", &save))
        v[n++] = strtod(strchr(line, ' ') + 1, NULL);
    free(l);
    assert_int_equal(n, 150);
    double first = 0, last = 0;
    for (int i = 0; i < 10; i++) {
        first += v[i] / 10;
        last += v[n - 10 + i] / 10;
    }
    printf("learning: mean loss of the first 10 steps %.4f, of the last 10 %.4f\n", first, last);
    if (!(last <= 0.7 * first))
        fail_msg("the loss did not fall enough: %.4f -> %.4f", first, last);
}

static void test_voxel_input(void **state)
{
    (void)state;
    /* a voxel cache made with the shrunken config's grid trains; another grid is refused */
    assert_int_equal(sh("cd '%s' && printf 'point_cloud_range = -16 -16 -5 16 16 3\nvoxel_size = 0.5 0.5 8\n"
                        "max_points = 20\nmax_voxels = 800\n' > vox.cfg && "
                        "'%s' -q sweeps.h5 --sweeps 10 --config vox.cfg -o voxels-10.h5 && "
                        "'%s' -q sweeps.h5 --sweeps 5 -o voxels-5.h5",
                        data_dir, tu_tool("voxel-cache"), tu_tool("voxel-cache")), 0);
    const char *run = tu_tmpdir("vox");
    char *err = NULL, cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' --cache '%s' " SHRINK " --out '%s' --input voxels --steps 2 --log-every 1",
             tu_tool("ssn-train"), data_dir, run);
    int rc = tu_run(cmd, NULL, &err);
    if (rc != 0)
        fail_msg("exit %d: %s", rc, err);
    assert_non_null(strstr(err, "grid-exact flips only"));
    assert_non_null(strstr(err, "step 2 epoch"));
    free(err);
    snprintf(cmd, sizeof cmd, "'%s' --cache '%s/voxels-5.h5' " SHRINK " --sweeps 5 --out '%s' --input voxels --steps 1",
             tu_tool("ssn-train"), data_dir, run);
    assert_int_equal(tu_run(cmd, NULL, &err), 2);
    assert_non_null(strstr(err, "made for other sweeps or voxelization settings"));
    free(err);
}

static void test_usage(void **state)
{
    (void)state;
    char *err = NULL, cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' --cache '%s/sweeps.h5' --device cuda", tu_tool("ssn-train"), data_dir);
    assert_int_equal(tu_run(cmd, NULL, &err), 2);
    assert_non_null(strstr(err, "CUDA training path is not implemented yet"));
    free(err);
    snprintf(cmd, sizeof cmd, "'%s' --cache '%s/sweeps.h5' --precision bf16", tu_tool("ssn-train"), data_dir);
    assert_int_equal(tu_run(cmd, NULL, &err), 2);
    free(err);
    snprintf(cmd, sizeof cmd, "'%s' --cache '%s' --set 'lrr = 1'", tu_tool("ssn-train"), data_dir);
    assert_int_equal(tu_run(cmd, NULL, &err), 2);
    assert_non_null(strstr(err, "unknown config key 'lrr'"));
    free(err);
    snprintf(cmd, sizeof cmd, "'%s' --cache /nonexistent", tu_tool("ssn-train"));
    assert_int_equal(tu_run(cmd, NULL, &err), 3);
    free(err);
    char *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' --config small --print-config", tu_tool("ssn-train"));
    assert_int_equal(tu_run(cmd, &out, NULL), 0);
    assert_non_null(strstr(out, "point_cloud_range = -32 -32 -5 32 32 3"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trains_and_logs),
        cmocka_unit_test(test_resume_is_bit_identical),
        cmocka_unit_test(test_sigterm_checkpoints),
        cmocka_unit_test(test_corrupt_checkpoint_is_skipped),
        cmocka_unit_test(test_amp_loss_scaler),
        cmocka_unit_test(test_voxel_input),
        cmocka_unit_test(test_learns),
        cmocka_unit_test(test_usage),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
