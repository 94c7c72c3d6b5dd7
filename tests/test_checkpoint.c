/* trainer/checkpoint and trainer/rng: save/load round trip byte for byte;
 * keep-k deletion and no temporaries left; a corrupt newest checkpoint
 * (flipped byte, truncation, bad magic, other version, other arena) skipped
 * with a message and the previous one loaded, the caller's state untouched by
 * a rejected file; a save into an unwritable place failing cleanly; a short
 * training loop (AdamW, schedule, clipping, loss scaling with injected
 * overflows, fp16 master weights) that, stopped and resumed from its
 * checkpoint, ends bit-identical to the uninterrupted run. The PRNG against
 * published xoshiro256** outputs and an independent splitmix64 computation. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>
#include <cmocka.h>

#include "kernels/cpu/half.h"
#include "tests/support/testutil.h"
#include "trainer/checkpoint.h"
#include "trainer/rng.h"

/* ---- rng ------------------------------------------------------------------ */

static void test_rng(void **state)
{
    (void)state;
    l3d_rng r = {{1, 2, 3, 4}, 0, 0};           /* reference outputs of xoshiro256** */
    const uint64_t want[4] = {11520, 0, 1509978240, 1215971899390074240ull};
    for (int i = 0; i < 4; i++)
        assert_true(l3d_rng_next(&r) == want[i]);
    l3d_rng_seed(&r, 12345);                     /* splitmix64 seeding, computed in Python */
    assert_true(r.s[0] == 0x22118258a9d111a0ull && r.s[3] == 0x2d160e7e5c3f42caull);
    assert_true(l3d_rng_next(&r) == 13720838825685603483ull);

    double su = 0, sn = 0, sn2 = 0, pair = 0, prev = 0;
    enum { N = 200000 };
    l3d_rng_seed(&r, 1);
    for (int i = 0; i < N; i++) {
        double u = l3d_rng_uniform(&r);
        float f = l3d_rng_uniformf(&r);
        double z = l3d_rng_normal(&r);
        assert_true(u >= 0 && u < 1 && f >= 0 && f < 1 && isfinite(z));
        su += u, sn += z, sn2 += z * z;
        if (i % 2)
            pair += prev * z;     /* the two normals of a Box-Muller pair are independent */
        prev = z;
    }
    assert_true(fabs(su / N - 0.5) < 0.005);
    assert_true(fabs(sn / N) < 0.01 && fabs(sn2 / N - 1) < 0.02);
    assert_true(fabs(pair / (N / 2)) < 0.02);

    int64_t perm[50], counts[6] = {0};
    int seen[50] = {0};
    l3d_rng_permutation(&r, perm, 50);
    for (int i = 0; i < 50; i++)
        seen[perm[i]]++;
    for (int i = 0; i < 50; i++)
        assert_int_equal(seen[i], 1);
    for (int i = 0; i < 60000; i++) {            /* all 6 orders of 3 about equally often */
        int64_t p3[3];
        l3d_rng_permutation(&r, p3, 3);
        counts[p3[0] * 2 + (p3[1] > p3[2])]++;
    }
    for (int i = 0; i < 6; i++)
        assert_true(counts[i] > 9500 && counts[i] < 10500);

    /* save in the middle of a Box-Muller pair, restore, same stream */
    l3d_rng a, b;
    l3d_rng_seed(&a, 99);
    l3d_rng_normal(&a);
    uint8_t img[L3D_RNG_STATE_BYTES];
    l3d_rng_save(&a, img);
    assert_int_equal(l3d_rng_restore(&b, img), 0);
    for (int i = 0; i < 101; i++)
        assert_true(l3d_rng_normal(&a) == l3d_rng_normal(&b));
    img[0] ^= 1;
    assert_int_equal(l3d_rng_restore(&b, img), -1);

    l3d_rng s0, s1, s1b;                          /* streams: deterministic and distinct */
    l3d_rng_seed_stream(&s0, 5, 0);
    l3d_rng_seed_stream(&s1, 5, 1);
    l3d_rng_seed_stream(&s1b, 5, 1);
    int same = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = l3d_rng_next(&s1);
        assert_true(x == l3d_rng_next(&s1b));
        same += x == l3d_rng_next(&s0);
    }
    assert_int_equal(same, 0);
}

