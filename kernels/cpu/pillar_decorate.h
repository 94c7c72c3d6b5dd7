/* HardVFE input decoration, CPU: spec ssn-model.md §3.1.
 *
 * Every point slot of every pillar gets 10 channels, in this order:
 *   0..3  x, y, z, Δt                 (the raw point)
 *   4..6  x - mx, y - my, z - mz      (offset from the pillar's point mean)
 *   7..9  x - cx, y - cy, z - cz      (offset from the pillar's cell centre)
 * and slots s >= num_points[v] are then zeroed (all 10 channels), the only
 * masking in the whole VFE.
 *
 * The arithmetic follows MMDetection3D's float32 code: the mean is the sum of
 * all slots' xyz (padding included, exactly 0 for voxelizer output) divided by
 * n, rounded once to float (we sum in double, so the mean is the correctly
 * rounded one and does not depend on a reduction order); the cell centre is
 * fl(fl(i·size) + offset) per axis; each offset is one float subtraction.
 *
 * No backward: the inputs are data, nothing upstream of the decoration learns. */
#ifndef LIDAR3D_KERNELS_CPU_PILLAR_DECORATE_H
#define LIDAR3D_KERNELS_CPU_PILLAR_DECORATE_H

#include <stdint.h>

#define L3D_DECORATE_IN 4   /* x, y, z, Δt per input point */
#define L3D_DECORATE_OUT 10 /* channels per decorated point */

/* The centre offsets of the cells whose index is 0: offset[j] = size[j]/2 +
 * range[j] (SSN: -99.875, -99.875, -1), computed in double and rounded once,
 * as Python does before PyTorch sees them. range is as in l3d_voxel_config. */
void l3d_pillar_offsets(const float range[6], const float size[3], float offset[3]);

/* voxels     [m][p][4]          points (x, y, z, Δt); p = slots per pillar (SSN 20)
 * num_points [m]                int32 points used per pillar, 1..p
 * coords     [m][coord_dim]     int32 cell; coord_dim 3: (z, y, x) as the voxelizer
 *                               writes them per sample, 4: (b, z, y, x) batched; the
 *                               last three entries are always z, y, x
 * size[3], offset[3]            voxel size and cell-0 centre per axis (x, y, z)
 * features   [m][p][10]         out
 * A pillar with num_points <= 0 comes out all zeros (it would be NaN in PyTorch,
 * where it cannot occur); num_points > p counts as p. */
void l3d_pillar_decorate_forward(const float *voxels, const int32_t *num_points,
                                 const int32_t *coords, int coord_dim, int64_t m, int p,
                                 const float size[3], const float offset[3], float *features);

#endif
