#include "formats/bigmem.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Mapped sizes are whole huge pages, so that growing in place is likely. */
static size_t mapped_size(size_t bytes)
{
    return (bytes + L3D_BIG_MIN - 1) & ~(L3D_BIG_MIN - 1);
}

static void *map(size_t bytes)
{
    void *p = mmap(NULL, mapped_size(bytes), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, mapped_size(bytes), MADV_HUGEPAGE);   /* advice: failure is harmless */
    return p;
}

void *l3d_big_resize(void *p, size_t old_bytes, size_t new_bytes)
{
    if (!p)
        old_bytes = 0;
    int was_big = old_bytes >= L3D_BIG_MIN, big = new_bytes >= L3D_BIG_MIN;
    if (!was_big && !big)
        return realloc(p, new_bytes ? new_bytes : 1);
    if (was_big && big) {
        if (mapped_size(old_bytes) == mapped_size(new_bytes))
            return p;
        void *q = mremap(p, mapped_size(old_bytes), mapped_size(new_bytes), MREMAP_MAYMOVE);
        if (q == MAP_FAILED)
            return NULL;
        madvise(q, mapped_size(new_bytes), MADV_HUGEPAGE);
        return q;
    }
    /* crossing L3D_BIG_MIN, up or down */
    void *q = big ? map(new_bytes) : malloc(new_bytes ? new_bytes : 1);
    if (!q)
        return NULL;
    if (p)
        memcpy(q, p, old_bytes < new_bytes ? old_bytes : new_bytes);
    l3d_big_free(p, old_bytes);
    return q;
}

void *l3d_big_zalloc(size_t bytes)
{
    return bytes >= L3D_BIG_MIN ? map(bytes) : calloc(1, bytes ? bytes : 1);   /* maps are zero */
}

void l3d_big_free(void *p, size_t bytes)
{
    if (!p)
        return;
    if (bytes >= L3D_BIG_MIN)
        munmap(p, mapped_size(bytes));
    else
        free(p);
}
