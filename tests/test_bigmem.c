/* Big arrays (formats/bigmem.h): contents survive every resize, up and down
 * across the malloc/map boundary and within mapped sizes; new blocks of
 * zeros are zero on both sides of it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "formats/bigmem.h"

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 131 + seed);
}

static void expect_filled(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(i * 131 + seed))
            fail_msg("byte %zu of %zu lost", i, n);
}

static void test_resize_keeps_contents(void **state)
{
    (void)state;
    /* 1 KB -> 1.5 MB (malloc) -> 3 MB (mapped) -> 3.5 MB (same mapping)
     * -> 9 MB (remapped) -> 1 MB (back to malloc) -> 0 */
    const size_t sizes[] = {1024, 3 << 19, 3 << 20, 7 << 19, 9 << 20, 1 << 20};
    unsigned char *p = NULL;
    size_t have = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        unsigned char *q = l3d_big_resize(p, have, sizes[k]);
        assert_non_null(q);
        size_t kept = have < sizes[k] ? have : sizes[k];
        if (kept)
            expect_filled(q, kept, 7);
        fill(q, sizes[k], 7);   /* every byte writable */
        p = q;
        have = sizes[k];
    }
    l3d_big_free(p, have);
    l3d_big_free(NULL, 5 << 20);   /* a no-op, as free(NULL) */
}

static void test_zalloc_is_zero(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 100, L3D_BIG_MIN - 1, L3D_BIG_MIN, 5 << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        /* dirty the memory a new block might reuse first */
        unsigned char *d = l3d_big_resize(NULL, 0, sizes[k] + 1);
        assert_non_null(d);
        memset(d, 0xab, sizes[k] + 1);
        l3d_big_free(d, sizes[k] + 1);
        unsigned char *z = l3d_big_zalloc(sizes[k]);
        assert_non_null(z);
        for (size_t i = 0; i < sizes[k]; i++)
            if (z[i])
                fail_msg("byte %zu of a %zu-byte block is %d", i, sizes[k], z[i]);
        l3d_big_free(z, sizes[k]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resize_keeps_contents),
        cmocka_unit_test(test_zalloc_is_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
