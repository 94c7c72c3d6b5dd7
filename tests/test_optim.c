/* trainer/optim, trainer/params and trainer/loss_scaler against references
 * written here: PyTorch's AdamW formulas in double; MMEngine's LinearLR and
 * MultiStepLR simulated object by object, step by step; clip_grad_norm_ on
 * hand-made gradients; DeepSpeed's update_scale transcribed line by line and
 * driven with random overflow sequences, plus hand-traced inf injections. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kernels/cpu/half.h"
#include "trainer/loss_scaler.h"
#include "trainer/optim.h"
#include "trainer/params.h"
#include "trainer/rng.h"

/* ---- AdamW ------------------------------------------------------------- */

/* torch.optim.AdamW for one element, all in double. */
static void ref_adamw(double lr, int64_t t, double *w, double g, double *m, double *v)
{
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
    *w *= 1 - lr * wd;
    *m = b1 * *m + (1 - b1) * g;
    *v = b2 * *v + (1 - b2) * g * g;
    double bc1 = 1 - pow(b1, (double)t), bc2 = 1 - pow(b2, (double)t);
    *w -= lr / bc1 * *m / (sqrt(*v) / sqrt(bc2) + eps);
}

static void test_adamw_vs_double(void **state)
{
    (void)state;
    enum { N = 4096, STEPS = 12 };
    float *w = malloc(N * 4), *g = malloc(N * 4), *m = calloc(N, 4), *v = calloc(N, 4);
    double *rw = malloc(N * 8), *rm = calloc(N, 8), *rv = calloc(N, 8), *mag = calloc(N, 8);
    l3d_rng r;
    l3d_rng_seed(&r, 7);
    for (int i = 0; i < N; i++)
        rw[i] = w[i] = (float)l3d_rng_normal(&r);
    l3d_adamw o;
    l3d_adamw_init(&o);
    double worst = 0;
    for (int t = 1; t <= STEPS; t++) {
        double lr = 1e-3 * (1 + 0.5 * sin(t));            /* lr changes every step */
        for (int i = 0; i < N; i++) {
            /* gradient scales from 1e-10 (where eps matters) to 1e3 */
            double scale = pow(10.0, (double)(i % 14) - 10);
            g[i] = (float)(scale * l3d_rng_normal(&r));
            if (i % 97 == 0)
                g[i] = 0;
        }
        l3d_adamw_update(&o, lr, t, w, g, m, v, N);
        for (int i = 0; i < N; i++) {
            ref_adamw(lr, t, &rw[i], g[i], &rm[i], &rv[i]);
            mag[i] = 0.9 * mag[i] + 0.1 * fabs(g[i]);   /* m's size without cancellation */
            double e = fabs(w[i] - rw[i]);
            if (e > worst)
                worst = e;
            /* fp32 rounding of w (|w| < ~5) and of a lr-sized update, per step */
            if (e > t * (4e-7 * fabs(rw[i]) + 2e-9))
                fail_msg("step %d elem %d: w %.9g, want %.9g", t, i, w[i], rw[i]);
            if (fabs(m[i] - rm[i]) > 1e-6 * mag[i] + 1e-45)
                fail_msg("step %d elem %d: m %.9g, want %.9g", t, i, m[i], rm[i]);
            if (fabs(v[i] - rv[i]) > 1e-6 * fabs(rv[i]) + 1e-45)
                fail_msg("step %d elem %d: v %.9g, want %.9g", t, i, v[i], rv[i]);
        }
    }
    printf("  AdamW %d steps: max |w - w_double| = %.3g\n", STEPS, worst);
    free(w), free(g), free(m), free(v), free(rw), free(rm), free(rv), free(mag);
}

/* Decoupled decay: with g = 0 from the start, m = v = 0 and the update is
 * exactly w * (float)(1 - lr*wd). First step with g != 0: m_hat = g and
 * v_hat = g^2, so w moves by lr * g / (|g| + eps). */
