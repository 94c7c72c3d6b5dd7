/* Augmentation and filters on hand-computed cases (spec ssn-model.md §1.5). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "trainer/augment.h"

static void near(double a, double b, double tol)
{
    if (fabs(a - b) > tol)
        fail_msg("%.9g differs from %.9g", a, b);
}

static void test_rotate_scale(void **state)
{
    (void)state;
    float p[2][4] = {{1, 0, 2, 0.5f}, {0, 2, -1, 0.2f}};
    float b[7] = {10, 0, -1, 4, 2, 1.5f, 0.25f};
    l3d_aug_draw d = {.rotation = (float)(M_PI / 2), .scale = 2};
    l3d_augment_apply(&d, &p[0][0], 2, 4, b, 1);
    /* +90° counter-clockwise: (1,0) -> (0,1), (0,2) -> (-2,0); then ×2 */
    near(p[0][0], 0, 1e-6); near(p[0][1], 2, 1e-6); near(p[0][2], 4, 1e-6);
    near(p[0][3], 0.5, 0);   /* the time lag is never touched */
    near(p[1][0], -4, 1e-6); near(p[1][1], 0, 1e-6); near(p[1][2], -2, 1e-6);
    near(b[0], 0, 1e-5); near(b[1], 20, 1e-5); near(b[2], -2, 1e-6);
    near(b[3], 8, 1e-6); near(b[4], 4, 1e-6); near(b[5], 3, 1e-6);
    near(b[6], 0.25 + M_PI / 2, 1e-6);
}

static void test_flips(void **state)
{
    (void)state;
    float p[4] = {1, 2, 3, 0}, b[7] = {1, 2, 3, 4, 2, 1, 0.5f};
    l3d_aug_draw h = {.scale = 1, .flip_h = 1};
    l3d_augment_apply(&h, p, 1, 4, b, 1);
    near(p[1], -2, 0); near(b[1], -2, 0); near(b[6], -0.5, 0);
    float q[4] = {1, 2, 3, 0}, c[7] = {1, 2, 3, 4, 2, 1, 0.5f};
    l3d_aug_draw v = {.scale = 1, .flip_v = 1};
    l3d_augment_apply(&v, q, 1, 4, c, 1);
    near(q[0], -1, 0); near(c[0], -1, 0); near(c[6], M_PI - 0.5, 1e-6);
    /* both: x -> -x, y -> -y, yaw -> pi + yaw */
    float r[4] = {1, 2, 3, 0}, e[7] = {1, 2, 3, 4, 2, 1, 0.5f};
    l3d_aug_draw both = {.scale = 1, .flip_h = 1, .flip_v = 1};
    l3d_augment_apply(&both, r, 1, 4, e, 1);
    near(r[0], -1, 0); near(r[1], -2, 0); near(e[6], M_PI + 0.5, 1e-6);
}

static void test_object_range_filter_and_wrap(void **state)
{
    (void)state;
    float b[4][7] = {
        {0, 0, 0, 1, 1, 1, 4.0f},        /* kept, yaw 4 -> 4 - 2pi */
        {100, 0, 0, 1, 1, 1, 0},         /* x == 100: strict, dropped */
        {-99.9f, 99.9f, 50, 1, 1, 1, -3.5f}, /* z ignored: kept, -3.5 -> -3.5 + 2pi */
        {0, -100.5f, 0, 1, 1, 1, 0},     /* dropped */
    };
    int32_t labels[4] = {0, 1, 2, 3};
    float range[6] = {-100, -100, -5, 100, 100, 3};
    assert_int_equal(l3d_boxes_range_filter(&b[0][0], labels, 4, range), 2);
    assert_int_equal(labels[0], 0);
    assert_int_equal(labels[1], 2);
    near(b[0][6], 4.0 - 2 * M_PI, 1e-6);
    near(b[1][0], -99.9, 1e-5);
    near(b[1][6], -3.5 + 2 * M_PI, 1e-6);
    /* pi wraps to -pi: the interval is [-pi, pi) */
    float c[7] = {0, 0, 0, 1, 1, 1, (float)M_PI};
    assert_int_equal(l3d_boxes_range_filter(c, NULL, 1, range), 1);
    assert_true(c[6] < 0);
}

static void test_bottom_and_permute(void **state)
{
    (void)state;
    float b[7] = {0, 0, 1, 4, 2, 1.5f, 0};
    l3d_boxes_to_bottom(b, 1);
    near(b[2], 0.25, 0);
    float p[3][2] = {{0, 0}, {1, 1}, {2, 2}}, o[3][2];
    int64_t perm[3] = {2, 0, 1};
    l3d_points_permute(&p[0][0], perm, 3, 2, &o[0][0]);
    near(o[0][0], 2, 0); near(o[1][0], 0, 0); near(o[2][1], 1, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotate_scale),
        cmocka_unit_test(test_flips),
        cmocka_unit_test(test_object_range_filter_and_wrap),
        cmocka_unit_test(test_bottom_and_permute),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
