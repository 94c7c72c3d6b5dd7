#include "formats/geometry.h"

#include <math.h>

void l3d_quat_to_rot(const double q[4], double R[9])
{
    double n = sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
    double w = q[0] / n, x = q[1] / n, y = q[2] / n, z = q[3] / n;
    R[0] = 1 - 2 * (y * y + z * z); R[1] = 2 * (x * y - w * z);     R[2] = 2 * (x * z + w * y);
    R[3] = 2 * (x * y + w * z);     R[4] = 1 - 2 * (x * x + z * z); R[5] = 2 * (y * z - w * x);
    R[6] = 2 * (x * z - w * y);     R[7] = 2 * (y * z + w * x);     R[8] = 1 - 2 * (x * x + y * y);
}

void l3d_quat_mul(const double a[4], const double b[4], double o[4])
{
    double w = a[0] * b[0] - a[1] * b[1] - a[2] * b[2] - a[3] * b[3];
    double x = a[0] * b[1] + a[1] * b[0] + a[2] * b[3] - a[3] * b[2];
    double y = a[0] * b[2] - a[1] * b[3] + a[2] * b[0] + a[3] * b[1];
    double z = a[0] * b[3] + a[1] * b[2] - a[2] * b[1] + a[3] * b[0];
    o[0] = w; o[1] = x; o[2] = y; o[3] = z;
}

void l3d_quat_inverse(const double q[4], double o[4])
{
    double n2 = q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3];
    o[0] = q[0] / n2; o[1] = -q[1] / n2; o[2] = -q[2] / n2; o[3] = -q[3] / n2;
}

double l3d_quat_yaw(const double q[4])
{
    double n = sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
    double w = q[0] / n, x = q[1] / n, y = q[2] / n, z = q[3] / n;
    return atan2(2 * (w * z - x * y), 1 - 2 * (y * y + z * z));
}

void l3d_mat3_mul(const double A[9], const double B[9], double o[9])
{
    double t[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            t[3 * i + j] = A[3 * i] * B[j] + A[3 * i + 1] * B[3 + j] + A[3 * i + 2] * B[6 + j];
    for (int k = 0; k < 9; k++)
        o[k] = t[k];
}

void l3d_mat3_transpose(const double A[9], double o[9])
{
    double t[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            t[3 * j + i] = A[3 * i + j];
    for (int k = 0; k < 9; k++)
        o[k] = t[k];
}

void l3d_mat3_vec(const double A[9], const double v[3], double o[3])
{
    double t[3];
    for (int i = 0; i < 3; i++)
        t[i] = A[3 * i] * v[0] + A[3 * i + 1] * v[1] + A[3 * i + 2] * v[2];
    o[0] = t[0]; o[1] = t[1]; o[2] = t[2];
}

void l3d_sweep_to_key(const l3d_pose *key_l2e, const l3d_pose *key_e2g, const l3d_pose *sw_l2e,
                      const l3d_pose *sw_e2g, double R[9], double T[3])
{
    double L[9], E[9], Ls[9], Es[9], Lt[9], Et[9], M[9];
    l3d_quat_to_rot(key_l2e->q, L);
    l3d_quat_to_rot(key_e2g->q, E);
    l3d_quat_to_rot(sw_l2e->q, Ls);
    l3d_quat_to_rot(sw_e2g->q, Es);
    l3d_mat3_transpose(L, Lt);
    l3d_mat3_transpose(E, Et);
    /* R = Lᵀ·Eᵀ·Es·Ls */
    l3d_mat3_mul(Lt, Et, M);
    l3d_mat3_mul(M, Es, M);
    l3d_mat3_mul(M, Ls, R);
    /* T = Lᵀ·(Eᵀ·(Es·t_Ls + t_Es − t_E) − t_L) */
    double v[3];
    l3d_mat3_vec(Es, sw_l2e->t, v);
    for (int i = 0; i < 3; i++)
        v[i] += sw_e2g->t[i] - key_e2g->t[i];
    l3d_mat3_vec(Et, v, v);
    for (int i = 0; i < 3; i++)
        v[i] -= key_l2e->t[i];
    l3d_mat3_vec(Lt, v, T);
}

/* One SDK Box.translate(-t) then Box.rotate(q⁻¹) step. */
static void box_into(double c[3], double q[4], const l3d_pose *frame)
{
    double qi[4], R[9], v[3];
    for (int i = 0; i < 3; i++)
        v[i] = c[i] - frame->t[i];
    l3d_quat_inverse(frame->q, qi);
    l3d_quat_to_rot(qi, R);
    l3d_mat3_vec(R, v, c);
    l3d_quat_mul(qi, q, q);
}

void l3d_box_global_to_lidar(const double centre[3], const double size_wlh[3], const double q[4],
                             const l3d_pose *l2e, const l3d_pose *e2g, double box[7])
{
    double c[3] = {centre[0], centre[1], centre[2]};
    double r[4] = {q[0], q[1], q[2], q[3]};
    box_into(c, r, e2g);
    box_into(c, r, l2e);
    box[0] = c[0]; box[1] = c[1]; box[2] = c[2];
    box[3] = size_wlh[1]; box[4] = size_wlh[0]; box[5] = size_wlh[2];
    box[6] = l3d_quat_yaw(r);
}
