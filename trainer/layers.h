/* The two building blocks of SSN as the trainer runs them: a convolution (or
 * transposed convolution) followed by BatchNorm and ReLU, and a plain
 * convolution with bias (the head outputs). Each owns pointers into the
 * parameter arena and its stored activations, and runs forward (train or
 * eval) and backward over kernels/cpu. Precision emulation (amp, fp16) rounds
 * to fp16 where the GPU would store fp16 values (docs/training.md). */
#ifndef LIDAR3D_TRAINER_LAYERS_H
#define LIDAR3D_TRAINER_LAYERS_H

#include <stddef.h>
#include "formats/error.h"
#include "trainer/params.h"

enum { L3D_FP32 = 0, L3D_AMP = 1, L3D_FP16 = 2 };

typedef struct l3d_unit {
    char name[80];                /* parameter name prefix */
    int kind;                     /* 0 conv + BN + ReLU, 1 deconv + BN + ReLU, 2 conv + bias */
    int B, C, H, W, O, k, s, p;   /* input [B][C][H][W], kernel k, stride s, pad p */
    int Ho, Wo;
    double eps, momentum;
    /* names in the arena */
    char w_name[96], b_name[96], g_name[96], beta_name[96], rm_name[96], rv_name[96];
    /* resolved after allocation */
    float *w, *dw, *bias, *dbias, *gamma, *dgamma, *beta, *dbeta, *rmean, *rvar;
    /* activations [B][O][Ho][Wo]: pre = conv output (BN input), out = ReLU output
     * (for kind 2, out = conv output) */
    float *pre, *out;
    float *save_mean, *save_invstd;   /* [O] */
} l3d_unit;

/* Describes a unit and registers its parameters (and BN statistics). */
int l3d_unit_add(l3d_unit *u, l3d_params *P, const char *name, int kind, int B, int C, int H,
                 int W, int O, int k, int s, int p, double eps, double momentum, l3d_err *err);
/* Resolves arena pointers and allocates activations; returns the workspace
 * bytes the unit needs (the caller shares one workspace among units), or
 * (size_t)-1 when out of memory. */
size_t l3d_unit_bind(l3d_unit *u, const l3d_params *P);
void l3d_unit_free(l3d_unit *u);
/* x [B][C][H][W] -> u->out. wq: the weights as used (fp16-rounded copy in
 * amp/fp16 modes, else u->w). */
void l3d_unit_forward(l3d_unit *u, const float *x, const float *wq, int training, int precision,
                      void *ws);
/* dout [B][O][Ho][Wo] (overwritten) -> dx [B][C][H][W] (assigned; NULL skips);
 * parameter gradients accumulate. x is the forward's input. */
void l3d_unit_backward(l3d_unit *u, float *dout, const float *x, const float *wq, float *dx,
                       int precision, void *ws);

/* Kaiming normal (fan_out, ReLU gain) for conv weights, N(0, std) for head
 * outputs, BN gamma 1 beta 0, running stats 0 / 1 (spec ssn-model.md §10.4). */
typedef double (*l3d_normal_fn)(void *rng);
void l3d_unit_init(l3d_unit *u, double std, double bias, l3d_normal_fn normal, void *rng);

#endif
