/* xoshiro256** with splitmix64 seeding; see rng.h. The generator and jump
 * polynomial are from Blackman and Vigna's public-domain reference
 * (prng.di.unimi.it). */
#include "trainer/rng.h"

#include <math.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void l3d_rng_seed(l3d_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        r->s[0] = 1;   /* the one state xoshiro never leaves (astronomically unlikely) */
    r->has_spare = 0;
    r->spare = 0;
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t l3d_rng_next(l3d_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

void l3d_rng_jump(l3d_rng *r)
{
    static const uint64_t JUMP[4] = {0x180ec6d33cfd0abaull, 0xd5a61266f0c9392cull,
                                     0xa9582618e03fc9aaull, 0x39abdc4529b1661cull};
    uint64_t t[4] = {0, 0, 0, 0};
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < 64; b++) {
            if (JUMP[i] & ((uint64_t)1 << b))
                for (int k = 0; k < 4; k++)
                    t[k] ^= r->s[k];
            l3d_rng_next(r);
        }
    memcpy(r->s, t, sizeof t);
    r->has_spare = 0;
}

void l3d_rng_seed_stream(l3d_rng *r, uint64_t seed, unsigned k)
{
    l3d_rng_seed(r, seed);
    for (unsigned i = 0; i < k; i++)
        l3d_rng_jump(r);
}

uint64_t l3d_rng_below(l3d_rng *r, uint64_t n)
{
    if (n <= 1)
        return 0;
    /* Reject the top partial block so every residue is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = l3d_rng_next(r);
    while (x >= limit);
    return x % n;
}

double l3d_rng_uniform(l3d_rng *r)
{
    return (double)(l3d_rng_next(r) >> 11) * 0x1p-53;
}

float l3d_rng_uniformf(l3d_rng *r)
{
    return (float)(l3d_rng_next(r) >> 40) * 0x1p-24f;
}

double l3d_rng_range(l3d_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * l3d_rng_uniform(r);
}

double l3d_rng_normal(l3d_rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1 = 1.0 - l3d_rng_uniform(r);     /* (0, 1]: log stays finite */
    double u2 = l3d_rng_uniform(r);
    double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
    r->spare = rad * sin(th);
    r->has_spare = 1;
    return rad * cos(th);
}

void l3d_rng_shuffle(l3d_rng *r, int64_t *a, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)l3d_rng_below(r, (uint64_t)i + 1);
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

void l3d_rng_permutation(l3d_rng *r, int64_t *perm, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    l3d_rng_shuffle(r, perm, n);
}

static void put64(uint8_t *p, uint64_t x)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(x >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x |= (uint64_t)p[i] << (8 * i);
    return x;
}

static const char RNG_MAGIC[8] = "L3DRNG1";

void l3d_rng_save(const l3d_rng *r, uint8_t out[L3D_RNG_STATE_BYTES])
{
    memcpy(out, RNG_MAGIC, 8);
    for (int i = 0; i < 4; i++)
        put64(out + 8 + 8 * i, r->s[i]);
    put64(out + 40, (uint64_t)(r->has_spare != 0));
    uint64_t u;
    memcpy(&u, &r->spare, 8);
    put64(out + 48, r->has_spare ? u : 0);
}

int l3d_rng_restore(l3d_rng *r, const uint8_t in[L3D_RNG_STATE_BYTES])
{
    if (memcmp(in, RNG_MAGIC, 8) != 0)
        return -1;
    l3d_rng t;
    for (int i = 0; i < 4; i++)
        t.s[i] = get64(in + 8 + 8 * i);
    uint64_t hs = get64(in + 40), u = get64(in + 48);
    if (!(t.s[0] | t.s[1] | t.s[2] | t.s[3]) || hs > 1)
        return -1;
    t.has_spare = (int)hs;
    memcpy(&t.spare, &u, 8);
    *r = t;
    return 0;
}
