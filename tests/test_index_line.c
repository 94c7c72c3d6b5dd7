/* The index line's text (formats/index_line.c): byte for byte what yajl's
 * generator writes for the same fields (the reference below), and read back
 * to the same values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <yajl_gen.h>

#include "formats/index_line.h"
#include "formats/numtext.h"

/* ---- the reference: the same line through yajl_gen ----------------------- */

static void emit(void *ctx, const char *s, size_t n)
{
    char **p = ctx;
    size_t len = *p ? strlen(*p) : 0;
    *p = realloc(*p, len + n + 1);
    memcpy(*p + len, s, n);
    (*p)[len + n] = 0;
}

static void key(yajl_gen g, const char *k) { yajl_gen_string(g, (const unsigned char *)k, strlen(k)); }
static void num(yajl_gen g, double v)
{
    char buf[L3D_DTOA_ROOM];
    yajl_gen_number(g, buf, (size_t)l3d_dtoa(v, buf));
}
static void integer(yajl_gen g, int64_t v) { yajl_gen_integer(g, v); }
static void nums(yajl_gen g, const double *v, int n)
{
    yajl_gen_array_open(g);
    for (int i = 0; i < n; i++)
        num(g, v[i]);
    yajl_gen_array_close(g);
}

static void lidar(yajl_gen g, const l3d_lidar_file *f)
{
    key(g, "lidar_path");
    key(g, f->path);
    if (f->num_points < 0) {
        key(g, "lidar_missing");
        yajl_gen_bool(g, 1);
        return;
    }
    key(g, "num_points");
    integer(g, f->num_points);
    if (f->tail_bytes) {
        key(g, "tail_bytes");
        integer(g, f->tail_bytes);
    }
    if (f->nonfinite >= 0) {
        key(g, "nonfinite");
        integer(g, f->nonfinite);
    }
}

static char *reference(const l3d_index_line *l)
{
    char *text = NULL;
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_config(g, yajl_gen_print_callback, emit, &text);
    yajl_gen_map_open(g);
    key(g, "token"); key(g, l->token);
    key(g, "scene_token"); key(g, l->scene_token);
    key(g, "scene_name"); key(g, l->scene_name);
    key(g, "timestamp"); num(g, l->timestamp);
    key(g, "root"); key(g, l->root);
    key(g, "sample_data_token"); key(g, l->sample_data_token);
    lidar(g, &l->lidar);
    key(g, "lidar2ego_translation"); nums(g, l->lidar2ego_translation, 3);
    key(g, "lidar2ego_rotation"); nums(g, l->lidar2ego_rotation, 4);
    key(g, "ego2global_translation"); nums(g, l->ego2global_translation, 3);
    key(g, "ego2global_rotation"); nums(g, l->ego2global_rotation, 4);
    key(g, "sweeps");
    yajl_gen_array_open(g);
    for (int i = 0; i < l->n_sweeps; i++) {
        const l3d_sweep *s = &l->sweeps[i];
        yajl_gen_map_open(g);
        key(g, "sample_data_token"); key(g, s->sample_data_token);
        lidar(g, &s->lidar);
        key(g, "timestamp"); num(g, s->timestamp);
        key(g, "sensor2lidar_rotation");
        yajl_gen_array_open(g);
        for (int r = 0; r < 3; r++)
            nums(g, s->rotation + 3 * r, 3);
        yajl_gen_array_close(g);
        key(g, "sensor2lidar_translation"); nums(g, s->translation, 3);
        key(g, "time_lag"); num(g, s->time_lag);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    if (l->sweeps_missing) {
        key(g, "sweeps_missing");
        yajl_gen_bool(g, 1);
    }
    key(g, "annotated"); yajl_gen_bool(g, l->annotated);
    key(g, "gt_boxes");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < l->n_boxes; i++)
        nums(g, l->gt_boxes + 7 * i, 7);
    yajl_gen_array_close(g);
    key(g, "gt_names");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < l->n_boxes; i++)
        key(g, l->gt_names[i]);
    yajl_gen_array_close(g);
    key(g, "gt_tokens");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < l->n_boxes; i++)
        key(g, l->gt_tokens[i]);
    yajl_gen_array_close(g);
    key(g, "num_lidar_pts");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < l->n_boxes; i++)
        integer(g, l->num_lidar_pts[i]);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    yajl_gen_free(g);
    emit(&text, "\n", 1);
    return text;
}

/* ---- lines to write ------------------------------------------------------ */

/* Line k: strings to escape in some, a missing file, a corrupt one,
 * 0-10 sweeps, 0-4 boxes, numbers of every form. */