static void test_adamw_hand(void **state)
{
    (void)state;
    l3d_adamw o;
    l3d_adamw_init(&o);
    float w[2] = {3.0f, -2.0f}, g[2] = {0, 0.5f}, m[2] = {0, 0}, v[2] = {0, 0};
    l3d_adamw_update(&o, 1e-3, 1, w, g, m, v, 2);
    assert_true(w[0] == 3.0f * (float)(1 - 1e-3 * 0.01));
    assert_true(m[0] == 0 && v[0] == 0);
    double want = -2.0 * (1 - 1e-5) - 1e-3 * 0.5 / (0.5 + 1e-8);
    assert_true(fabs(w[1] - want) < 3e-7);
    assert_true(m[1] == fmaf(0.1f, 0.5f, 0.0f));
}

static void build_arena(l3d_params *p, int master)
{
    l3d_params_init(p);
    const int64_t a[2] = {5, 3}, b[1] = {7}, c[4] = {2, 3, 3, 3}, bn[1] = {7};
    assert_int_equal(l3d_params_add(p, "conv.weight", 4, c, NULL), 0);
    assert_int_equal(l3d_params_add(p, "fc.weight", 2, a, NULL), 0);
    assert_int_equal(l3d_params_add(p, "fc.bias", 1, b, NULL), 0);
    assert_int_equal(l3d_params_add_bn(p, "bn.running_mean", 1, bn, NULL), 0);
    assert_int_equal(l3d_params_add_bn(p, "bn.running_var", 1, bn, NULL), 0);
    assert_int_equal(l3d_params_alloc(p, master, NULL), 0);
}

/* The arena step: the step counter, and fp16 mode = the fp32 update on the
 * master copy plus weights rounded to fp16. */
static void test_adamw_arena_fp16(void **state)
{
    (void)state;
    l3d_params a, h;
    build_arena(&a, 0);
    build_arena(&h, 1);
    l3d_rng r;
    l3d_rng_seed(&r, 3);
    for (size_t i = 0; i < a.layout.numel; i++)
        a.param[i] = h.master[i] = (float)l3d_rng_normal(&r);
    l3d_adamw oa, oh;
    l3d_adamw_init(&oa);
    l3d_adamw_init(&oh);
    for (int t = 0; t < 5; t++) {
        for (size_t i = 0; i < a.layout.numel; i++)
            a.grad[i] = h.grad[i] = (float)l3d_rng_normal(&r);
        l3d_adamw_step(&oa, 1e-2, &a);
        l3d_adamw_step(&oh, 1e-2, &h);
    }
    assert_int_equal(oa.step, 5);
    assert_memory_equal(a.param, h.master, a.layout.numel * 4);
    for (size_t i = 0; i < a.layout.numel; i++)
        assert_true(h.param[i] == l3d_fp16_round(h.master[i]));
    assert_memory_not_equal(h.param, h.master, a.layout.numel * 4);
    l3d_params_free(&a);
    l3d_params_free(&h);
}

/* ---- schedule ------------------------------------------------------------ */

/* MMEngine, literally: two scheduler objects stepping one optimizer lr. */
typedef struct sim { double lr; int64_t gs, lin_last, ms_last; } sim;
static void sim_step(sim *s, const l3d_lr_schedule *c)
{
    s->gs++;
    if (s->gs < c->warmup_end) {   /* LinearLR begin 0, end warmup_end */
        s->lin_last++;
        double sf = c->warmup_start, T = (double)(c->warmup_end - 1);
        double k = (double)(s->lin_last - 1);
        if (s->lin_last == 0)
            s->lr = s->lr * sf;
        else
            s->lr = s->lr * (1. + (1.0 - sf) / (T * sf + k * (1.0 - sf)));
    }
    s->ms_last++;                  /* MultiStepLR begin 0 */
    int cnt = 0;
    for (int k = 0; k < c->n_milestones; k++)
        cnt += c->milestones[k] * c->iters_per_epoch == s->ms_last;
    if (cnt)
        s->lr = s->lr * pow(c->gamma, cnt);
}

