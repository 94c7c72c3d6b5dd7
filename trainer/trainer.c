#include "trainer/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trainer/assign.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

void l3d_optim_from_config(const l3d_config *cfg, int64_t iters_per_epoch, l3d_adamw *opt,
                           l3d_lr_schedule *sched, l3d_loss_scaler *scaler)
{
    l3d_adamw_init(opt);
    opt->beta1 = cfg->beta1;
    opt->beta2 = cfg->beta2;
    opt->eps = cfg->adam_eps;
    opt->weight_decay = cfg->weight_decay;
    l3d_lr_schedule_ssn(sched, iters_per_epoch);
    sched->base_lr = cfg->lr;
    sched->warmup_start = cfg->warmup_ratio;
    sched->warmup_end = cfg->warmup_iters;
    sched->n_milestones = 2;
    sched->milestones[0] = cfg->milestones[0];
    sched->milestones[1] = cfg->milestones[1];
    sched->gamma = cfg->lr_gamma;
    l3d_scaler_init_custom(scaler, cfg->init_scale, 2, cfg->scale_window, cfg->hysteresis, 0,
                           cfg->min_scale);
}

int l3d_trainer_open(l3d_trainer *T, const l3d_config *cfg, int precision, char *const *caches,
                     int n_caches, int voxel_input, l3d_err *err)
{
    memset(T, 0, sizeof *T);
    T->cfg = *cfg;
    T->precision = precision;
    int rc = l3d_model_build(&T->model, cfg, cfg->batch, precision, err);
    if (rc)
        return rc;
    rc = voxel_input ? l3d_loader_open_voxels(&T->loader, caches, n_caches, cfg, 1, cfg->batch,
                                              (uint64_t)cfg->seed * 2 + 1, err)
                     : l3d_loader_open(&T->loader, caches, n_caches, cfg, 1, cfg->batch,
                                       (uint64_t)cfg->seed * 2 + 1, err);
    if (rc)
        return rc;
    int64_t N = T->model.N, R = (int64_t)cfg->batch * N;
    int C = T->model.layout.num_classes;
    T->anchors = malloc((size_t)N * 7 * sizeof(float));
    int targets_rc = l3d_ssn_targets_alloc(&T->t, R);
    T->dcls = malloc((size_t)R * C * sizeof(float));
    T->dreg = malloc((size_t)R * 7 * sizeof(float));
    T->ddir = malloc((size_t)R * 2 * sizeof(float));
    if (!T->anchors || targets_rc || !T->dcls || !T->dreg || !T->ddir)
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    l3d_anchors_generate(&T->model.layout, T->anchors);
    l3d_rng init;
    l3d_rng_seed(&init, (uint64_t)cfg->seed * 2);
    l3d_model_init(&T->model, &init);
    if (T->model.P.master)
        memcpy(T->model.P.master, T->model.P.param, T->model.P.layout.numel * sizeof(float));
    int64_t per_step = (int64_t)cfg->batch * cfg->accum;
    T->iters_per_epoch = T->loader.n_samples / per_step > 0 ? T->loader.n_samples / per_step : 1;
    l3d_optim_from_config(cfg, T->iters_per_epoch, &T->opt, &T->sched, &T->scaler);
    return L3D_OK;
}

void l3d_trainer_close(l3d_trainer *T)
{
    l3d_model_free(&T->model);
    l3d_loader_close(&T->loader);
    free(T->anchors);
    l3d_ssn_targets_free(&T->t);
    free(T->dcls); free(T->dreg); free(T->ddir);
    memset(T, 0, sizeof *T);
}

int64_t l3d_trainer_epoch(const l3d_trainer *T) { return T->step / T->iters_per_epoch; }

static void scale_grads(float *g, size_t n, float s)
{
    if (s != 1.0f)
        for (size_t i = 0; i < n; i++)
            g[i] *= s;
}

