/* String-keyed hash map and a string interner (tokens -> dense ids).
 * Open addressing with linear probing; FNV-1a hashes. */
#ifndef LIDAR3D_FORMATS_STRMAP_H
#define LIDAR3D_FORMATS_STRMAP_H

#include <stddef.h>
#include <stdint.h>

/* Keys are borrowed: the caller keeps them alive. Value 0 means "absent". */
typedef struct l3d_strmap {
    const char **keys;
    size_t *vals;
    size_t cap, n;
} l3d_strmap;

void l3d_strmap_init(l3d_strmap *m);
void l3d_strmap_free(l3d_strmap *m);
size_t l3d_strmap_get(const l3d_strmap *m, const char *key);
int l3d_strmap_put(l3d_strmap *m, const char *key, size_t val);   /* 0 on OOM */

#define L3D_NO_ID UINT32_MAX

/* Interned strings are owned and never move; ids are 0, 1, 2, ... */
typedef struct l3d_intern {
    l3d_strmap map;
    char **strs;
    uint32_t n, cap;
    char *chunk;
    size_t chunk_used, chunk_cap;
    char **chunks;
    size_t n_chunks;
} l3d_intern;

void l3d_intern_init(l3d_intern *in);
void l3d_intern_free(l3d_intern *in);
/* Id of s, adding it when create is set; L3D_NO_ID if absent (or on OOM). */
uint32_t l3d_intern_id(l3d_intern *in, const char *s, int create);
const char *l3d_intern_str(const l3d_intern *in, uint32_t id);

uint64_t l3d_hash_bytes(const void *p, size_t n, uint64_t seed);

#endif
