/* lyft-index on the real Lyft data in ../shared/data (spec lyft-data.md §8):
 * lyft-scene (40 full-size samples, no annotations) and lyft-mini
 * (MMDetection3D's fixture: 4 boxes, dangling links, key frame absent).
 * Skipped, saying so, when ../shared/data is not there. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "formats/index_line.h"
#include "tests/support/testutil.h"

typedef struct lines {
    int n, rc;
    char *out, *err;
    l3d_index_line l[64];
} lines;

static void index_of(lines *r, const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s", tu_tool("lyft-index"), args);
    memset(r, 0, sizeof *r);
    r->rc = tu_run(cmd, &r->out, &r->err);
    if (r->rc)
        fail_msg("lyft-index %s: exit %d: %s", args, r->rc, r->err);
    char *copy = strdup(r->out), *save, *line = strtok_r(copy, "\n", &save);
    while (line && r->n < 64) {
        l3d_err err = {0};
        l3d_index_line_init(&r->l[r->n]);
        if (l3d_index_line_parse(line, "stdout", r->n + 1, &r->l[r->n], &err))
            fail_msg("%s", err.msg);
        r->n++;
        line = strtok_r(NULL, "\n", &save);
    }
    free(copy);
}

static void release(lines *r)
{
    for (int i = 0; i < r->n; i++)
        l3d_index_line_free(&r->l[i]);
    free(r->out);
    free(r->err);
}

static void test_lyft_scene(void **state)
{
    (void)state;
    const char *d = tu_shared_data("lyft-scene");
    if (!d)
        return;
    lines r;
    char args[4200];
    snprintf(args, sizeof args, "'%s'", d);
    index_of(&r, args);
    assert_int_equal(r.n, 40);
    for (int i = 0; i < 40; i++) {
        const l3d_index_line *l = &r.l[i];
        assert_string_equal(l->scene_name, "host-a101-lidar0-1241893239199111666-1241893264098084346");
        assert_int_equal(l->n_sweeps, i < 10 ? i : 10);
        assert_false(l->sweeps_missing);
        assert_false(l->annotated);
        assert_int_equal(l->n_boxes, 0);
        assert_true(l->lidar.num_points > 90000 && l->lidar.num_points < 130000);
        assert_int_equal(l->lidar.tail_bytes, 0);
        assert_int_equal(strncmp(l->lidar.path, "train_lidar/host-a101_lidar1_", 29), 0);
        if (i)
            assert_true(l->timestamp > r.l[i - 1].timestamp);
        for (int k = 0; k < l->n_sweeps; k++) {
            /* the sweep is the key frame k+1 samples back, 0.2 s per step */
            assert_string_equal(l->sweeps[k].sample_data_token, r.l[i - k - 1].sample_data_token);
            assert_true(fabs(l->sweeps[k].time_lag - 0.2 * (k + 1)) < 0.01);
            /* a rotation: orthonormal rows */
            const double *R = l->sweeps[k].rotation;
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++) {
                    double dot = R[3 * a] * R[3 * b] + R[3 * a + 1] * R[3 * b + 1] + R[3 * a + 2] * R[3 * b + 2];
                    assert_true(fabs(dot - (a == b)) < 1e-12);
                }
        }
    }
    release(&r);
}

static void test_lyft_mini(void **state)
{
    (void)state;
    const char *d = tu_shared_data("lyft-mini");
    if (!d)
        return;
    lines r;
    char args[4200];
    snprintf(args, sizeof args, "--missing-lidar keep '%s'", d);
    index_of(&r, args);
    assert_int_equal(r.n, 1);
    const l3d_index_line *l = &r.l[0];
    assert_string_equal(l->token, "199e3146d98e6a2047bafbc222b92f5b67c4640a69b0d1d35b710242de816679");
    assert_int_equal(l->lidar.num_points, -1);   /* the fixture's bins are another sample's */
    assert_string_equal(l->lidar.path, "lidar/host-a101_lidar1_1240710385903083166.bin");
    assert_int_equal(l->n_sweeps, 0);
    assert_true(l->sweeps_missing);              /* prev names an absent record */
    assert_int_equal(l->n_boxes, 4);
    for (int i = 0; i < 4; i++)
        assert_string_equal(l->gt_names[i], "car");
    /* sizes come out as l, w, h from the table's w, l, h */
    assert_true(l->gt_boxes[3] == 4.495 && l->gt_boxes[4] == 2.046 && l->gt_boxes[5] == 1.849);
    assert_non_null(strstr(r.err, "sweeps_missing"));
    release(&r);
    /* without keep, the absent key frame is an error naming the file */
    snprintf(args, sizeof args, "'%s'", d);
    char cmd[8192], *err = NULL;
    snprintf(cmd, sizeof cmd, "'%s' %s", tu_tool("lyft-index"), args);
    assert_int_equal(tu_run(cmd, NULL, &err), 8);
    assert_non_null(strstr(err, "host-a101_lidar1_1240710385903083166.bin' not found"));
    free(err);
}

static char *strip_root(const char *s)
{
    char *o = strdup(s), *p;
    while ((p = strstr(o, "\"root\":\""))) {
        char *end = strchr(p + 8, '"');
        memmove(p, end + 2, strlen(end + 2) + 1);
    }
    return o;
}

static void test_lyft_scene_archives(void **state)
{
    (void)state;
    const char *d = tu_shared_data("lyft-scene");
    if (!d)
        return;
    const char *a = tu_tmpdir("scene-arch");
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cd '%s' && tar cf '%s/scene.tar' train_data train_lidar && "
             "zip -q0r '%s/scene.zip' train_data train_lidar", d, a, a);
    assert_int_equal(system(cmd), 0);
    lines f, t, z;
    char args[4200];
    snprintf(args, sizeof args, "'%s'", d);
    index_of(&f, args);
    snprintf(args, sizeof args, "'%s/scene.tar'", a);
    index_of(&t, args);
    snprintf(args, sizeof args, "'%s/scene.zip'", a);
    index_of(&z, args);
    char *x = strip_root(f.out), *y = strip_root(t.out), *w = strip_root(z.out);
    assert_int_equal(f.n, 40);
    assert_string_equal(x, y);
    assert_string_equal(x, w);
    free(x); free(y); free(w);
    release(&f); release(&t); release(&z);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", a);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lyft_scene),
        cmocka_unit_test(test_lyft_mini),
        cmocka_unit_test(test_lyft_scene_archives),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