/* ---- a small training state ------------------------------------------------- */

typedef struct run {
    l3d_params p;
    l3d_adamw opt;
    l3d_loss_scaler sc;
    l3d_rng rng;
    int64_t step, data_pos;
} run;

static void run_init(run *t, int fp16, int64_t extra)
{
    l3d_params_init(&t->p);
    const int64_t w[2] = {16, 9 + extra}, b[1] = {16}, bn[1] = {16};
    assert_int_equal(l3d_params_add(&t->p, "layer.weight", 2, w, NULL), 0);
    assert_int_equal(l3d_params_add(&t->p, "layer.bias", 1, b, NULL), 0);
    assert_int_equal(l3d_params_add_bn(&t->p, "bn.running_mean", 1, bn, NULL), 0);
    assert_int_equal(l3d_params_add_bn(&t->p, "bn.running_var", 1, bn, NULL), 0);
    assert_int_equal(l3d_params_alloc(&t->p, fp16, NULL), 0);
    l3d_adamw_init(&t->opt);
    l3d_scaler_init_custom(&t->sc, 0x1p20, 2, 4, 2, 0, 1);   /* short window: growth happens */
    l3d_rng_seed(&t->rng, 2024);
    for (size_t i = 0; i < t->p.layout.numel; i++) {
        float x = (float)l3d_rng_normal(&t->rng);
        t->p.param[i] = fp16 ? l3d_fp16_round(x) : x;
        if (fp16)
            t->p.master[i] = x;
    }
    t->step = t->data_pos = 0;
}

/* One step: "loss" gradient from the weights and fresh noise, scaled; an
 * injected overflow every 5th step; unscale, skip or clip + AdamW; a BN
 * statistic and the data position move along. */
static void run_step(run *t, const l3d_lr_schedule *ls)
{
    l3d_params *p = &t->p;
    l3d_params_zero_grad(p);
    for (size_t i = 0; i < p->layout.numel; i++)
        p->grad[i] =
            (float)((sin(3.0 * p->param[i]) + 0.1 * l3d_rng_normal(&t->rng)) * t->sc.scale);
    if (p->master)
        l3d_round_fp16(p->grad, p->layout.numel);   /* fp16 gradients: big ones overflow */
    if (t->step % 5 == 4)
        p->grad[3] = INFINITY;
    int ev = l3d_scaler_unscale_update(&t->sc, p->grad, p->layout.numel, NULL, 0);
    if (!l3d_scaler_skipped(ev)) {
        l3d_params_clip_grad_norm(p, 1.0);
        l3d_adamw_step(&t->opt, l3d_lr_at(ls, t->step), p);
    }
    for (size_t i = 0; i < p->bn_layout.numel; i++)
        p->bn[i] = 0.9f * p->bn[i] + 0.1f * (float)l3d_rng_uniform(&t->rng);
    t->data_pos += 2;
    t->step++;
}

static void fill_ckpt(l3d_ckpt *c, run *t, uint8_t *rng_img, char *cfg, char *hashes)
{
    memset(c, 0, sizeof *c);
    c->params = &t->p;
    c->opt = &t->opt;
    c->scaler = &t->sc;
    c->step = t->step;
    c->epoch = t->step / 4;
    l3d_rng_save(&t->rng, rng_img);
    c->rng = rng_img;
    c->rng_len = L3D_RNG_STATE_BYTES;
    c->data_pos = (uint8_t *)&t->data_pos;
    c->data_pos_len = sizeof t->data_pos;
    c->config = cfg;
    c->cache_hashes = hashes;
}

static int save(run *t, const char *dir, int keep, l3d_err *err)
{
    uint8_t img[L3D_RNG_STATE_BYTES];
    l3d_ckpt c;
    fill_ckpt(&c, t, img, "model = ssn\nlr = 1e-3\n", "sweep=abc123\nvoxel=def456\n");
    return l3d_ckpt_save(dir, keep, &c, NULL, 0, err);
}

