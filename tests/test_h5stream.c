/* One-pass HDF5 writing (formats/h5stream.h): rows streamed before their count
 * is known land in a contiguous dataset that the cache reader maps; when HDF5
 * places the dataset elsewhere than expected the rows are moved (forced here
 * by creating another dataset first); spills copy back whole. Both ways of
 * writing: O_DIRECT through the staging buffer (where the test directory's
 * file system allows it) and the page cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "formats/h5stream.h"
#include "tests/support/testutil.h"

#define COLS 5

/* Row r of the streamed test data: distinct values everywhere. */
static void make_rows(int32_t (*rows)[COLS], int64_t r0, int64_t n)
{
    for (int64_t r = 0; r < n; r++)
        for (int c = 0; c < COLS; c++)
            rows[r][c] = (int32_t)((r0 + r) * 7 + c * 1000003);
}

/* Streams `total` rows in pieces of `piece`, optionally creating a dataset
 * "first" (of first_rows int32) before placing, then reads the file back. */
static void stream_and_check(int64_t total, int64_t piece, hsize_t first_rows)
{
    const char *d = tu_tmpdir("h5stream");
    char path[4200];
    snprintf(path, sizeof path, "%s/s.h5", d);
    l3d_h5w w;
    l3d_h5stream s;
    l3d_spill sp;
    l3d_err err = {0};
    hsize_t row_dims[1] = {COLS};
    if (l3d_h5stream_begin(&s, &w, path, "rows", H5T_STD_I32LE, 2, row_dims, &err) ||
        l3d_spill_open(&sp, path, "spilled", &err))
        fail_msg("%s", err.msg);
    int32_t (*buf)[COLS] = malloc((size_t)piece * sizeof *buf);
    for (int64_t r = 0; r < total; r += piece) {
        int64_t n = total - r < piece ? total - r : piece;
        make_rows(buf, r, n);
        if (l3d_h5stream_write(&s, buf, n, &err) ||
            l3d_spill_write(&sp, buf, (size_t)n * sizeof *buf, &err))
            fail_msg("%s", err.msg);
    }
    int64_t expected_base = s.base;
    if (first_rows) {   /* takes the place HDF5 would have given "rows" */
        hsize_t dims[1] = {first_rows};
        assert_int_equal(l3d_h5w_dataset(&w, "first", H5T_STD_I32LE, 1, dims, NULL, &err), 0);
    }
    if (l3d_h5stream_place(&s, &err))
        fail_msg("%s", err.msg);
    if (first_rows)
        assert_true(s.base > expected_base);   /* moved up, overlapping when small */
    else
        assert_int_equal(s.base, expected_base);   /* predicted exactly */
    hsize_t dims[2] = {(hsize_t)total, COLS};
    assert_int_equal(l3d_h5w_dataset(&w, "spilled", H5T_STD_I32LE, 2, dims, NULL, &err), 0);
    if (l3d_spill_to_dataset(&sp, &w, "spilled", H5T_NATIVE_INT32, COLS * sizeof(int32_t), &err))
        fail_msg("%s", err.msg);
    l3d_spill_close(&sp);
    l3d_h5stream_close(&s);
    assert_int_equal(l3d_h5w_attr_i64(&w, "/", "schema_version", 1, &err), 0);
    assert_int_equal(l3d_h5w_attr_str(&w, "/", "format", "test", &err), 0);
    if (l3d_h5w_commit(&w, &err))
        fail_msg("%s", err.msg);

    l3d_h5r r;
    if (l3d_h5r_open(&r, path, "test", 1, &err))
        fail_msg("%s", err.msg);
    int32_t (*want)[COLS] = malloc((size_t)(total + 1) * sizeof *want);
    make_rows(want, 0, total);
    const char *names[2] = {"rows", "spilled"};
    for (int k = 0; k < 2; k++) {
        l3d_h5view v;
        if (l3d_h5r_view(&r, names[k], H5T_NATIVE_INT32, 2, 0, &v, &err))
            fail_msg("%s", err.msg);
        assert_int_equal(v.dims[0], total);
        assert_int_equal(v.dims[1], COLS);
        if (total)
            assert_memory_equal(v.data, want, (size_t)total * sizeof *want);
    }
    l3d_h5r_close(&r);
    free(want);
    free(buf);
}

static void test_predicted_offset(void **state)
{
    (void)state;
    stream_and_check(1700000, 77777, 0);   /* 34 MB: past one writeback step */
    stream_and_check(3, 1, 0);
}

static void test_moved_up_overlapping(void **state)
{
    (void)state;
    stream_and_check(50000, 4096, 16);      /* moved by a page: ranges overlap */
    stream_and_check(1000, 1000, 100000);   /* moved past its own end */
}

static void test_no_rows(void **state)
{
    (void)state;
    stream_and_check(0, 1, 0);
}

/* Without O_DIRECT (as on tmpfs): through the page cache, writeback hints. */
static void test_page_cache_path(void **state)
{
    (void)state;
    setenv("LIDAR3D_NO_DIRECT_IO", "1", 1);
    stream_and_check(1700000, 77777, 0);
    stream_and_check(50000, 4096, 16);
    unsetenv("LIDAR3D_NO_DIRECT_IO");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_predicted_offset),
        cmocka_unit_test(test_moved_up_overlapping),
        cmocka_unit_test(test_no_rows),
        cmocka_unit_test(test_page_cache_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
