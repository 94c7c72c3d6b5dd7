/* Training augmentation and filtering, in the exact order of spec ssn-model.md
 * §1.5: global rotation, scaling (and a zero translation), horizontal then
 * vertical flip, point range filter, object range filter with yaw wrapping,
 * point shuffle. The random draws are made by the caller and passed in, so
 * parity tests can inject the values PyTorch drew. Boxes are MMDetection3D
 * LiDAR boxes: x, y, z_bottom, dx, dy, dz, yaw. */
#ifndef LIDAR3D_TRAINER_AUGMENT_H
#define LIDAR3D_TRAINER_AUGMENT_H

#include <stdint.h>

typedef struct l3d_aug_draw {
    float rotation;      /* rad, U(-rot_range, rot_range) */
    float scale;         /* U(scale_min, scale_max) */
    int flip_h;          /* y -> -y, yaw -> -yaw */
    int flip_v;          /* x -> -x, yaw -> pi - yaw */
} l3d_aug_draw;

/* Rotation, scaling and flips, in place. points [n][dim] (x y z first),
 * boxes [nb][7]. */
void l3d_augment_apply(const l3d_aug_draw *d, float *points, int64_t n, int dim, float *boxes,
                       int64_t nb);

/* ObjectRangeFilter: keeps boxes (and their labels) whose BEV centre lies
 * strictly inside range (x, y only), in order, then wraps every kept yaw to
 * [-pi, pi). Returns the number kept. */
int64_t l3d_boxes_range_filter(float *boxes, int32_t *labels, int64_t nb, const float range[6]);

/* Geometric-centre boxes (caches, index) -> bottom-centred: z -= dz / 2. */
void l3d_boxes_to_bottom(float *boxes, int64_t nb);

/* Applies a permutation: out[i] = points[perm[i]] (out must not alias). */
void l3d_points_permute(const float *points, const int64_t *perm, int64_t n, int dim, float *out);

#endif