static void test_schedule(void **state)
{
    (void)state;
    const int64_t E = 591;
    l3d_lr_schedule s;
    l3d_lr_schedule_ssn(&s, E);
    assert_true(l3d_lr_at(&s, 0) == 1e-3 * (1.0 / 1000));
    for (int i = 0; i < 1000; i++) {
        double want = 1e-3 * (0.001 + 0.999 * i / 999.0);
        if (fabs(l3d_lr_at(&s, i) - want) > 1e-12 * want)
            fail_msg("lr(%d) = %.17g, closed form %.17g", i, l3d_lr_at(&s, i), want);
    }
    assert_true(fabs(l3d_lr_at(&s, 1) - 2e-6) < 1e-18);
    assert_true(fabs(l3d_lr_at(&s, 999) - 1e-3) < 1e-15);
    double top = l3d_lr_at(&s, 999);
    assert_true(l3d_lr_at(&s, 1000) == top);
    assert_true(l3d_lr_at(&s, 20 * E - 1) == top);
    assert_true(l3d_lr_at(&s, 20 * E) == top * 0.1);
    assert_true(l3d_lr_at(&s, 23 * E - 1) == top * 0.1);
    assert_true(l3d_lr_at(&s, 23 * E) == top * 0.1 * 0.1);
    assert_true(l3d_lr_at(&s, 24 * E - 1) == top * 0.1 * 0.1);

    /* Bit for bit against the simulation, also with milestones inside the
     * warm-up, a repeated milestone and one at iteration 0. */
    for (int cfg = 0; cfg < 3; cfg++) {
        l3d_lr_schedule c = s;
        if (cfg == 1)
            c.iters_per_epoch = 17;                 /* milestones at 340, 391 */
        if (cfg == 2) {
            c.iters_per_epoch = 5;
            c.n_milestones = 4;
            c.milestones[0] = 0, c.milestones[1] = 30, c.milestones[2] = 30, c.milestones[3] = 250;
        }
        sim m = {c.base_lr, -1, -1, -1};
        sim_step(&m, &c);                           /* MMEngine's step at construction */
        for (int64_t i = 0; i < 3000; i++) {
            if (l3d_lr_at(&c, i) != m.lr)
                fail_msg("cfg %d lr(%lld) = %.17g, MMEngine %.17g", cfg, (long long)i,
                         l3d_lr_at(&c, i), m.lr);
            sim_step(&m, &c);
        }
    }
}

/* ---- arena, norm, clipping, accumulation ----------------------------------- */

