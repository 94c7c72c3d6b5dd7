#include "formats/strmap.h"

#include <stdlib.h>
#include <string.h>

uint64_t l3d_hash_bytes(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t hash_str(const char *s)
{
    /* FNV-1a up to the NUL, in one pass */
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *b = (const unsigned char *)s; *b; b++) {
        h ^= *b;
        h *= 1099511628211ull;
    }
    return h;
}

void l3d_strmap_init(l3d_strmap *m) { memset(m, 0, sizeof *m); }

void l3d_strmap_free(l3d_strmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

size_t l3d_strmap_get(const l3d_strmap *m, const char *key)
{
    if (!m->cap)
        return 0;
    for (size_t i = hash_str(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i])
            return 0;
        if (strcmp(m->keys[i], key) == 0)
            return m->vals[i];
    }
}

static int grow(l3d_strmap *m)
{
    size_t cap = m->cap ? 2 * m->cap : 1024;
    const char **keys = calloc(cap, sizeof *keys);
    size_t *vals = calloc(cap, sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return 0;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = hash_str(m->keys[i]) & (cap - 1);
        while (keys[j])
            j = (j + 1) & (cap - 1);
        keys[j] = m->keys[i];
        vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return 1;
}

int l3d_strmap_put(l3d_strmap *m, const char *key, size_t val)
{
    if ((m->n + 1) * 10 >= m->cap * 7 && !grow(m))
        return 0;
    size_t i = hash_str(key) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], key) != 0)
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i])
        m->n++;
    m->keys[i] = key;
    m->vals[i] = val;
    return 1;
}

void l3d_intern_init(l3d_intern *in) { memset(in, 0, sizeof *in); }

void l3d_intern_free(l3d_intern *in)
{
    for (size_t i = 0; i < in->n_chunks; i++)
        free(in->chunks[i]);
    free(in->chunks);
    free(in->strs);
    l3d_strmap_free(&in->map);
    memset(in, 0, sizeof *in);
}

static char *arena_copy(l3d_intern *in, const char *s)
{
    size_t n = strlen(s) + 1;
    if (!in->chunk || in->chunk_used + n > in->chunk_cap) {
        size_t cap = n > (1u << 20) ? n : (1u << 20);
        char **chunks = realloc(in->chunks, (in->n_chunks + 1) * sizeof *chunks);
        if (!chunks)
            return NULL;
        in->chunks = chunks;
        in->chunk = malloc(cap);
        if (!in->chunk)
            return NULL;
        in->chunks[in->n_chunks++] = in->chunk;
        in->chunk_used = 0;
        in->chunk_cap = cap;
    }
    char *d = in->chunk + in->chunk_used;
    memcpy(d, s, n);
    in->chunk_used += n;
    return d;
}

uint32_t l3d_intern_id(l3d_intern *in, const char *s, int create)
{
    size_t v = l3d_strmap_get(&in->map, s);
    if (v)
        return (uint32_t)(v - 1);
    if (!create || in->n == L3D_NO_ID - 1)
        return L3D_NO_ID;
    if (in->n == in->cap) {
        uint32_t cap = in->cap ? 2 * in->cap : 1024;
        char **strs = realloc(in->strs, cap * sizeof *strs);
        if (!strs)
            return L3D_NO_ID;
        in->strs = strs;
        in->cap = cap;
    }
    char *d = arena_copy(in, s);
    if (!d || !l3d_strmap_put(&in->map, d, (size_t)in->n + 1))
        return L3D_NO_ID;
    in->strs[in->n] = d;
    return in->n++;
}

const char *l3d_intern_str(const l3d_intern *in, uint32_t id)
{
    return id < in->n ? in->strs[id] : "";
}
