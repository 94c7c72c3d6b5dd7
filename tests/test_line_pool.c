/* lyft-index's output threads: index lines built and formatted by a pool of
 * workers reach the sink in submission order, with build and sink failures
 * reported in order (formats/line_pool.h); and bytes handed to the writer
 * thread land in the file in order (formats/bg_writer.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "formats/bg_writer.h"
#include "formats/line_pool.h"

/* A line whose text depends on k: its token, box count and numbers. */
static void fill(l3d_index_line *l, int k)
{
    snprintf(l->token, sizeof l->token, "tok%d", k);
    snprintf(l->scene_token, sizeof l->scene_token, "scene%d", k % 7);
    l->timestamp = 1e15 + k * 0.5;
    l->lidar.num_points = k;
    l->lidar.nonfinite = -1;
    l->n_sweeps = k % 3;
    size_t n = (size_t)(k % 5);
    assert_true(l3d_index_line_reserve(l, n));
    l->n_boxes = n;
    for (size_t i = 0; i < n; i++) {
        for (int j = 0; j < 7; j++)
            l->gt_boxes[7 * i + j] = k * 0.1 + j;
        snprintf(l->gt_names[i], sizeof l->gt_names[i], "car");
        snprintf(l->gt_tokens[i], sizeof l->gt_tokens[i], "a%d_%zu", k, i);
        l->num_lidar_pts[i] = (int32_t)i;
    }
}

typedef struct sink_state {
    char *text;
    size_t len, cap;
    int calls, fail_at;   /* the sink fails on call fail_at */
    int build_fail_at;    /* building job build_fail_at fails */
    int next_k;           /* lines must arrive in job order */
} sink_state;

static int build(void *ctx, uint32_t job, l3d_index_line *line, l3d_err *err)
{
    sink_state *s = ctx;
    if ((int)job == s->build_fail_at)
        return l3d_fail(err, L3D_EINPUT, "building line %d failed", s->build_fail_at);
    fill(line, (int)job);
    return L3D_OK;
}

/* Takes lines in order, leaving out every third one. */
static int sink(void *ctx, const l3d_index_line *line, const char *text, size_t len,
                l3d_err *err)
{
    sink_state *s = ctx;
    if (s->calls++ == s->fail_at)
        return l3d_fail(err, L3D_EIO, "sink failed at line %d", s->fail_at);
    int k = atoi(line->token + 3);
    if (k != s->next_k++)
        fail_msg("line %d reached the sink where %d was due", k, s->next_k - 1);
    if (k % 3 == 2)
        return L3D_OK;
    if (s->len + len > s->cap) {
        s->cap = 2 * (s->len + len);
        s->text = realloc(s->text, s->cap);
        assert_non_null(s->text);
    }
    memcpy(s->text + s->len, text, len);
    s->len += len;
    return L3D_OK;
}

/* The lines kept must come out in order, each as l3d_index_line_append
 * writes it. */
static void test_lines_in_order(void **state)
{
    (void)state;
    for (int workers = 1; workers <= 4; workers += 3) {
        sink_state got = {.fail_at = -1, .build_fail_at = -1};
        l3d_err err = {0};
        l3d_line_pool *pool;
        assert_int_equal(l3d_line_pool_start(&pool, workers, build, sink, &got, &err), L3D_OK);
        char *want = NULL;
        size_t want_len = 0, want_cap = 0;
        l3d_index_line ref;
        l3d_index_line_init(&ref);
        for (int k = 0; k < 2000; k++) {
            assert_int_equal(l3d_line_pool_submit(pool, (uint32_t)k, &err), L3D_OK);
            if (k % 3 == 2)
                continue;
            fill(&ref, k);
            assert_int_equal(l3d_index_line_append(&want, &want_len, &want_cap, &ref, &err), 0);
        }
        assert_int_equal(l3d_line_pool_finish(pool, 0, &err), L3D_OK);
        assert_int_equal(got.calls, 2000);
        assert_int_equal(got.len, want_len);
        assert_true(memcmp(got.text, want, want_len) == 0);
        l3d_index_line_free(&ref);
        free(want);
        free(got.text);
    }
}

/* A line that fails to build stops the pool after every line before it
 * reached the sink, and none after it. */
