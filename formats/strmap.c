#include "formats/strmap.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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

static uint64_t load64(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

/* A word at a time: FNV-1a byte by byte was a tenth of lyft-index's time on
 * 64-character tokens. Multiply-xorshift mixing (as in MurmurHash's
 * finaliser) spreads every input bit over the low bits the table uses. */
static uint64_t hash_n(const char *s, size_t n)
{
    const unsigned char *b = (const unsigned char *)s;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
    for (; n >= 8; n -= 8, b += 8) {
        h ^= load64(b) * 0xC2B2AE3D27D4EB4Full;
        h = (h << 31 | h >> 33) * 0x9E3779B97F4A7C15ull;
    }
    uint64_t w = 0;
    memcpy(&w, b, n);   /* the last 0-7 bytes */
    h ^= w * 0x165667B19E3779F9ull;
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    return h;
}

void l3d_strmap_init(l3d_strmap *m) { memset(m, 0, sizeof *m); }

void l3d_strmap_free(l3d_strmap *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}

void l3d_strmap_free_keys(l3d_strmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free((char *)m->slots[i].key);
    l3d_strmap_free(m);
}

static int same(const l3d_strmap_slot *s, uint64_t h, const char *key)
{
    return s->hash == h && strcmp(s->key, key) == 0;
}

size_t l3d_strmap_get_n(const l3d_strmap *m, const char *key, size_t len)
{
    if (!m->cap)
        return 0;
    uint64_t h = hash_n(key, len);
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        const l3d_strmap_slot *s = &m->slots[i];
        if (!s->key)
            return 0;
        if (same(s, h, key))
            return s->val;
    }
}

size_t l3d_strmap_get(const l3d_strmap *m, const char *key)
{
    return l3d_strmap_get_n(m, key, strlen(key));
}

/* Empty slots for cap entries. A big table is asked for huge pages: Lyft's
 * maps reach tens of MB probed at random, where 4 KB pages cost a TLB miss
 * per probe and a page fault per 170 slots. Zeroed by writing, as calloc's
 * untouched pages would fault twice (a read maps the zero page, the first
 * write copies it). */
static l3d_strmap_slot *new_slots(size_t cap)
{
    size_t bytes = cap * sizeof(l3d_strmap_slot), huge = (size_t)2 << 20;
    void *p = NULL;
    if (bytes >= 2 * huge) {
        if (posix_memalign(&p, huge, bytes) != 0)
            return NULL;
        madvise(p, bytes, MADV_HUGEPAGE);   /* advice: failure is harmless */
    } else if (!(p = malloc(bytes))) {
        return NULL;
    }
    memset(p, 0, bytes);
    return p;
}

/* Rehashes into at least `cap` slots (a power of two). */
static int rehash(l3d_strmap *m, size_t cap)
{
    l3d_strmap_slot *slots = new_slots(cap);
    if (!slots)
        return 0;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key)
            continue;
        size_t j = m->slots[i].hash & (cap - 1);
        while (slots[j].key)
            j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 1;
}

static int grow(l3d_strmap *m)
{
    return rehash(m, m->cap ? 2 * m->cap : 1024);
}

int l3d_strmap_reserve(l3d_strmap *m, size_t n)
{
    size_t cap = m->cap ? m->cap : 1024;
    while ((n + 1) * 10 >= cap * 7)
        cap *= 2;
    return cap == m->cap || rehash(m, cap);
}

int l3d_strmap_put_n(l3d_strmap *m, const char *key, size_t len, size_t val)
{
    if ((m->n + 1) * 10 >= m->cap * 7 && !grow(m))
        return 0;
    uint64_t h = hash_n(key, len);
    size_t i = h & (m->cap - 1);
    while (m->slots[i].key && !same(&m->slots[i], h, key))
        i = (i + 1) & (m->cap - 1);
    if (!m->slots[i].key)
        m->n++;
    m->slots[i] = (l3d_strmap_slot){key, h, val};
    return 1;
}

int l3d_strmap_put(l3d_strmap *m, const char *key, size_t val)
{
    return l3d_strmap_put_n(m, key, strlen(key), val);
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

static char *arena_copy(l3d_intern *in, const char *s, size_t len)
{
    size_t n = len + 1;
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

/* Copies s into the arena under the next id; NULL on OOM or id overflow. */
static char *add_str(l3d_intern *in, const char *s, size_t len)
{
    if (in->n == L3D_NO_ID - 1)
        return NULL;
    if (in->n == in->cap) {
        uint32_t cap = in->cap ? 2 * in->cap : 1024;
        char **strs = realloc(in->strs, cap * sizeof *strs);
        if (!strs)
            return NULL;
        in->strs = strs;
        in->cap = cap;
    }
    char *d = arena_copy(in, s, len);
    if (d)
        in->strs[in->n] = d;
    return d;
}

uint32_t l3d_intern_id_n(l3d_intern *in, const char *s, size_t len, int create)
{
    size_t v = l3d_strmap_get_n(&in->map, s, len);
    if (v)
        return (uint32_t)(v - 1);
    if (!create)
        return L3D_NO_ID;
    char *d = add_str(in, s, len);
    if (!d || !l3d_strmap_put_n(&in->map, d, len, (size_t)in->n + 1))
        return L3D_NO_ID;
    return in->n++;
}

uint32_t l3d_intern_id(l3d_intern *in, const char *s, int create)
{
    return l3d_intern_id_n(in, s, strlen(s), create);
}

int l3d_intern_reserve(l3d_intern *in, size_t n)
{
    return l3d_strmap_reserve(&in->map, in->map.n + n);
}

uint32_t l3d_intern_store(l3d_intern *in, const char *s, size_t len)
{
    return add_str(in, s, len) ? in->n++ : L3D_NO_ID;
}

const char *l3d_intern_str(const l3d_intern *in, uint32_t id)
{
    return id < in->n ? in->strs[id] : "";
}