int l3d_trainer_step(l3d_trainer *T, l3d_step_log *log, l3d_err *err)
{
    memset(log, 0, sizeof *log);
    l3d_model *m = &T->model;
    int B = T->cfg.batch, C = m->layout.num_classes;
    int64_t N = m->N, R = (int64_t)B * N;
    double scale = T->precision == L3D_FP32 ? 1.0 : T->scaler.scale;
    l3d_params_zero_grad(&m->P);
    for (int micro = 0; micro < T->cfg.accum; micro++) {
        int rc = l3d_loader_next(&T->loader, err);
        if (rc)
            return rc;
        log->data_ms += T->loader.wait_ms;
        double t0 = now_ms();
        l3d_pillars in = {T->loader.m, T->loader.voxels, T->loader.num_points, T->loader.coords};
        if (l3d_model_forward(m, &in, 1))
            return l3d_fail(err, L3D_EINTERNAL, "a pillar lies outside the canvas");
        int64_t P[64];
        for (int b = 0; b < B; b++) {
            l3d_ssn_targets tb = l3d_ssn_targets_at(&T->t, (int64_t)b * N);
            int64_t b0 = T->loader.box_off[b], nb = T->loader.box_off[b + 1] - b0;
            P[b] = l3d_assign_targets(&m->layout, T->anchors, T->loader.boxes + 7 * b0,
                                      T->loader.labels + b0, (int)nb, &tb);
            if (P[b] < 0)
                return l3d_fail(err, L3D_EINTERNAL, "out of memory in the assigner");
            log->positives += P[b];
        }
        double ntp = (double)l3d_num_total_pos(P, B);
        l3d_ssn_loss L = l3d_ssn_loss_forward(m->cls, m->reg, m->dir, R, C, &T->t, ntp);
        log->cls += L.cls / T->cfg.accum;
        log->bbox += L.bbox / T->cfg.accum;
        log->dir += L.dir / T->cfg.accum;
        l3d_ssn_loss_backward(m->cls, m->reg, m->dir, R, C, &T->t, ntp, T->dcls, T->dreg, T->ddir);
        /* the loss is averaged over micro-batches and multiplied by the loss scale */
        float s = (float)(scale / T->cfg.accum);
        scale_grads(T->dcls, (size_t)R * C, s);
        scale_grads(T->dreg, (size_t)R * 7, s);
        scale_grads(T->ddir, (size_t)R * 2, s);
        l3d_model_backward(m, T->dcls, T->dreg, T->ddir);
        log->compute_ms += now_ms() - t0;
    }
    log->loss = log->cls + log->bbox + log->dir;
    log->loss_scale = scale;
    if (T->precision != L3D_FP32) {
        int ev = l3d_scaler_unscale_update(&T->scaler, m->P.grad, m->P.layout.numel,
                                           log->scaler_event, sizeof log->scaler_event);
        if (l3d_scaler_skipped(ev)) {
            log->skipped = 1;
            l3d_params_zero_grad(&m->P);
        }
    }
    log->lr = l3d_lr_at(&T->sched, T->step);
    if (!log->skipped) {
        log->grad_norm = T->cfg.grad_clip > 0 ? l3d_params_clip_grad_norm(&m->P, T->cfg.grad_clip)
                                              : l3d_grad_norm(m->P.grad, m->P.layout.numel);
        l3d_adamw_step(&T->opt, log->lr, &m->P);
        l3d_model_refresh_weights(m);
    }
    /* the schedule follows optimizer steps attempted, as an iteration-based runner does */
    T->step++;
    log->step = T->step;
    return L3D_OK;
}

static void put64(uint8_t *p, int64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)((uint64_t)v >> (8 * i));
}

static int64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return (int64_t)v;
}

void l3d_trainer_ckpt(l3d_trainer *T, l3d_ckpt *c, uint8_t rng[L3D_RNG_STATE_BYTES],
                      uint8_t pos[16], char *config_text, char *hashes)
{
    l3d_loader_pos p;
    l3d_loader_get_pos(&T->loader, &p);
    memcpy(rng, p.rng, L3D_RNG_STATE_BYTES);
    put64(pos, p.epoch);
    put64(pos + 8, p.pos);
    *c = (l3d_ckpt){.params = &T->model.P, .opt = &T->opt, .scaler = &T->scaler,
                    .step = T->step, .epoch = l3d_trainer_epoch(T), .rng = rng,
                    .rng_len = L3D_RNG_STATE_BYTES, .data_pos = pos, .data_pos_len = 16,
                    .config = config_text, .cache_hashes = hashes};
}

int l3d_trainer_restore(l3d_trainer *T, const l3d_ckpt *c, l3d_err *err)
{
    if (c->rng_len != L3D_RNG_STATE_BYTES || c->data_pos_len != 16)
        return l3d_fail(err, L3D_EINPUT, "checkpoint: unexpected RNG or data-position size");
    l3d_loader_pos p;
    memcpy(p.rng, c->rng, L3D_RNG_STATE_BYTES);
    p.epoch = get64(c->data_pos);
    p.pos = get64(c->data_pos + 8);
    T->step = c->step;
    l3d_model_refresh_weights(&T->model);
    return l3d_loader_set_pos(&T->loader, &p, err);
}
