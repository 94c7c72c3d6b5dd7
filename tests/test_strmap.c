/* formats/strmap: keys survive growth and l3d_strmap_reserve (on huge
 * pages past 4 MB), and the interner's ids stay put. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "formats/strmap.h"

enum { N = 300000 };   /* past the huge-page threshold: 2^19 slots of 24 bytes */

static void key(char *buf, int i) { snprintf(buf, 32, "token-%08x-%d", (unsigned)i * 2654435761u, i); }

static void test_keys_survive_growth_and_reserve(void **state)
{
    (void)state;
    l3d_strmap m;
    l3d_strmap_init(&m);
    char(*keys)[32] = malloc((size_t)N * 32);
    assert_non_null(keys);
    for (int i = 0; i < N; i++) {
        key(keys[i], i);
        if (i == 1000)
            assert_true(l3d_strmap_reserve(&m, 200000));   /* jump ahead */
        if (i == 1001)
            assert_true(l3d_strmap_reserve(&m, 10));       /* never shrinks */
        assert_true(l3d_strmap_put(&m, keys[i], (size_t)i + 1));
    }
    assert_int_equal(m.n, N);
    assert_true(m.cap * 7 > m.n * 10);
    for (int i = 0; i < N; i++)
        assert_int_equal(l3d_strmap_get(&m, keys[i]), (size_t)i + 1);
    assert_int_equal(l3d_strmap_get(&m, "absent"), 0);
    size_t cap = m.cap;
    assert_true(l3d_strmap_reserve(&m, N));
    assert_int_equal(m.cap, cap);
    l3d_strmap_free(&m);
    free(keys);
}

static void test_intern_ids_stay_put(void **state)
{
    (void)state;
    l3d_intern in;
    l3d_intern_init(&in);
    char k[32];
    for (int i = 0; i < 5000; i++) {
        key(k, i);
        assert_int_equal(l3d_intern_id(&in, k, 1), (uint32_t)i);
        if (i % 1000 == 0)
            assert_true(l3d_intern_reserve(&in, 3000));
    }
    uint32_t stored = l3d_intern_store(&in, "only stored", 11);
    assert_int_equal(stored, 5000);
    assert_int_equal(l3d_intern_id(&in, "only stored", 0), L3D_NO_ID);
    assert_string_equal(l3d_intern_str(&in, stored), "only stored");
    for (int i = 0; i < 5000; i++) {
        key(k, i);
        assert_int_equal(l3d_intern_id(&in, k, 0), (uint32_t)i);
        assert_string_equal(l3d_intern_str(&in, (uint32_t)i), k);
    }
    l3d_intern_free(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_survive_growth_and_reserve),
        cmocka_unit_test(test_intern_ids_stay_put),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
