/* The trainer's random numbers: xoshiro256** (Blackman and Vigna), seeded
 * through splitmix64, so one 64-bit seed gives the same stream on every
 * machine and compiler. Everything derived from it (uniforms, normals,
 * permutations) uses integer arithmetic plus IEEE-exact float operations and
 * glibc's log/sqrt/cos, so a run is reproducible on one machine; the state
 * is a fixed byte image that checkpoints store. */
#ifndef LIDAR3D_TRAINER_RNG_H
#define LIDAR3D_TRAINER_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct l3d_rng {
    uint64_t s[4];
    int has_spare;                 /* Box-Muller makes normals in pairs */
    double spare;
} l3d_rng;

/* s[0..3] = four successive splitmix64 outputs from seed (never all zero). */
void l3d_rng_seed(l3d_rng *r, uint64_t seed);
/* Independent stream k of a seed, e.g. one per loader thread: seeded as
 * above, then advanced by k jumps of 2^128 draws. */
void l3d_rng_seed_stream(l3d_rng *r, uint64_t seed, unsigned k);
void l3d_rng_jump(l3d_rng *r);

uint64_t l3d_rng_next(l3d_rng *r);
/* Uniform integer in [0, n), unbiased (rejection); n >= 1. */
uint64_t l3d_rng_below(l3d_rng *r, uint64_t n);
/* Uniform in [0, 1): top 53 (double) or 24 (float) bits of one draw. */
double l3d_rng_uniform(l3d_rng *r);
float l3d_rng_uniformf(l3d_rng *r);
/* Uniform in [lo, hi). */
double l3d_rng_range(l3d_rng *r, double lo, double hi);
/* Standard normal by Box-Muller: u1 in (0, 1], u2 in [0, 1);
 * sqrt(-2 ln u1)·cos(2πu2), then ·sin(2πu2) on the next call. */
double l3d_rng_normal(l3d_rng *r);
/* perm = a uniformly random permutation of 0..n-1 (Fisher-Yates, from the
 * top: for i = n-1 .. 1 swap perm[i] with perm[below(i+1)]). */
void l3d_rng_permutation(l3d_rng *r, int64_t *perm, int64_t n);
/* The same shuffle applied to an existing array of n int64 values. */
void l3d_rng_shuffle(l3d_rng *r, int64_t *a, int64_t n);

/* Byte image: magic "L3DRNG1\0", s[0..3], has_spare, spare (little-endian). */
#define L3D_RNG_STATE_BYTES 56
void l3d_rng_save(const l3d_rng *r, uint8_t out[L3D_RNG_STATE_BYTES]);
/* 0, or -1 when the image is not one (bad magic, all-zero state). */
int l3d_rng_restore(l3d_rng *r, const uint8_t in[L3D_RNG_STATE_BYTES]);

#endif