static void expect_same(const run *a, const run *b)
{
    size_t n = a->p.layout.numel * 4;
    assert_memory_equal(a->p.param, b->p.param, n);
    assert_memory_equal(a->p.m, b->p.m, n);
    assert_memory_equal(a->p.v, b->p.v, n);
    if (a->p.master)
        assert_memory_equal(a->p.master, b->p.master, n);
    assert_memory_equal(a->p.bn, b->p.bn, a->p.bn_layout.numel * 4);
    uint8_t x[L3D_SCALER_BYTES], y[L3D_SCALER_BYTES];
    l3d_scaler_save(&a->sc, x);
    l3d_scaler_save(&b->sc, y);
    assert_memory_equal(x, y, sizeof x);
    assert_true(a->opt.step == b->opt.step && a->step == b->step);
}

/* Loads DIR's newest valid checkpoint into t; returns the load's code. */
static int load(run *t, const char *dir, char *loaded, char *warn, size_t wl, l3d_err *err)
{
    l3d_ckpt c;
    memset(&c, 0, sizeof c);
    c.params = &t->p;
    c.opt = &t->opt;
    c.scaler = &t->sc;
    int rc = l3d_ckpt_load_latest(dir, &c, loaded, 4400, warn, wl, err);
    if (rc == L3D_OK && loaded[0]) {
        assert_int_equal(c.rng_len, L3D_RNG_STATE_BYTES);
        assert_int_equal(l3d_rng_restore(&t->rng, c.rng), 0);
        assert_int_equal(c.data_pos_len, sizeof t->data_pos);
        memcpy(&t->data_pos, c.data_pos, sizeof t->data_pos);
        assert_string_equal(c.config, "model = ssn\nlr = 1e-3\n");
        assert_string_equal(c.cache_hashes, "sweep=abc123\nvoxel=def456\n");
        assert_true(c.epoch == c.step / 4);
        t->step = c.step;
        l3d_ckpt_free_blobs(&c);
    }
    return rc;
}

static int count_files(const char *dir, const char *needle)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, needle) != NULL;
    if (d)
        closedir(d);
    return n;
}

/* ---- tests ------------------------------------------------------------------- */

static void test_roundtrip_and_resume(void **state)
{
    (void)state;
    l3d_lr_schedule ls;
    l3d_lr_schedule_ssn(&ls, 6);
    ls.warmup_end = 5;
    ls.milestones[0] = 2, ls.milestones[1] = 3;     /* decays at steps 12 and 18 */
    for (int fp16 = 0; fp16 < 2; fp16++) {
        const char *dir = tu_tmpdir("ckpt-resume");
        run a, b;
        run_init(&a, fp16, 0);
        for (int i = 0; i < 9; i++)
            run_step(&a, &ls);
        l3d_err err = {0, ""};
        assert_int_equal(save(&a, dir, 3, &err), L3D_OK);
        assert_true(a.sc.skipped > 0);

        run_init(&b, fp16, 0);                      /* fresh arena, then resume */
        char loaded[4400], warn[2048];
        assert_int_equal(load(&b, dir, loaded, warn, sizeof warn, &err), L3D_OK);
        assert_non_null(strstr(loaded, "ckpt-00000009.l3d"));
        assert_string_equal(warn, "");
        expect_same(&a, &b);
        for (int i = 0; i < 16; i++) {
            run_step(&a, &ls);
            run_step(&b, &ls);
        }
        expect_same(&a, &b);
        assert_true(a.data_pos == b.data_pos && a.data_pos == 50);
        l3d_params_free(&a.p);
        l3d_params_free(&b.p);
    }
}