static void fill(l3d_index_line *l, int k)
{
    static const char *odd[] = {
        "plain", "q\"uote", "back\\slash", "new\nline\ttab\rcr\bbs\ffeed", "ctl\x01\x1f",
        "sl/ash", "h\xc3\xa9llo", "",
    };
    static const double vals[] = {
        0, -0.0, 0.1, -2.5, 1e-7, 1.5e21, 123456789012345678.0, 1556675185903083.2,
        0.30000000000000004, 5e-324, 1.7976931348623157e308, -1e-300,
    };
    int nv = (int)(sizeof vals / sizeof *vals);
    snprintf(l->token, sizeof l->token, "tok%d%s", k, odd[k % 8]);
    snprintf(l->scene_token, sizeof l->scene_token, "%s", odd[(k + 3) % 8]);
    snprintf(l->scene_name, sizeof l->scene_name, "scene-%d", k);
    snprintf(l->root, sizeof l->root, "/data/%s", odd[(k + 5) % 8]);
    snprintf(l->sample_data_token, sizeof l->sample_data_token, "sd%d", k);
    snprintf(l->lidar.path, sizeof l->lidar.path, "lidar/%d.bin", k);
    l->timestamp = 1e15 + k * 0.5;
    l->lidar.num_points = k % 4 == 3 ? -1 : k;
    l->lidar.tail_bytes = k % 5 == 1 ? 3 : 0;
    l->lidar.nonfinite = k % 3 == 0 ? -1 : k % 2;
    for (int i = 0; i < 3; i++)
        l->lidar2ego_translation[i] = l->ego2global_translation[i] = vals[(k + i) % nv];
    for (int i = 0; i < 4; i++)
        l->lidar2ego_rotation[i] = l->ego2global_rotation[i] = vals[(k + 2 * i) % nv];
    l->n_sweeps = k % 11;
    for (int s = 0; s < l->n_sweeps; s++) {
        l3d_sweep *w = &l->sweeps[s];
        snprintf(w->sample_data_token, sizeof w->sample_data_token, "sw%d_%d%s", k, s,
                 odd[(k + s) % 8]);
        snprintf(w->lidar.path, sizeof w->lidar.path, "lidar/%d_%d.bin", k, s);
        w->lidar.num_points = (k + s) % 6 == 0 ? -1 : 100 + s;
        w->lidar.tail_bytes = s == 2 ? 7 : 0;
        w->lidar.nonfinite = s % 2 ? 1 : -1;
        w->timestamp = 1e15 - s * 2e5;
        for (int i = 0; i < 9; i++)
            w->rotation[i] = vals[(k + s + i) % nv];
        for (int i = 0; i < 3; i++)
            w->translation[i] = vals[(s + i + 5) % nv];
        w->time_lag = 0.2 * s;
    }
    l->sweeps_missing = k % 4 == 1;
    l->annotated = k % 6 != 5;
    size_t n = l->annotated ? (size_t)(k % 5) : 0;
    assert_true(l3d_index_line_reserve(l, n));
    l->n_boxes = n;
    for (size_t i = 0; i < n; i++) {
        for (int j = 0; j < 7; j++)
            l->gt_boxes[7 * i + j] = vals[(k + (int)i + j) % nv];
        snprintf(l->gt_names[i], sizeof l->gt_names[i], "%s", i % 2 ? "car" : odd[k % 8]);
        snprintf(l->gt_tokens[i], sizeof l->gt_tokens[i], "a%d_%zu", k, i);
        l->num_lidar_pts[i] = (int32_t)i - 1;
    }
}

static void test_text_is_yajls(void **state)
{
    (void)state;
    l3d_index_line l;
    l3d_index_line_init(&l);
    for (int k = 0; k < 200; k++) {
        fill(&l, k);
        char *want = reference(&l), *got = NULL;
        size_t len = 0, cap = 0;
        l3d_err err = {0};
        assert_int_equal(l3d_index_line_append(&got, &len, &cap, &l, &err), L3D_OK);
        assert_int_equal(len, strlen(want));
        if (memcmp(got, want, len))
            fail_msg("line %d:\n got  %.*s\n want %s", k, (int)len, got, want);
        free(want);
        free(got);
    }
    l3d_index_line_free(&l);
}

static void test_reads_back(void **state)
{
    (void)state;
    l3d_index_line a, b;
    l3d_index_line_init(&a);
    l3d_index_line_init(&b);
    for (int k = 0; k < 200; k++) {
        fill(&a, k);
        char *text = NULL;
        size_t len = 0, cap = 0;
        l3d_err err = {0};
        assert_int_equal(l3d_index_line_append(&text, &len, &cap, &a, &err), L3D_OK);
        text[len - 1] = 0;   /* the newline */
        if (l3d_index_line_parse(text, "t", k + 1, &b, &err))
            fail_msg("line %d: %s\n%s", k, err.msg, text);
        assert_string_equal(a.token, b.token);
        assert_string_equal(a.scene_token, b.scene_token);
        assert_string_equal(a.root, b.root);
        assert_true(a.timestamp == b.timestamp);
        assert_int_equal(a.lidar.num_points, b.lidar.num_points);
        assert_int_equal(a.n_sweeps, b.n_sweeps);
        for (int s = 0; s < a.n_sweeps; s++) {
            assert_string_equal(a.sweeps[s].sample_data_token, b.sweeps[s].sample_data_token);
            assert_int_equal(a.sweeps[s].lidar.num_points, b.sweeps[s].lidar.num_points);
            if (a.sweeps[s].lidar.num_points >= 0)   /* else not written */
                assert_int_equal(a.sweeps[s].lidar.tail_bytes, b.sweeps[s].lidar.tail_bytes);
            for (int i = 0; i < 9; i++)   /* == : -0 is written as 0 */
                assert_true(a.sweeps[s].rotation[i] == b.sweeps[s].rotation[i]);
            for (int i = 0; i < 3; i++)
                assert_true(a.sweeps[s].translation[i] == b.sweeps[s].translation[i]);
        }
        assert_int_equal(a.sweeps_missing, b.sweeps_missing);
        assert_int_equal(a.n_boxes, b.n_boxes);
        for (size_t i = 0; i < a.n_boxes; i++) {
            for (int j = 0; j < 7; j++)
                assert_true(a.gt_boxes[7 * i + j] == b.gt_boxes[7 * i + j]);
            assert_string_equal(a.gt_names[i], b.gt_names[i]);
            assert_int_equal(a.num_lidar_pts[i], b.num_lidar_pts[i]);
        }
        free(text);
    }
    l3d_index_line_free(&a);
    l3d_index_line_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_is_yajls),
        cmocka_unit_test(test_reads_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