static void test_params_arena(void **state)
{
    (void)state;
    l3d_params p;
    build_arena(&p, 0);
    const l3d_tensor_info *e = l3d_params_find(&p, "fc.weight");
    assert_non_null(e);
    assert_int_equal(e->numel, 15);
    assert_int_equal(e->offset % L3D_ARENA_ALIGN, 0);
    assert_int_equal(e->offset, 64);                     /* 54 floats rounded up to 64 */
    assert_ptr_equal(l3d_params_get(&p, "fc.bias"), p.param + 80);
    assert_ptr_equal(l3d_params_grad(&p, "fc.bias"), p.grad + 80);
    assert_ptr_equal(l3d_params_bn(&p, "bn.running_var"), p.bn + 16);
    assert_null(l3d_params_get(&p, "nope"));
    assert_null(l3d_params_bn(&p, "fc.bias"));
    assert_int_equal(l3d_table_count(&p.layout), 54 + 15 + 7);
    assert_int_equal((uintptr_t)p.param % 64, 0);
    l3d_err err = {0, ""};
    const int64_t one[1] = {1};
    assert_int_equal(l3d_params_add(&p, "late", 1, one, &err), L3D_EUSAGE);
    assert_non_null(strstr(err.msg, "after allocation"));

    l3d_params q;
    l3d_params_init(&q);
    assert_int_equal(l3d_params_add(&q, "a", 1, one, NULL), 0);
    assert_int_equal(l3d_params_add(&q, "a", 1, one, &err), L3D_EUSAGE);
    const int64_t zero[1] = {0};
    assert_int_equal(l3d_params_add(&q, "z", 1, zero, &err), L3D_EUSAGE);
    char why[256];
    assert_int_equal(l3d_table_equal(&q.layout, &p.layout, why, sizeof why), 0);
    assert_non_null(strstr(why, "'a'"));
    assert_int_equal(l3d_table_equal(&p.layout, &p.layout, why, sizeof why), 1);
    l3d_params_free(&q);

    for (size_t i = 0; i < p.layout.numel; i++)
        p.grad[i] = 1.0f;
    l3d_params_zero_grad(&p);
    for (size_t i = 0; i < p.layout.numel; i++)
        assert_true(p.grad[i] == 0.0f);
    l3d_params_free(&p);
}

static void test_clip(void **state)
{
    (void)state;
    float g[2] = {3, 4};
    assert_true(l3d_clip_grad_norm(g, 2, 35) == 5.0);
    assert_true(g[0] == 3 && g[1] == 4);                 /* below max: untouched */
    assert_true(l3d_clip_grad_norm(g, 2, 1) == 5.0);
    float coef = 1.0f / (5.0f + 1e-6f);
    assert_true(g[0] == 3 * coef && g[1] == 4 * coef);
    assert_true(fabs(g[0] - 0.6) < 1e-6 && fabs(g[1] - 0.8) < 1e-6);

    /* Norm exactly 35: in float32, as PyTorch forms it, 35 + 1e-6 rounds to 35,
     * the coefficient is 1 and nothing changes; 4 ulps above, it scales. */
    float h[2] = {21, 28};
    assert_true(l3d_clip_grad_norm(h, 2, 35) == 35.0);
    assert_true(h[0] == 21 && h[1] == 28);
    h[1] = nextafterf(nextafterf(nextafterf(nextafterf(28, 99), 99), 99), 99);
    double hn = l3d_clip_grad_norm(h, 2, 35);
    assert_true(h[0] == 21 * (35.0f / ((float)hn + 1e-6f)) && h[0] < 21);

    l3d_params p;                                        /* over an arena: gaps add 0 */
    build_arena(&p, 0);
    for (size_t i = 0; i < l3d_params_find(&p, "fc.weight")->numel; i++)
        l3d_params_grad(&p, "fc.weight")[i] = 100;
    l3d_params_grad(&p, "fc.bias")[6] = 100;
    double n = l3d_params_clip_grad_norm(&p, 35);
    assert_true(fabs(n - 400.0) < 1e-9);
    assert_true(fabs(l3d_params_grad(&p, "fc.bias")[6] - 35 * 100 / 400.0) < 1e-4);
    assert_true(fabs(l3d_grad_norm(p.grad, p.layout.numel) - 35) < 1e-4);
    l3d_params_free(&p);

    float bad[3] = {1, NAN, 2};
    assert_true(isnan(l3d_clip_grad_norm(bad, 3, 35)));
    assert_true(isnan(bad[0]));                          /* PyTorch: NaN everywhere */
}

static void test_accum(void **state)
{
    (void)state;
    l3d_accum a;
    l3d_accum_init(&a, 4);
    assert_true(l3d_accum_loss_grad(&a) == 0.25f);
    int steps[8];
    for (int i = 0; i < 8; i++)
        steps[i] = l3d_accum_tick(&a);
    const int want[8] = {0, 0, 0, 1, 0, 0, 0, 1};
    assert_memory_equal(steps, want, sizeof want);
    l3d_accum_init(&a, 3);
    assert_true(l3d_accum_loss_grad(&a) == 1.0f / 3.0f);
    l3d_accum_init(&a, 1);
    assert_int_equal(l3d_accum_tick(&a), 1);
    float g[3] = {3, 6, 1};
    l3d_grad_average(g, 3, 3);
    assert_true(g[0] == 1 && g[1] == 2 && g[2] == 1.0f / 3.0f);
}

