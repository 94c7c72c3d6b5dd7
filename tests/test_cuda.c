/* The CUDA wiring: compiled and linked everywhere nvcc exists; run where a
 * GPU exists, against a double-precision CPU reference. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#ifdef LIDAR3D_HAVE_CUDA
#include "kernels/cuda/device.h"
#endif

static void test_saxpy_matches_cpu(void **state)
{
    (void)state;
#ifndef LIDAR3D_HAVE_CUDA
    printf("skipped: built without CUDA (no nvcc, or NO_CUDA=1)\n");
#else
    if (l3d_cuda_device_count() == 0) {
        printf("skipped: no GPU\n");
        return;
    }
    char name[256];
    assert_int_equal(l3d_cuda_device_name(name, sizeof name), 0);
    printf("GPU: %s\n", name);
    size_t sizes[] = {1, 255, 256, 257, 1000003};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t n = sizes[s];
        float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
        double *want = malloc(n * sizeof *want);
        for (size_t i = 0; i < n; i++) {
            x[i] = (float)((double)(i % 1000) / 7.0 - 50);
            y[i] = (float)((double)(i % 333) / 3.0);
            want[i] = 2.5 * (double)x[i] + (double)y[i];
        }
        assert_int_equal(l3d_cuda_saxpy(2.5f, x, y, n), 0);
        for (size_t i = 0; i < n; i++)
            if (fabs((double)y[i] - want[i]) > 1e-5 * (1 + fabs(want[i])))
                fail_msg("n=%zu i=%zu: %g vs %g", n, i, (double)y[i], want[i]);
        free(x);
        free(y);
        free(want);
    }
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_saxpy_matches_cpu)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