static void test_keep_k(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("ckpt-keep");
    run t;
    run_init(&t, 0, 0);
    char stale[4200];
    snprintf(stale, sizeof stale, "%s/ckpt-00000001.l3d.tmp.99999", dir);
    tu_write_file(stale, "left by a killed writer");
    l3d_err err = {0, ""};
    for (int s = 1; s <= 8; s++) {
        t.step = s * 1000;
        assert_int_equal(save(&t, dir, 5, &err), L3D_OK);
    }
    int64_t *steps;
    int n;
    assert_int_equal(l3d_ckpt_list(dir, &steps, &n, &err), L3D_OK);
    assert_int_equal(n, 5);
    for (int i = 0; i < 5; i++)
        assert_true(steps[i] == (8 - i) * 1000);
    free(steps);
    assert_int_equal(count_files(dir, ".tmp"), 0);
    assert_int_equal(count_files(dir, "ckpt-"), 5);
    t.step = 123456789;                               /* more than 8 digits still sorts */
    assert_int_equal(save(&t, dir, 2, &err), L3D_OK);
    assert_int_equal(l3d_ckpt_list(dir, &steps, &n, &err), L3D_OK);
    assert_int_equal(n, 2);
    assert_true(steps[0] == 123456789 && steps[1] == 8000);
    free(steps);
    l3d_params_free(&t.p);
}

static void corrupt(const char *path, int how)
{
    size_t len;
    char *b = tu_read_file(path, &len);
    assert_non_null(b);
    if (how == 0)
        b[len / 2] ^= 0x10;                           /* a byte in the arrays */
    else if (how == 1)
        len -= 1000;                                  /* truncated */
    else if (how == 2)
        b[0] = 'X';                                   /* magic */
    else if (how == 3)
        b[8] = 2;                                     /* version */
    else
        b[24] ^= 1;                                   /* header step: only the file sum sees it */
    tu_write_bytes(path, b, len);
    free(b);
}

static void test_corrupt_fallback(void **state)
{
    (void)state;
    const char *why[5] = {"': checksum mismatch", "truncated", "bad magic", "version 2",
                          "whole-file checksum"};
    for (int how = 0; how < 5; how++) {
        const char *dir = tu_tmpdir("ckpt-corrupt");
        run t;
        run_init(&t, 1, 0);
        l3d_err err = {0, ""};
        t.step = 1000;
        assert_int_equal(save(&t, dir, 5, &err), L3D_OK);
        size_t n = t.p.layout.numel * 4;
        float *p1000 = malloc(n);
        memcpy(p1000, t.p.param, n);
        t.step = 2000;
        for (size_t i = 0; i < t.p.layout.numel; i++)
            t.p.param[i] += 1;
        assert_int_equal(save(&t, dir, 5, &err), L3D_OK);
        char path[4400];
        snprintf(path, sizeof path, "%s/ckpt-00002000.l3d", dir);
        corrupt(path, how);

        char loaded[4400], warn[2048];
        assert_int_equal(load(&t, dir, loaded, warn, sizeof warn, &err), L3D_OK);
        assert_non_null(strstr(loaded, "ckpt-00001000.l3d"));
        if (!strstr(warn, "ckpt-00002000.l3d") || !strstr(warn, why[how]))
            fail_msg("case %d: warning '%s' lacks '%s'", how, warn, why[how]);
        assert_memory_equal(t.p.param, p1000, n);
        assert_true(t.step == 1000);

        /* only corrupt ones left: error, and the caller's state is untouched */
        snprintf(path, sizeof path, "%s/ckpt-00001000.l3d", dir);
        corrupt(path, 0);
        for (size_t i = 0; i < t.p.layout.numel; i++)
            t.p.param[i] = 42;
        assert_int_equal(load(&t, dir, loaded, warn, sizeof warn, &err), L3D_EINPUT);
        assert_string_equal(loaded, "");
        assert_non_null(strstr(err.msg, "no valid checkpoint"));
        assert_non_null(strstr(warn, "ckpt-00001000.l3d"));
        for (size_t i = 0; i < t.p.layout.numel; i++)
            assert_true(t.p.param[i] == 42);
        free(p1000);
        l3d_params_free(&t.p);
    }
}

/* Every single-byte change and every truncation of a checkpoint is rejected
 * (the checksums are bijective per word), without touching the state; under
 * ASAN this also shows the reader never reads outside the file. */
