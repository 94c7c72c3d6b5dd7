/* The VFE's per-pillar max over slots, and layer 0's [pointwise ‖ max]
 * concatenation, CPU: spec ssn-model.md §3.2.
 *
 * The max runs over all p slots, padded ones included (they may win). argmax
 * is the first maximal slot, as torch.max returns; a NaN counts as larger than
 * every number (torch.max propagates it). Requires p >= 1. The backward routes
 * each pillar-channel gradient to its argmax slot only. */
#ifndef LIDAR3D_KERNELS_CPU_VFE_MAX_H
#define LIDAR3D_KERNELS_CPU_VFE_MAX_H

#include <stdint.h>

/* x [m][p][c] -> y [m][c] = max over slots; argmax [m][c] int32 slot index. */
void l3d_vfe_max_forward(const float *x, int64_t m, int p, int c, float *y, int32_t *argmax);

/* dy [m][c], argmax [m][c] -> dx [m][p][c] assigned: dy at the argmax slot, 0 elsewhere. */
void l3d_vfe_max_backward(const float *dy, const int32_t *argmax, int64_t m, int p, int c,
                          float *dx);

/* x [m][p][c] -> y [m][p][2c]: slot s of pillar v gets [x[v][s][:], max_s' x[v][s'][:]];
 * argmax [m][c] as for l3d_vfe_max_forward. */
void l3d_vfe_max_concat_forward(const float *x, int64_t m, int p, int c, float *y,
                                int32_t *argmax);

/* dy [m][p][2c], argmax [m][c] -> dx [m][p][c] assigned: the first c channels of
 * each slot's gradient go to that slot; the last c are summed over the p slots
 * (in double, slot order, rounded once) and added at the argmax slot. */
void l3d_vfe_max_concat_backward(const float *dy, const int32_t *argmax, int64_t m, int p, int c,
                                 float *dx);

#endif
