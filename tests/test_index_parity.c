/* lyft-index against reference fixtures written by the official Lyft SDK plus
 * MMDetection3D's converter maths (tests/ref/make_fixtures.py), on the real
 * data of ../shared/data: every box, sweep transform and time lag to 1e-9. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <yajl_tree.h>

#include "formats/index_line.h"
#include "tests/support/testutil.h"

static yajl_val field(yajl_val o, const char *k)
{
    const char *path[] = {k, NULL};
    yajl_val v = yajl_tree_get(o, path, yajl_t_any);
    if (!v)
        fail_msg("fixture lacks '%s'", k);
    return v;
}

static double num(yajl_val v)
{
    if (!YAJL_IS_NUMBER(v))
        fail_msg("fixture: expected a number");
    return YAJL_GET_DOUBLE(v);
}

static void close_to(double got, double want, double tol, const char *what, const char *token)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("sample %s: %s = %.17g, reference %.17g (tolerance %g)", token, what, got, want, tol);
}

static void compare(const char *dataset, const char *fixture, const char *args)
{
    const char *d = tu_shared_data(dataset);
    if (!d)
        return;
    char *text = tu_read_file(fixture, NULL);
    assert_non_null(text);
    char ebuf[256];
    yajl_val ref = yajl_tree_parse(text, ebuf, sizeof ebuf);
    if (!ref)
        fail_msg("%s: %s", fixture, ebuf);
    double tol = num(field(ref, "tolerance"));
    yajl_val samples = field(ref, "samples");
    char cmd[8192], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' -q %s '%s'", tu_tool("lyft-index"), args, d);
    assert_int_equal(tu_run(cmd, &out, NULL), 0);
    l3d_index_line l;
    l3d_index_line_init(&l);
    int n = 0;
    char *save, *line = strtok_r(out, "\n", &save);
    for (; line; line = strtok_r(NULL, "\n", &save), n++) {
        l3d_err err = {0};
        assert_int_equal(l3d_index_line_parse(line, "stdout", n + 1, &l, &err), 0);
        const char *path[] = {l.token, NULL};
        yajl_val s = yajl_tree_get(samples, path, yajl_t_object);
        if (!s)
            fail_msg("sample %s is not in the reference", l.token);
        yajl_val boxes = field(s, "gt_boxes"), names = field(s, "gt_names"),
                 toks = field(s, "gt_tokens"), sweeps = field(s, "sweeps");
        assert_int_equal(l.n_boxes, YAJL_GET_ARRAY(boxes)->len);
        for (size_t b = 0; b < l.n_boxes; b++) {
            yajl_val box = YAJL_GET_ARRAY(boxes)->values[b];
            for (int k = 0; k < 7; k++)
                close_to(l.gt_boxes[7 * b + k], num(YAJL_GET_ARRAY(box)->values[k]), tol, "gt_box", l.token);
            assert_string_equal(l.gt_names[b], YAJL_GET_STRING(YAJL_GET_ARRAY(names)->values[b]));
            assert_string_equal(l.gt_tokens[b], YAJL_GET_STRING(YAJL_GET_ARRAY(toks)->values[b]));
        }
        assert_int_equal(l.sweeps_missing, YAJL_IS_TRUE(field(s, "sweeps_missing")));
        assert_int_equal(l.n_sweeps, YAJL_GET_ARRAY(sweeps)->len);
        for (int k = 0; k < l.n_sweeps; k++) {
            yajl_val w = YAJL_GET_ARRAY(sweeps)->values[k];
            assert_string_equal(l.sweeps[k].sample_data_token,
                                YAJL_GET_STRING(field(w, "sample_data_token")));
            yajl_val R = field(w, "sensor2lidar_rotation"), T = field(w, "sensor2lidar_translation");
            for (int a = 0; a < 3; a++) {
                yajl_val row = YAJL_GET_ARRAY(R)->values[a];
                for (int c = 0; c < 3; c++)
                    close_to(l.sweeps[k].rotation[3 * a + c], num(YAJL_GET_ARRAY(row)->values[c]),
                             tol, "sensor2lidar_rotation", l.token);
                close_to(l.sweeps[k].translation[a], num(YAJL_GET_ARRAY(T)->values[a]), tol,
                         "sensor2lidar_translation", l.token);
            }
            close_to(l.sweeps[k].time_lag, num(field(w, "time_lag")), 0, "time_lag", l.token);
        }
    }
    assert_int_equal(n, (int)YAJL_GET_OBJECT(samples)->len);
    l3d_index_line_free(&l);
    yajl_tree_free(ref);
    free(text);
    free(out);
}

static void test_lyft_mini_matches_reference(void **state)
{
    (void)state;
    compare("lyft-mini", "tests/fixtures/lyft_mini_expected.json", "--missing-lidar keep");
}

static void test_lyft_scene_matches_reference(void **state)
{
    (void)state;
    compare("lyft-scene", "tests/fixtures/lyft_scene_expected.json", "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lyft_mini_matches_reference),
        cmocka_unit_test(test_lyft_scene_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
