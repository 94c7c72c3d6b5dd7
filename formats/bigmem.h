/* Big, growing arrays (table rows, interned strings, hash slots) on
 * transparent huge pages.
 *
 * lyft-index touches ~300 MB of fresh memory. On 4 KB pages that is 75 000
 * page faults, each a trip into the kernel costing about 3 us on our VMs:
 * a tenth of the run, most of it on the thread that merges tables. Asking
 * for huge pages (madvise MADV_HUGEPAGE; most kernels grant THP only when
 * asked) makes that a fault per 2 MB. Small arrays stay with malloc, whose
 * pages are reused.
 *
 * A block's size must be passed back on resize and free (the callers know
 * it: capacity times element size). Sizes below L3D_BIG_MIN are malloc'ed,
 * bigger ones mapped; a block moves between the two as it crosses. */
#ifndef LIDAR3D_FORMATS_BIGMEM_H
#define LIDAR3D_FORMATS_BIGMEM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define L3D_BIG_MIN ((size_t)2 << 20)

/* Resizes p (of old_bytes; NULL with 0 for a new block) to new_bytes,
 * keeping the first min(old, new) bytes; NULL on failure, p untouched. */
void *l3d_big_resize(void *p, size_t old_bytes, size_t new_bytes);

/* A new block of zeros. */
void *l3d_big_zalloc(size_t bytes);

void l3d_big_free(void *p, size_t bytes);

#ifdef __cplusplus
}
#endif

#endif
