/* String-keyed hash map and a string interner (tokens -> dense ids).
 * Open addressing with linear probing. Each slot keeps its key's full hash
 * beside the key, so a probe that meets another key costs no string
 * compare and no pointer chase: Lyft's maps hold ~10^6 tokens, far beyond
 * the caches, and each look-up used to miss twice per probed slot. */
#ifndef LIDAR3D_FORMATS_STRMAP_H
#define LIDAR3D_FORMATS_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct l3d_strmap_slot {
    const char *key;   /* NULL: empty */
    uint64_t hash;
    size_t val;
} l3d_strmap_slot;

/* Keys are borrowed: the caller keeps them alive. Value 0 means "absent". */
typedef struct l3d_strmap {
    l3d_strmap_slot *slots;
    size_t cap, n;
} l3d_strmap;

void l3d_strmap_init(l3d_strmap *m);
void l3d_strmap_free(l3d_strmap *m);
/* For maps whose keys were malloc'ed for them: frees the keys, then the map. */
void l3d_strmap_free_keys(l3d_strmap *m);
size_t l3d_strmap_get(const l3d_strmap *m, const char *key);
int l3d_strmap_put(l3d_strmap *m, const char *key, size_t val);   /* 0 on OOM */
/* Makes room for n keys in all, so that putting them rehashes nothing. */
int l3d_strmap_reserve(l3d_strmap *m, size_t n);

/* The same with the key's length given (key[len] must be its NUL). */
size_t l3d_strmap_get_n(const l3d_strmap *m, const char *key, size_t len);
int l3d_strmap_put_n(l3d_strmap *m, const char *key, size_t len, size_t val);

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
uint32_t l3d_intern_id_n(l3d_intern *in, const char *s, size_t len, int create);
/* Stores s under a new id without entering it in the look-up map: for
 * strings that are only ever read back by id (annotation tokens), which
 * would otherwise fill the map. l3d_intern_id will not find them. */
uint32_t l3d_intern_store(l3d_intern *in, const char *s, size_t len);
/* Makes room for n more strings in the look-up map (0 on OOM). */
int l3d_intern_reserve(l3d_intern *in, size_t n);
const char *l3d_intern_str(const l3d_intern *in, uint32_t id);

/* FNV-1a, for checksums that are stored (sweep-pack's index checksum):
 * never change it. */
uint64_t l3d_hash_bytes(const void *p, size_t n, uint64_t seed);

#endif