/* ---- loss scaler ------------------------------------------------------------ */

/* DeepSpeed DynamicLossScaler.update_scale, transcribed. */
typedef struct ds {
    double cur_scale;
    int64_t cur_iter, last_overflow_iter;
    int cur_hysteresis;
} ds;
static void ds_update(ds *s, int overflow)
{
    const double scale_factor = 2, min_scale = 1;
    const int delayed_shift = 2, scale_window = 1000;
    if (overflow) {
        if (delayed_shift == 1 || s->cur_hysteresis == 1)
            s->cur_scale = fmax(s->cur_scale / scale_factor, min_scale);  /* (DS raises at min) */
        else
            s->cur_hysteresis -= 1;
        s->last_overflow_iter = s->cur_iter;
    } else if ((s->cur_iter - s->last_overflow_iter) % scale_window == 0) {
        s->cur_hysteresis = delayed_shift;
        s->cur_scale *= scale_factor;
    }
    s->cur_iter += 1;
}

static void test_scaler_inject_inf(void **state)
{
    (void)state;
    l3d_loss_scaler s;
    l3d_scaler_init(&s);
    assert_true(s.scale == 4294967296.0);
    char log[256];
    float g[4] = {1, 2, INFINITY, 3};
    /* first overflow: skipped, scale kept, hysteresis 2 -> 1; grads untouched */
    assert_int_equal(l3d_scaler_unscale_update(&s, g, 4, log, sizeof log), L3D_SCALER_HYSTERESIS);
    assert_true(s.scale == 0x1p32 && s.cur_hysteresis == 1 && g[0] == 1);
    assert_non_null(strstr(log, "skipping"));
    /* clean steps in between do not restore the hysteresis */
    float ok[2];
    for (int i = 0; i < 10; i++) {
        ok[0] = 0x1p32f * 0.5f, ok[1] = -0x1p32f * 3;
        assert_int_equal(l3d_scaler_unscale_update(&s, ok, 2, log, sizeof log), L3D_SCALER_OK);
        assert_true(ok[0] == 0.5f && ok[1] == -3.0f);    /* unscaled by the scale used */
    }
    g[2] = NAN;
    assert_int_equal(l3d_scaler_unscale_update(&s, g, 4, log, sizeof log), L3D_SCALER_BACKOFF);
    assert_true(s.scale == 0x1p31);
    assert_int_equal(l3d_scaler_update(&s, 1, NULL, 0), L3D_SCALER_BACKOFF);
    assert_true(s.scale == 0x1p30 && s.skipped == 3);
    /* 999 clean updates: no growth; the 1000th doubles and restores hysteresis */
    for (int i = 0; i < 999; i++)
        assert_int_equal(l3d_scaler_update(&s, 0, NULL, 0), L3D_SCALER_OK);
    assert_true(s.scale == 0x1p30);
    assert_int_equal(l3d_scaler_update(&s, 0, log, sizeof log), L3D_SCALER_GREW);
    assert_true(s.scale == 0x1p31 && s.cur_hysteresis == 2);
    assert_int_equal(l3d_scaler_update(&s, 1, NULL, 0), L3D_SCALER_HYSTERESIS);
    assert_true(s.scale == 0x1p31);

    /* from the start, the 1000th clean update grows */
    l3d_scaler_init(&s);
    for (int i = 0; i < 999; i++)
        l3d_scaler_update(&s, 0, NULL, 0);
    assert_true(s.scale == 0x1p32);
    assert_int_equal(l3d_scaler_update(&s, 0, NULL, 0), L3D_SCALER_GREW);
    assert_true(s.scale == 0x1p33);

    /* never below the minimum */
    l3d_scaler_init_custom(&s, 4, 2, 1000, 2, 0, 1);
    const int ev[6] = {L3D_SCALER_HYSTERESIS, L3D_SCALER_BACKOFF, L3D_SCALER_BACKOFF,
                       L3D_SCALER_AT_MIN, L3D_SCALER_AT_MIN, L3D_SCALER_AT_MIN};
    const double sc[6] = {4, 2, 1, 1, 1, 1};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(l3d_scaler_update(&s, 1, log, sizeof log), ev[i]);
        assert_true(s.scale == sc[i]);
        assert_true(l3d_scaler_skipped(ev[i]));
    }
    assert_non_null(strstr(log, "minimum"));
}

