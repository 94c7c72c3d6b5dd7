/* SSN (PointPillars + shape-aware heads) as MMDetection3D builds it for Lyft
 * (spec ssn-model.md §3-§6): HardVFE -> scatter -> SECOND -> SECONDFPN ->
 * four BaseShapeHead groups, forward and backward on the CPU. Parameter names
 * follow MMDetection3D's module paths, so checkpoints map one to one. */
#ifndef LIDAR3D_TRAINER_MODEL_H
#define LIDAR3D_TRAINER_MODEL_H

#include <stdint.h>
#include "trainer/anchors.h"
#include "trainer/config.h"
#include "trainer/layers.h"
#include "trainer/params.h"
#include "trainer/rng.h"

#define L3D_MAX_BACKBONE 24
#define L3D_HEAD_UNITS 3

/* One batch of pillars: the voxelizer's output of each sample concatenated,
 * coords with the batch index prepended. */
typedef struct l3d_pillars {
    int64_t m;                 /* pillars in all */
    const float *voxels;       /* [m][max_points][4] x, y, z, time lag */
    const int32_t *num_points; /* [m] */
    const int32_t *coords;     /* [m][4] b, z, y, x */
} l3d_pillars;

typedef struct l3d_head_group {
    int n_shared;
    l3d_unit shared[L3D_HEAD_UNITS];
    l3d_unit cls, reg, dir;    /* 1x1 convs with bias */
    int A;                     /* anchors per cell: 2 rotations x classes of the group */
} l3d_head_group;

typedef struct l3d_model {
    l3d_config cfg;
    int B, precision, nx, ny;
    int64_t max_pillars;
    l3d_params P;
    l3d_head_layout layout;
    int64_t N;                 /* anchors (output rows) per sample */
    /* VFE */
    char vfe_w[2][96], vfe_g[2][96], vfe_b[2][96], vfe_rm[2][96], vfe_rv[2][96];
    float *vfe_in;             /* [M][P][10] */
    float *vfe_pre[2], *vfe_act[2];   /* linear outputs, ReLU outputs [M][P][32|64] */
    float *vfe_cat;            /* [M][P][64] layer 0 pointwise ‖ max */
    float *vfe_out;            /* [M][64] */
    int32_t *vfe_arg[2];       /* [M][32|64] */
    float *vfe_mean[2], *vfe_invstd[2];
    int64_t m;                 /* pillars of the current batch */
    const int32_t *coords;     /* of the current batch */
    float *canvas;             /* [B][64][ny][nx] */
    /* backbone, neck */
    int n_blocks[3];
    l3d_unit backbone[L3D_MAX_BACKBONE];
    l3d_unit neck[3];
    float *F;                  /* [B][3·neck][H1][W1] concatenated neck output */
    /* heads */
    int n_groups;
    l3d_head_group head[4];
    /* outputs, rows as the anchors [B][N][...] */
    float *cls, *reg, *dir;
    /* scratch */
    void *ws;
    size_t ws_bytes;
    float *wq;                 /* fp16-rounded weights (amp/fp16) */
    float *grad_a, *grad_b, *grad_c;   /* activation gradient buffers, largest map */
    size_t grad_floats;
    float *dF, *dstage[3], *dpillars;  /* backward: neck input, stage outputs, VFE output */
} l3d_model;

/* Registers every parameter, allocates them and the activations for `batch`
 * samples of at most cfg->max_voxels pillars each. */
int l3d_model_build(l3d_model *m, const l3d_config *cfg, int batch, int precision, l3d_err *err);
void l3d_model_free(l3d_model *m);
/* Initialisation as MMDetection3D (spec §10.4). */
void l3d_model_init(l3d_model *m, l3d_rng *rng);
/* Forward: fills m->cls [B][N][9], m->reg [B][N][7], m->dir [B][N][2].
 * Returns 0, or -1 when a coordinate lies outside the canvas. */
int l3d_model_forward(l3d_model *m, const l3d_pillars *in, int training);
/* Backward from the output gradients (each [B][N][...], overwritten);
 * parameter gradients accumulate. */
void l3d_model_backward(l3d_model *m, float *dcls, float *dreg, float *ddir);
/* Copies the weights rounded to fp16 into m->wq (amp/fp16); call after each
 * optimizer step and after loading. */
void l3d_model_refresh_weights(l3d_model *m);

#endif
