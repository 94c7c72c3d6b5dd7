/* Training batches from one or more sweep caches (memory-mapped): per sample
 * the merged cloud for cfg.sweeps, then the spec's augmentation and filters
 * (trainer/augment.h, drawn from the loader's RNG), the point shuffle and hard
 * voxelization; samples whose boxes all fall outside the range are skipped
 * (MMDetection3D's filter_empty_gt). The sample order is a fresh permutation
 * each epoch. Everything depends only on the seed and the data position, which
 * a checkpoint stores, so a resumed run reads the same batches. */
#ifndef LIDAR3D_TRAINER_LOADER_H
#define LIDAR3D_TRAINER_LOADER_H

#include <stdint.h>
#include "formats/sweep_cache.h"
#include "formats/voxel_cache.h"
#include "kernels/cpu/voxelize.h"
#include "trainer/config.h"
#include "trainer/rng.h"

typedef struct l3d_loader_pos {
    int64_t epoch, pos;        /* permutation of epoch `epoch`, next index `pos` */
    uint8_t rng[56];           /* augmentation RNG state */
} l3d_loader_pos;

typedef struct l3d_loader {
    l3d_sweep_cache *caches;
    l3d_voxel_cache *vcaches;     /* voxel input: pillars read as cached, grid-exact flips only */
    int n_caches;
    int64_t n_samples, *first;    /* global sample s lives in cache c: first[c] <= s < first[c+1] */
    l3d_config cfg;
    int augment;
    uint64_t seed;
    l3d_rng rng;
    int64_t *perm;
    l3d_loader_pos at;
    l3d_voxelizer vox;
    float *points, *shuffled;
    int64_t cap_points, *order;
    /* the batch */
    int B;
    int64_t m;                    /* pillars */
    float *voxels;                /* [B·max_voxels][max_points][4] */
    int32_t *coords, *num_points; /* [..][4] (b, z, y, x), [..] */
    float *boxes;                 /* [nb][7] bottom-centred, augmented */
    int32_t *labels;
    int64_t nb, cap_boxes, box_off[65];
    int64_t sample[64];
    double wait_ms;               /* time spent making the last batch */
} l3d_loader;

int l3d_loader_open(l3d_loader *L, char *const *paths, int n_paths, const l3d_config *cfg,
                    int augment, int batch, uint64_t seed, l3d_err *err);
/* The same from voxel caches (voxel-cache output for cfg.sweeps and cfg's grid):
 * the fastest path, whose only augmentations are the flips, exact on the grid
 * when the range is symmetric (docs/voxel-cache.md); rotation, scaling and the
 * point shuffle need the sweep cache. */
int l3d_loader_open_voxels(l3d_loader *L, char *const *paths, int n_paths, const l3d_config *cfg,
                           int augment, int batch, uint64_t seed, l3d_err *err);
void l3d_loader_close(l3d_loader *L);
/* The next batch of L->B samples. */
int l3d_loader_next(l3d_loader *L, l3d_err *err);
void l3d_loader_get_pos(const l3d_loader *L, l3d_loader_pos *p);
int l3d_loader_set_pos(l3d_loader *L, const l3d_loader_pos *p, l3d_err *err);

#endif
