/* One SSN training run's state and its optimizer step: batch -> forward ->
 * targets -> losses -> backward -> (unscale, overflow check) -> clip -> AdamW.
 * The CLI (tools/ssn-train.c) drives it and owns logging and checkpoints. */
#ifndef LIDAR3D_TRAINER_TRAINER_H
#define LIDAR3D_TRAINER_TRAINER_H

#include "kernels/cpu/ssn_losses.h"
#include "trainer/checkpoint.h"
#include "trainer/loader.h"
#include "trainer/loss_scaler.h"
#include "trainer/model.h"
#include "trainer/optim.h"

typedef struct l3d_step_log {
    int64_t step;              /* optimizer steps done after this one */
    double loss, cls, bbox, dir, lr, loss_scale, grad_norm;
    int skipped;               /* overflow: the update was not applied */
    int64_t positives;         /* positive anchors in the last micro-batch */
    double data_ms, compute_ms;
    char scaler_event[160];
} l3d_step_log;

typedef struct l3d_trainer {
    l3d_config cfg;
    int precision;
    l3d_model model;
    l3d_loader loader;
    float *anchors;            /* [N][7] */
    l3d_ssn_targets t;         /* [B·N] rows */
    float *dcls, *dreg, *ddir;
    l3d_adamw opt;
    l3d_lr_schedule sched;
    l3d_loss_scaler scaler;
    int64_t step, iters_per_epoch;
} l3d_trainer;

/* AdamW, the LR schedule and the loss scaler as the config says (one place for
 * the trainer and the benchmarks that replay its step). */
void l3d_optim_from_config(const l3d_config *cfg, int64_t iters_per_epoch, l3d_adamw *opt,
                           l3d_lr_schedule *sched, l3d_loss_scaler *scaler);

/* voxel_input: the caches are voxel caches (flips only), else sweep caches. */
int l3d_trainer_open(l3d_trainer *T, const l3d_config *cfg, int precision, char *const *caches,
                     int n_caches, int voxel_input, l3d_err *err);
void l3d_trainer_close(l3d_trainer *T);
/* One optimizer step (cfg.accum micro-batches). */
int l3d_trainer_step(l3d_trainer *T, l3d_step_log *log, l3d_err *err);
int64_t l3d_trainer_epoch(const l3d_trainer *T);

/* Checkpoint views of the state (borrowing T's buffers). */
void l3d_trainer_ckpt(l3d_trainer *T, l3d_ckpt *c, uint8_t rng[L3D_RNG_STATE_BYTES],
                      uint8_t pos[16], char *config_text, char *hashes);
/* After l3d_ckpt_load_latest filled c: restores the loader position. */
int l3d_trainer_restore(l3d_trainer *T, const l3d_ckpt *c, l3d_err *err);

#endif