static void test_build_failure_in_order(void **state)
{
    (void)state;
    sink_state got = {.fail_at = -1, .build_fail_at = 500};
    l3d_err err = {0};
    l3d_line_pool *pool;
    assert_int_equal(l3d_line_pool_start(&pool, 3, build, sink, &got, &err), L3D_OK);
    int rc = L3D_OK;
    for (int k = 0; k < 1000 && !rc; k++)
        rc = l3d_line_pool_submit(pool, (uint32_t)k, &err);
    if (!rc)
        rc = l3d_line_pool_finish(pool, 0, &err);
    else
        l3d_line_pool_finish(pool, 1, &(l3d_err){0});
    assert_int_equal(rc, L3D_EINPUT);
    assert_non_null(strstr(err.msg, "building line 500 failed"));
    assert_int_equal(got.calls, 500);
    free(got.text);
}

static void test_sink_failure_stops(void **state)
{
    (void)state;
    sink_state got = {.fail_at = 100, .build_fail_at = -1};
    l3d_err err = {0};
    l3d_line_pool *pool;
    assert_int_equal(l3d_line_pool_start(&pool, 2, build, sink, &got, &err), L3D_OK);
    int k = 0;
    for (; k < 1000; k++)
        if (l3d_line_pool_submit(pool, (uint32_t)k, &err))
            break;
    assert_int_equal(err.code, L3D_EIO);
    assert_non_null(strstr(err.msg, "sink failed at line 100"));
    assert_true(k > 100 && k < 1000);
    l3d_err e2 = {0};
    l3d_line_pool_finish(pool, 1, &e2);
    free(got.text);
    /* finishing without draining drops queued lines */
    got = (sink_state){.fail_at = -1, .build_fail_at = -1};
    assert_int_equal(l3d_line_pool_start(&pool, 2, build, sink, &got, &err), L3D_OK);
    for (k = 0; k < 10; k++)
        assert_int_equal(l3d_line_pool_submit(pool, (uint32_t)k, &err), L3D_OK);
    assert_int_equal(l3d_line_pool_finish(pool, 1, &err), L3D_OK);
    assert_int_equal(got.calls, 0);
    free(got.text);
}

static void test_writer_keeps_order(void **state)
{
    (void)state;
    FILE *fp = tmpfile();
    assert_non_null(fp);
    l3d_err err = {0};
    l3d_bg_writer *w;
    assert_int_equal(l3d_bg_writer_start(&w, fp, "the test file", &err), L3D_OK);
    char *buf = NULL;
    size_t len = 0, cap = 0, total = 0;
    for (int b = 0; b < 300; b++) {
        size_t n = (size_t)(b * 37 % 5000);
        if (cap < n) {
            buf = realloc(buf, n);
            cap = n;
        }
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)('a' + (total + i) % 26);
        len = n;
        total += n;
        assert_int_equal(l3d_bg_writer_put(w, &buf, &len, &cap, &err), L3D_OK);
        assert_int_equal(len, 0);
    }
    free(buf);
    assert_int_equal(l3d_bg_writer_finish(w, 0, &err), L3D_OK);
    assert_int_equal(ftell(fp), (long)total);
    rewind(fp);
    for (size_t i = 0; i < total; i++)
        if (fgetc(fp) != 'a' + (int)(i % 26))
            fail_msg("byte %zu out of order", i);
    fclose(fp);
}

static void test_writer_reports_failure(void **state)
{
    (void)state;
    FILE *fp = fopen("/dev/full", "w");
    if (!fp) {
        printf("skipped: no /dev/full\n");
        return;
    }
    setvbuf(fp, NULL, _IONBF, 0);
    l3d_err err = {0};
    l3d_bg_writer *w;
    assert_int_equal(l3d_bg_writer_start(&w, fp, "the test file", &err), L3D_OK);
    size_t cap = 4096, len = cap;
    char *buf = calloc(1, cap);
    int rc = L3D_OK;
    for (int i = 0; i < 5 && !rc; i++) {
        if (!buf) {
            buf = calloc(1, 4096);
            cap = 4096;
        }
        len = cap;
        rc = l3d_bg_writer_put(w, &buf, &len, &cap, &err);
    }
    if (!rc)
        rc = l3d_bg_writer_finish(w, 0, &err);
    else
        l3d_bg_writer_finish(w, 1, &err);
    assert_int_equal(rc, L3D_EIO);
    assert_non_null(strstr(err.msg, "cannot write to the test file: No space left"));
    free(buf);
    fclose(fp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_in_order),
        cmocka_unit_test(test_build_failure_in_order),
        cmocka_unit_test(test_sink_failure_stops),
        cmocka_unit_test(test_writer_keeps_order),
        cmocka_unit_test(test_writer_reports_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
