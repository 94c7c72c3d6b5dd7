/* SSN head layout and anchor generator: spec ssn-model.md §6.1, §6.3, §6.4
 * (AlignedAnchor3DRangeGeneratorPerCls, align_corner False).
 *
 * The head has groups (one BaseShapeHead each) on maps of H x W cells; group g
 * owns classes first_class .. first_class + num_classes - 1. Anchor rows of a
 * sample, which coincide row for row with the head's concatenated outputs:
 *
 *   class k (k = 0..C-1, class order, groups contiguous in class order):
 *     row = cls[k].offset + r * H * W + h * W + w,   r = rotation index 0, 1
 *     anchor = (x[w], y[h], z_k, dx_k, dy_k, dz_k, rotations[r])
 *
 * so group g's rows start at the offset of its first class and base anchor a
 * of the group is class first_class + a / 2, rotation a % 2. The anchor z is a
 * BOTTOM z (spec §12.4). x[w] follows torch.linspace(x_min, x_max, W + 1) in
 * float32 shifted by half its first step (for Lyft exactly
 * x[w] = -100 + (w + 0.5) * 200 / W); y[h] likewise. */
#ifndef LIDAR3D_TRAINER_ANCHORS_H
#define LIDAR3D_TRAINER_ANCHORS_H

#include <stdint.h>

#define L3D_MAX_CLASSES 16
#define L3D_MAX_GROUPS 8
#define L3D_NUM_ROT 2   /* rotations per anchor position: {0, 1.57} */
#define L3D_SSN_CLASSES 9

typedef struct l3d_anchor_class {
    float size[3];     /* dx, dy, dz (m) */
    float z;           /* anchor bottom z (m) */
    float pos_thr;     /* MaxIoU: IoU >= pos_thr -> positive (float32 compare) */
    float neg_thr;     /* 0 <= IoU < neg_thr -> negative */
    float min_pos;     /* low-quality match: a GT's best IoU must be >= min_pos */
    /* filled by l3d_head_layout_finish: */
    int group, H, W;
    int64_t offset;    /* first anchor row of the class */
    int64_t count;     /* L3D_NUM_ROT * H * W */
} l3d_anchor_class;

typedef struct l3d_anchor_group {
    int first_class, num_classes;
    int H, W;          /* map rows (y) and columns (x) */
    /* filled by l3d_head_layout_finish: */
    int64_t offset;    /* first row of the group */
} l3d_anchor_group;

typedef struct l3d_head_layout {
    float range[4];                   /* x_min, y_min, x_max, y_max (m) */
    float rotations[L3D_NUM_ROT];     /* 0, 1.57 (not pi/2) */
    int num_classes, num_groups;
    l3d_anchor_class cls[L3D_MAX_CLASSES];
    l3d_anchor_group group[L3D_MAX_GROUPS];
    int64_t num_anchors;              /* N: rows per sample */
} l3d_head_layout;

/* SSN's four groups and nine classes (spec §6.1: sizes, bottom z, thresholds)
 * over range[4] = (x_min, y_min, x_max, y_max) with BEV pseudo-image cells of
 * `voxel` metres: the pseudo-image has round(extent / voxel) cells a side,
 * which must be a multiple of 8 (backbone strides 2, 2, 2 and the neck's
 * upsampling back to stride 2 only line up then); groups 0, 1 use maps of half
 * that (stride 2), groups 2, 3 a quarter (stride 4). Returns 0, or -1 with
 * *why (if not NULL) naming the bad value. */
int l3d_head_layout_ssn(l3d_head_layout *L, const float range[4], float voxel,
                        const char **why);

/* The Lyft configuration: range (-100, -100, 100, 100), voxel 0.25 m; maps
 * 400 x 400 (groups 0, 1) and 200 x 200 (groups 2, 3), N = 1 680 000. */
void l3d_head_layout_lyft(l3d_head_layout *L);

/* After filling range, rotations, classes (size, z, thresholds) and groups
 * (first_class, num_classes, H, W) by hand: checks them (groups must cover the
 * classes contiguously in order) and fills the derived fields. Returns 0, or
 * -1 with *why. */
int l3d_head_layout_finish(l3d_head_layout *L, const char **why);

/* The grid centres along x (n = W) or y (n = H) of a map: torch.linspace in
 * float32 plus half a step, first n kept. centres [n]. */
void l3d_anchor_centres(float lo, float hi, int n, float *centres);

/* anchors [num_anchors][7], rows as above. */
void l3d_anchors_generate(const l3d_head_layout *L, float *anchors);

#endif
