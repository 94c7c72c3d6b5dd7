/* Training configuration: every hyper-parameter of SSN on Lyft in one struct,
 * with two presets ("lyft", the full MMDetection3D config; "small", the same
 * architecture on a smaller range/grid with a short warm-up), a `key = value`
 * file format, `--set key=value` overrides, and a printer whose output reads
 * back as a config file (stored with checkpoints). docs/training.md lists keys. */
#ifndef LIDAR3D_TRAINER_CONFIG_H
#define LIDAR3D_TRAINER_CONFIG_H

#include <stdio.h>
#include "formats/error.h"

typedef struct l3d_config {
    /* data */
    int sweeps;                  /* 0, 5 or 10 */
    double point_cloud_range[6]; /* xmin ymin zmin xmax ymax zmax, m */
    double voxel_size[3];
    int max_points, max_voxels;
    /* augmentation (spec ssn-model.md §1.5) */
    double rot_range, scale_min, scale_max, flip_h, flip_v;
    int shuffle_points;
    /* network */
    int vfe_channels[2];
    int layer_nums[3], layer_strides[3], out_channels[3];
    int upsample_strides[3], neck_channels;
    double bn_eps, bn_momentum, head_bn_eps, head_bn_momentum;
    /* targets and losses */
    double focal_gamma, focal_alpha, smooth_l1_beta, dir_weight, dir_offset;
    /* optimisation */
    double lr, weight_decay, beta1, beta2, adam_eps;
    int warmup_iters;
    double warmup_ratio;
    int milestones[2];
    double lr_gamma;
    int epochs, batch, accum;
    double grad_clip;
    long seed;
    /* loss scaling for amp/fp16 */
    double init_scale;
    int scale_window, hysteresis;
    double min_scale;
} l3d_config;

/* name: "lyft" or "small". */
int l3d_config_preset(l3d_config *c, const char *name, l3d_err *err);
/* Applies "key = value" (value: numbers separated by spaces or commas). */
int l3d_config_set(l3d_config *c, const char *assignment, const char *where, l3d_err *err);
/* Reads a file of assignments ('#' comments); the first line may be
 * "preset = NAME" to start from a preset. */
int l3d_config_load(l3d_config *c, const char *path, l3d_err *err);
/* Every key, one "key = value" per line, in a fixed order. */
void l3d_config_print(const l3d_config *c, FILE *fp);
/* Checks ranges and consistency (grid divisible by the strides, ...). */
int l3d_config_validate(const l3d_config *c, l3d_err *err);
/* Grid size along x, y from range and voxel size. */
void l3d_config_grid(const l3d_config *c, int *nx, int *ny);

#endif
