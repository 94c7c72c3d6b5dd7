/* Geometry helpers against hand-computed values and a plain point-by-point
 * reference of the sweep transform. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "formats/geometry.h"

#define TOL 1e-12

static void near(double a, double b, double tol)
{
    if (fabs(a - b) > tol)
        fail_msg("%.17g differs from %.17g by more than %g", a, b, tol);
}

static void test_rotation_matrix(void **state)
{
    (void)state;
    double R[9];
    l3d_quat_to_rot((double[]){2, 0, 0, 0}, R);   /* unnormalised identity */
    for (int i = 0; i < 9; i++)
        near(R[i], i % 4 == 0, TOL);
    double h = sqrt(0.5);
    l3d_quat_to_rot((double[]){h, 0, 0, h}, R);   /* 90° about z */
    double want[9] = {0, -1, 0, 1, 0, 0, 0, 0, 1};
    for (int i = 0; i < 9; i++)
        near(R[i], want[i], TOL);
    l3d_quat_to_rot((double[]){h, h, 0, 0}, R);   /* 90° about x: y -> z */
    double want_x[9] = {1, 0, 0, 0, 0, -1, 0, 1, 0};
    for (int i = 0; i < 9; i++)
        near(R[i], want_x[i], TOL);
}

static void test_quat_algebra(void **state)
{
    (void)state;
    double o[4];
    l3d_quat_mul((double[]){0, 1, 0, 0}, (double[]){0, 0, 1, 0}, o);   /* i ⊗ j = k */
    near(o[0], 0, TOL); near(o[1], 0, TOL); near(o[2], 0, TOL); near(o[3], 1, TOL);
    l3d_quat_mul((double[]){0, 0, 1, 0}, (double[]){0, 1, 0, 0}, o);   /* j ⊗ i = -k */
    near(o[3], -1, TOL);
    l3d_quat_inverse((double[]){2, 0, 0, 2}, o);                      /* conj / |q|^2 */
    near(o[0], 0.25, TOL); near(o[1], 0, TOL); near(o[2], 0, TOL); near(o[3], -0.25, TOL);
}

static void test_yaw_is_pyquaternion(void **state)
{
    (void)state;
    double a = 0.7;
    near(l3d_quat_yaw((double[]){cos(a / 2), 0, 0, sin(a / 2)}), a, TOL);
    near(l3d_quat_yaw((double[]){-3 * cos(a / 2), 0, 0, -3 * sin(a / 2)}), a, TOL);
    /* q = (1,1,1,1)/2: the textbook atan2(2(wz+xy), ...) gives pi/2,
     * pyquaternion's atan2(2(wz-xy), 1-2(y²+z²)) gives atan2(0, 0) = 0. */
    near(l3d_quat_yaw((double[]){0.5, 0.5, 0.5, 0.5}), 0.0, TOL);
}

static void test_sweep_transform_hand_case(void **state)
{
    (void)state;
    /* LiDAR 1 m ahead of the ego origin, 2 m up, yawed 180°; the ego drove
     * 10 m along global x between sweep and key frame, without turning. */
    l3d_pose l2e = {{1, 0, 2}, {0, 0, 0, 1}};
    l3d_pose key_e2g = {{20, 0, 0}, {1, 0, 0, 0}};
    l3d_pose sw_e2g = {{10, 0, 0}, {1, 0, 0, 0}};
    double R[9], T[3];
    l3d_sweep_to_key(&l2e, &key_e2g, &l2e, &sw_e2g, R, T);
    for (int i = 0; i < 9; i++)
        near(R[i], i % 4 == 0, TOL);
    /* the sweep's sensor sat 10 m behind; LiDAR x points backwards: +10 */
    near(T[0], 10, TOL); near(T[1], 0, TOL); near(T[2], 0, TOL);
}

static double urand(void) { return rand() / (double)RAND_MAX * 2 - 1; }

static void random_pose(l3d_pose *p)
{
    for (int i = 0; i < 3; i++)
        p->t[i] = 100 * urand();
    for (int i = 0; i < 4; i++)
        p->q[i] = urand();
}

/* point -> global through one chain, back through the other */
static void to_global(const l3d_pose *l2e, const l3d_pose *e2g, const double p[3], double g[3])
{
    double R[9], v[3];
    l3d_quat_to_rot(l2e->q, R);
    l3d_mat3_vec(R, p, v);
    for (int i = 0; i < 3; i++) v[i] += l2e->t[i];
    l3d_quat_to_rot(e2g->q, R);
    l3d_mat3_vec(R, v, g);
    for (int i = 0; i < 3; i++) g[i] += e2g->t[i];
}

static void from_global(const l3d_pose *l2e, const l3d_pose *e2g, const double g[3], double p[3])
{
    double R[9], Rt[9], v[3];
    for (int i = 0; i < 3; i++) v[i] = g[i] - e2g->t[i];
    l3d_quat_to_rot(e2g->q, R);
    l3d_mat3_transpose(R, Rt);
    l3d_mat3_vec(Rt, v, v);
    for (int i = 0; i < 3; i++) v[i] -= l2e->t[i];
    l3d_quat_to_rot(l2e->q, R);
    l3d_mat3_transpose(R, Rt);
    l3d_mat3_vec(Rt, v, p);
}

static void test_sweep_transform_random(void **state)
{
    (void)state;
    srand(7);
    for (int trial = 0; trial < 200; trial++) {
        l3d_pose a, b, c, d;
        random_pose(&a); random_pose(&b); random_pose(&c); random_pose(&d);
        double R[9], T[3];
        l3d_sweep_to_key(&a, &b, &c, &d, R, T);
        double p[3] = {50 * urand(), 50 * urand(), 5 * urand()}, g[3], want[3], got[3];
        to_global(&c, &d, p, g);
        from_global(&a, &b, g, want);
        l3d_mat3_vec(R, p, got);
        for (int i = 0; i < 3; i++)
            near(got[i] + T[i], want[i], 1e-9);
    }
}

static void test_box_to_lidar(void **state)
{
    (void)state;
    /* ego at (20,0,0) facing +x, LiDAR as above; box at global (25,3,1), yaw 0.5 */
    l3d_pose l2e = {{1, 0, 2}, {0, 0, 0, 1}};
    l3d_pose e2g = {{20, 0, 0}, {1, 0, 0, 0}};
    double box[7];
    l3d_box_global_to_lidar((double[]){25, 3, 1}, (double[]){2, 4.5, 1.7},
                            (double[]){cos(0.25), 0, 0, sin(0.25)}, &l2e, &e2g, box);
    near(box[0], -4, TOL); near(box[1], -3, TOL); near(box[2], -1, TOL);
    near(box[3], 4.5, TOL); near(box[4], 2, TOL); near(box[5], 1.7, TOL);   /* l, w, h */
    near(box[6], 0.5 - M_PI, TOL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotation_matrix),
        cmocka_unit_test(test_quat_algebra),
        cmocka_unit_test(test_yaw_is_pyquaternion),
        cmocka_unit_test(test_sweep_transform_hand_case),
        cmocka_unit_test(test_sweep_transform_random),
        cmocka_unit_test(test_box_to_lidar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