static void test_scaler_vs_deepspeed(void **state)
{
    (void)state;
    l3d_rng r;
    l3d_rng_seed(&r, 11);
    for (int run = 0; run < 20; run++) {
        l3d_loss_scaler s;
        l3d_scaler_init(&s);
        ds d = {0x1p32, 0, -1, 2};
        double p = run < 10 ? 0.0015 : 0.05;               /* rare and frequent overflows */
        for (int i = 0; i < 6000; i++) {
            int of = l3d_rng_uniform(&r) < p;
            l3d_scaler_update(&s, of, NULL, 0);
            ds_update(&d, of);
            if (s.scale != d.cur_scale || s.cur_hysteresis != d.cur_hysteresis)
                fail_msg("run %d update %d: scale %g h %d, DeepSpeed %g h %d", run, i, s.scale,
                         s.cur_hysteresis, d.cur_scale, d.cur_hysteresis);
        }
    }
}

static void test_scaler_state(void **state)
{
    (void)state;
    l3d_loss_scaler a, b;
    l3d_scaler_init(&a);
    for (int i = 0; i < 1500; i++)
        l3d_scaler_update(&a, i % 700 == 3, NULL, 0);
    uint8_t img[L3D_SCALER_BYTES];
    l3d_scaler_save(&a, img);
    memset(&b, 0xab, sizeof b);
    assert_int_equal(l3d_scaler_restore(&b, img), 0);
    uint8_t again[L3D_SCALER_BYTES];
    l3d_scaler_save(&b, again);
    assert_memory_equal(img, again, sizeof img);
    assert_true(b.last_overflow_iter == 1403 && b.cur_iter == 1500 && b.skipped == 3);
    for (int i = 0; i < 3000; i++) {
        int of = i % 911 == 5;
        assert_int_equal(l3d_scaler_update(&a, of, NULL, 0), l3d_scaler_update(&b, of, NULL, 0));
    }
    assert_true(a.scale == b.scale && a.cur_iter == b.cur_iter);
    assert_true(a.last_overflow_iter == b.last_overflow_iter);
    assert_true(a.cur_hysteresis == b.cur_hysteresis);
    uint8_t bad[L3D_SCALER_BYTES];
    memcpy(bad, img, sizeof img);
    bad[0] = 9;                                           /* version */
    assert_int_equal(l3d_scaler_restore(&b, bad), -1);
    memcpy(bad, img, sizeof img);
    memset(bad + 8, 0, 8);                                /* scale 0 */
    assert_int_equal(l3d_scaler_restore(&b, bad), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw_vs_double),   cmocka_unit_test(test_adamw_hand),
        cmocka_unit_test(test_adamw_arena_fp16),  cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_params_arena),      cmocka_unit_test(test_clip),
        cmocka_unit_test(test_accum),             cmocka_unit_test(test_scaler_inject_inf),
        cmocka_unit_test(test_scaler_vs_deepspeed), cmocka_unit_test(test_scaler_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
