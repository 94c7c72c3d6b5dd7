/* DeltaXYZWLHRBBoxCoder (code size 7) and the direction bins of SSN: spec
 * ssn-model.md §7.2, §7.3, §9 step 8.
 *
 * Boxes are (x, y, z_bottom, dx, dy, dz, yaw) in MMDetection3D's LiDAR
 * convention (spec §1.1): z is the BOTTOM face. Anchors and ground truth both
 * use it; the coder moves z to the gravity centre internally (z + dz/2), as
 * MMDetection3D does. Callers holding geometric-centre boxes (our caches)
 * convert with z_bottom = z - dz/2 before calling.
 *
 * Everything is float32, one operation at a time in MMDetection3D's order
 * (ISO C mode keeps GCC from contracting a*b+c into an FMA). */
#ifndef LIDAR3D_TRAINER_BOX_CODER_H
#define LIDAR3D_TRAINER_BOX_CODER_H

/* dir_offset of the config is the literal -0.7854 (not -pi/4); we keep its
 * magnitude and add it where MMDetection3D subtracts the negative value
 * (x - (-c) and x + c round identically). */
#define L3D_DIR_OFFSET 0.7854f
/* pi, 2 pi as float32: the Python doubles np.pi, 2*np.pi meet float32 tensors. */
#define L3D_PI_F 3.14159274101257324f
#define L3D_2PI_F 6.28318548202514648f

/* mmdet3d limit_period: val - floor(val / period + offset) * period, float32.
 * (The spec writes a division; PyTorch on CUDA multiplies by the float32
 * reciprocal instead, which can move floor() for values within one ulp of a
 * period boundary: measure zero, not reproduced.) */
float l3d_limit_period(float val, float offset, float period);

/* anchor [7], gt [7] -> t [7]:
 *   ((xg-xa)/diag, (yg-ya)/diag, (zg'-za')/dza, log(dxg/dxa), log(dyg/dya),
 *    log(dzg/dza), yaw_g - yaw_a), diag = sqrt(dya^2 + dxa^2), z' = z + dz/2.
 * The angle residual is not wrapped. */
void l3d_box_encode(const float anchor[7], const float gt[7], float t[7]);

/* anchor [7], t [7] -> box [7] (bottom z): the inverse of l3d_box_encode. */
void l3d_box_decode(const float anchor[7], const float t[7], float box[7]);

/* Direction bin (0 or 1) of yaw theta = t6 + anchor_yaw (recomputed in float32
 * as MMDetection3D does): u = limit_period(theta + 0.7854, 0, 2 pi),
 * bin = clamp(floor(u / pi), 0, 1). Bin 0 <=> (theta + 0.7854) mod 2 pi < pi. */
int l3d_dir_target(float t6, float anchor_yaw);

/* Inference direction fix (spec §9 step 8): v = limit_period(yaw + 0.7854, 0, pi),
 * result = (v - 0.7854) + pi * dir_label. */
float l3d_dir_fix(float yaw, int dir_label);

#endif
