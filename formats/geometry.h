/* Double-precision geometry for Lyft poses and boxes.
 *
 * Quaternions are [w, x, y, z] as in the tables. Matrices are 3x3 row-major.
 * Semantics follow ../shared/spec/lyft-data.md §3 (pyquaternion's conventions):
 * rotation matrices normalise the quaternion first, inverses are conj/|q|^2,
 * and yaw is pyquaternion's atan2(2(wz - xy), 1 - 2(y^2 + z^2)). */
#ifndef LIDAR3D_FORMATS_GEOMETRY_H
#define LIDAR3D_FORMATS_GEOMETRY_H

typedef struct l3d_pose {
    double t[3];  /* translation */
    double q[4];  /* rotation quaternion [w, x, y, z] */
} l3d_pose;

void l3d_quat_to_rot(const double q[4], double R[9]);
void l3d_quat_mul(const double a[4], const double b[4], double out[4]);   /* a ⊗ b */
void l3d_quat_inverse(const double q[4], double out[4]);                  /* conj / |q|^2 */
double l3d_quat_yaw(const double q[4]);                                   /* pyquaternion yaw */

void l3d_mat3_mul(const double A[9], const double B[9], double out[9]);   /* A·B */
void l3d_mat3_transpose(const double A[9], double out[9]);
void l3d_mat3_vec(const double A[9], const double v[3], double out[3]);   /* A·v */

/* Transform taking points of a sweep's LiDAR frame into the key frame's LiDAR
 * frame (spec §3.3): p_key = R·p_sweep + T.
 *   key_l2e, key_e2g: key frame lidar->ego (calibrated_sensor), ego->global (ego_pose)
 *   sw_l2e,  sw_e2g:  the same for the sweep */
void l3d_sweep_to_key(const l3d_pose *key_l2e, const l3d_pose *key_e2g, const l3d_pose *sw_l2e,
                      const l3d_pose *sw_e2g, double R[9], double T[3]);

/* Global-frame annotation (centre, Lyft size [w, l, h], rotation) to a
 * gt_box [x, y, z, l, w, h, yaw] in the key-frame LiDAR frame (spec §3.4).
 * The centre stays the geometric centre. */
void l3d_box_global_to_lidar(const double centre[3], const double size_wlh[3], const double q[4],
                             const l3d_pose *l2e, const l3d_pose *e2g, double box[7]);

#endif
