/* lyft-synth's random numbers: splitmix64 for hashing and seeding, xoshiro256**
 * for streams. Every stream is derived from (seed, tag, index), so a scan or a
 * scene draws the same numbers whichever thread makes it and in whatever order.
 * Never rand(): the output must be byte-identical for the same --seed. */
#ifndef LIDAR3D_SYNTH_RNG_H
#define LIDAR3D_SYNTH_RNG_H

#include <math.h>
#include <stdint.h>

/* Stream tags: one per kind of thing that draws numbers or needs a token. */
enum syn_tag {
    SYN_TAG_SCENE = 1, SYN_TAG_WORLD, SYN_TAG_SCAN, SYN_TAG_DEFECTS, SYN_TAG_SPLIT, SYN_TAG_HOST,
    SYN_TAG_LOG, SYN_TAG_SAMPLE, SYN_TAG_SAMPLE_DATA, SYN_TAG_EGO_POSE, SYN_TAG_CALIB,
    SYN_TAG_SENSOR, SYN_TAG_ANN, SYN_TAG_INSTANCE, SYN_TAG_CATEGORY, SYN_TAG_ATTRIBUTE,
    SYN_TAG_MAP, SYN_TAG_DANGLING,
};

typedef struct syn_rng {
    uint64_t s[4];
    double spare;      /* the second normal of the last polar draw */
    int has_spare;
} syn_rng;

static inline uint64_t syn_mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static inline uint64_t syn_hash3(uint64_t a, uint64_t b, uint64_t c)
{
    return syn_mix64(syn_mix64(syn_mix64(a) ^ b) ^ c);
}

static inline void syn_rng_init(syn_rng *r, uint64_t seed, uint64_t tag, uint64_t index)
{
    uint64_t x = syn_hash3(seed, tag, index);
    r->has_spare = 0;
    r->spare = 0;
    for (int i = 0; i < 4; i++) {
        x += 0x9E3779B97F4A7C15ull;
        r->s[i] = syn_mix64(x);
    }
}

static inline uint64_t syn_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t syn_next(syn_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = syn_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = syn_rotl(s[3], 45);
    return out;
}

/* [0, 1) with 53 random bits. */
static inline double syn_unif(syn_rng *r) { return (double)(syn_next(r) >> 11) * 0x1.0p-53; }
static inline double syn_range(syn_rng *r, double a, double b) { return a + (b - a) * syn_unif(r); }
static inline int syn_below(syn_rng *r, int n) { return (int)(syn_unif(r) * n); }
static inline int syn_chance(syn_rng *r, double p) { return syn_unif(r) < p; }

/* Standard normal (Marsaglia's polar method; the pair's second value is kept
 * for the next call, which is fine as every stream is used in one order). */
static inline double syn_normal(syn_rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u, v, s;
    do {
        u = 2 * syn_unif(r) - 1;
        v = 2 * syn_unif(r) - 1;
        s = u * u + v * v;
    } while (s >= 1 || s == 0);
    double f = sqrt(-2 * log(s) / s);
    r->spare = v * f;
    r->has_spare = 1;
    return u * f;
}

/* Normal truncated to [-k, k] standard deviations (redrawn, not clamped). */
static inline double syn_normal_trunc(syn_rng *r, double k)
{
    for (;;) {
        double x = syn_normal(r);
        if (x >= -k && x <= k)
            return x;
    }
}

/* Index drawn with probability proportional to w[i]. */
static inline int syn_pick(syn_rng *r, const double *w, int n)
{
    double total = 0;
    for (int i = 0; i < n; i++)
        total += w[i];
    double x = syn_unif(r) * total;
    for (int i = 0; i < n; i++) {
        if (x < w[i])
            return i;
        x -= w[i];
    }
    return n - 1;
}

#endif
