/* Trainer configuration: presets, overrides, files, printing, validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/support/testutil.h"
#include "trainer/config.h"

static void test_presets(void **state)
{
    (void)state;
    l3d_config c;
    l3d_err err = {0};
    assert_int_equal(l3d_config_preset(&c, "lyft", &err), 0);
    int nx, ny;
    l3d_config_grid(&c, &nx, &ny);
    assert_int_equal(nx, 800);   /* spec §2: (800, 800, 1) */
    assert_int_equal(ny, 800);
    assert_int_equal(c.max_voxels, 60000);
    assert_int_equal(c.vfe_channels[0], 32);
    assert_true(c.grad_clip == 35 && c.init_scale == 4294967296.0);
    assert_int_equal(l3d_config_validate(&c, &err), 0);
    assert_int_equal(l3d_config_preset(&c, "small", &err), 0);
    l3d_config_grid(&c, &nx, &ny);
    assert_int_equal(nx, 128);
    assert_int_equal(l3d_config_validate(&c, &err), 0);
    assert_int_equal(l3d_config_preset(&c, "huge", &err), L3D_EUSAGE);
    assert_non_null(strstr(err.msg, "unknown config preset 'huge'"));
}

static void test_set_and_errors(void **state)
{
    (void)state;
    l3d_config c;
    l3d_err err = {0};
    l3d_config_preset(&c, "lyft", &err);
    assert_int_equal(l3d_config_set(&c, " lr = 2e-4 ", "--set", &err), 0);
    assert_true(c.lr == 2e-4);
    assert_int_equal(l3d_config_set(&c, "point_cloud_range=-50,-50,-5, 50 50 3", "--set", &err), 0);
    assert_true(c.point_cloud_range[0] == -50 && c.point_cloud_range[5] == 3);
    assert_int_equal(l3d_config_set(&c, "lrr = 1", "--set", &err), L3D_EUSAGE);
    assert_non_null(strstr(err.msg, "unknown config key 'lrr'"));
    assert_int_equal(l3d_config_set(&c, "voxel_size = 1 2", "--set", &err), L3D_EUSAGE);
    assert_non_null(strstr(err.msg, "'voxel_size' needs 3 numbers"));
    assert_int_equal(l3d_config_set(&c, "batch = 1.5", "--set", &err), L3D_EUSAGE);
    assert_int_equal(l3d_config_set(&c, "batch = 1 2", "--set", &err), L3D_EUSAGE);
    assert_int_equal(l3d_config_set(&c, "batch", "--set", &err), L3D_EUSAGE);
    /* validation */
    l3d_config_preset(&c, "lyft", &err);
    l3d_config_set(&c, "voxel_size = 0.3 0.3 8", "t", &err);
    assert_int_equal(l3d_config_validate(&c, &err), L3D_EUSAGE);
    assert_non_null(strstr(err.msg, "not divisible"));
    l3d_config_preset(&c, "lyft", &err);
    l3d_config_set(&c, "sweeps = 3", "t", &err);
    assert_int_equal(l3d_config_validate(&c, &err), L3D_EUSAGE);
}

static void test_print_reads_back(void **state)
{
    (void)state;
    l3d_config a, b;
    l3d_err err = {0};
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    l3d_config_preset(&a, "small", &err);
    l3d_config_set(&a, "lr = 0.00123456789012345", "t", &err);
    l3d_config_set(&a, "seed = 42", "t", &err);
    const char *d = tu_tmpdir("cfg");
    char path[4200];
    snprintf(path, sizeof path, "%s/c.conf", d);
    FILE *fp = fopen(path, "w");
    l3d_config_print(&a, fp);
    fclose(fp);
    l3d_config_preset(&b, "lyft", &err);
    assert_int_equal(l3d_config_load(&b, path, &err), 0);
    assert_memory_equal(&a, &b, sizeof a);
    /* a file with a preset line, a comment and a bad line number in the message */
    tu_write_file(path, "preset = small\n# comment\nbatch = 4\nbogus = 1\n");
    assert_int_equal(l3d_config_load(&b, path, &err), L3D_EUSAGE);
    assert_non_null(strstr(err.msg, "c.conf:4: unknown config key 'bogus'"));
    assert_int_equal(b.batch, 4);
    assert_true(b.point_cloud_range[0] == -32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_presets),
        cmocka_unit_test(test_set_and_errors),
        cmocka_unit_test(test_print_reads_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