static void test_every_byte(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("ckpt-bytes");
    run t;
    run_init(&t, 1, 0);
    l3d_err err = {0, ""};
    char path[4400], bad[4400];
    assert_int_equal(save(&t, dir, 1, &err), L3D_OK);
    snprintf(path, sizeof path, "%s/ckpt-00000000.l3d", dir);
    snprintf(bad, sizeof bad, "%s/bad", dir);
    size_t len;
    char *b = tu_read_file(path, &len);
    l3d_ckpt c;
    memset(&c, 0, sizeof c);
    c.params = &t.p, c.opt = &t.opt, c.scaler = &t.sc;
    for (size_t i = 0; i < t.p.layout.numel; i++)
        t.p.param[i] = 7;
    for (size_t i = 0; i < len + len; i++) {
        if (i < len) {
            b[i] ^= (char)(1 << (i % 8));
            tu_write_bytes(bad, b, len);
            b[i] ^= (char)(1 << (i % 8));
        } else {
            tu_write_bytes(bad, b, i - len);             /* truncated to i - len bytes */
        }
        int rc = l3d_ckpt_read(bad, &c, &err);
        if (rc == L3D_OK)
            fail_msg("change %zu accepted", i);
    }
    assert_true(t.p.param[0] == 7 && t.p.param[t.p.layout.numel - 1] == 7);
    tu_write_bytes(bad, b, len);                         /* the intact copy loads */
    assert_int_equal(l3d_ckpt_read(bad, &c, &err), L3D_OK);
    assert_true(t.p.param[0] != 7);
    l3d_ckpt_free_blobs(&c);
    free(b);
    l3d_params_free(&t.p);
}

static void test_arena_mismatch_and_empty(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("ckpt-shape");
    run t, u;
    run_init(&t, 0, 0);
    run_init(&u, 0, 1);                               /* layer.weight [16, 10] */
    l3d_err err = {0, ""};
    char loaded[4400], warn[2048];
    assert_int_equal(load(&u, dir, loaded, warn, sizeof warn, &err), L3D_OK);
    assert_string_equal(loaded, "");                  /* empty: start from scratch */
    assert_int_equal(load(&u, "/nonexistent/ckpt", loaded, warn, sizeof warn, &err), L3D_OK);
    t.step = 5;
    assert_int_equal(save(&t, dir, 5, &err), L3D_OK);
    assert_int_equal(load(&u, dir, loaded, warn, sizeof warn, &err), L3D_EINPUT);
    if (!strstr(warn, "layer.weight") || !strstr(warn, "[16,9]"))
        fail_msg("warning: %s", warn);
    l3d_params_free(&t.p);
    l3d_params_free(&u.p);
}

static void test_unwritable(void **state)
{
    (void)state;
    const char *base = tu_tmpdir("ckpt-unwritable");
    char file[4200], dir[4300];
    snprintf(file, sizeof file, "%s/plain-file", base);
    tu_write_file(file, "x");
    snprintf(dir, sizeof dir, "%s/sub", file);        /* a path through a regular file */
    run t;
    run_init(&t, 0, 0);
    l3d_err err = {0, ""};
    assert_int_equal(save(&t, dir, 5, &err), L3D_EIO);
    assert_non_null(strstr(err.msg, "plain-file"));
    snprintf(dir, sizeof dir, "%s/no/such/parent", base);
    assert_int_equal(save(&t, dir, 5, &err), L3D_EIO);
    if (geteuid() != 0) {                             /* root ignores permissions */
        snprintf(dir, sizeof dir, "%s/ro", base);
        mkdir(dir, 0555);
        assert_int_equal(save(&t, dir, 5, &err), L3D_EIO);
        assert_int_equal(count_files(dir, "ckpt"), 0);
        chmod(dir, 0755);
    }
    assert_int_equal(count_files(base, "ckpt"), 0);
    assert_int_equal(count_files(base, "tmp"), 0);
    l3d_params_free(&t.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng),
        cmocka_unit_test(test_roundtrip_and_resume),
        cmocka_unit_test(test_keep_k),
        cmocka_unit_test(test_corrupt_fallback),
        cmocka_unit_test(test_every_byte),
        cmocka_unit_test(test_arena_mismatch_and_empty),
        cmocka_unit_test(test_unwritable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
