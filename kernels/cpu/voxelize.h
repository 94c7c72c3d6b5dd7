/* Hard voxelization (PointPillars / SSN), CPU, deterministic: spec ssn-model.md §2.
 *
 * Points are walked in array order. A point whose cell is new opens the next
 * voxel (pillar) unless max_voxels already exist, in which case that cell is
 * dropped for good; a point whose cell has a voxel is appended while the voxel
 * holds fewer than max_points. So voxels are numbered by their first point and
 * keep their first max_points points in array order: the same input gives the
 * same output, byte for byte (unlike GPU voxelizers built on atomics).
 *
 * Cell index per axis: i = floor((p - min) / size) in float32 (subtract, then
 * divide); the point is ignored when any i < 0 or i >= grid, where grid =
 * round((max - min) / size) in float32. NaN and infinite coordinates are
 * ignored the same way. The PointsRangeFilter (spec §1.5 step 3) is separate:
 * l3d_points_range_filter, applied before voxelization by the pipelines.
 *
 * Use: one l3d_voxelizer per thread, initialised once (it owns a dense
 * cell -> voxel table of grid cells, 2.5 MB for the SSN grid, which each call
 * leaves as it found it by resetting only the cells it touched). */
#ifndef LIDAR3D_KERNELS_CPU_VOXELIZE_H
#define LIDAR3D_KERNELS_CPU_VOXELIZE_H

#include <stdint.h>

typedef struct l3d_voxel_config {
    float range[6];      /* x_min, y_min, z_min, x_max, y_max, z_max (m) */
    float size[3];       /* voxel size along x, y, z (m) */
    int max_points;      /* points kept per voxel (>= 1) */
    int max_voxels;      /* voxels kept per cloud (>= 1) */
} l3d_voxel_config;

/* SSN on Lyft (spec §2): range [-100,-100,-5,100,100,3], voxel 0.25 x 0.25 x 8,
 * 20 points per pillar, 60 000 pillars: grid 800 x 800 x 1. */
#define L3D_VOXEL_CONFIG_SSN \
    {{-100.f, -100.f, -5.f, 100.f, 100.f, 3.f}, {0.25f, 0.25f, 8.f}, 20, 60000}

/* Largest grid accepted: 2^28 cells in all (the table takes 4 bytes a cell). */
#define L3D_VOXEL_MAX_CELLS (1 << 28)

/* Checks cfg and computes grid[3] = cells along x, y, z. Returns 0, or -1 with
 * *why (if not NULL) set to a static message naming the bad value. */
int l3d_voxel_grid(const l3d_voxel_config *cfg, int32_t grid[3], const char **why);

typedef struct l3d_voxelizer {
    l3d_voxel_config cfg;
    int32_t grid[3];         /* cells along x, y, z */
    int32_t *cell_voxel;     /* [grid z*y*x]: voxel id or -1; all -1 between calls */
    int32_t *voxel_cell;     /* [max_voxels]: cell of each voxel of the current call */
    int32_t *voxel_count;    /* [max_voxels]: points kept so far */
    int32_t *scratch;        /* [L3D_VOXEL_CHUNK]: cell of each point of a chunk */
    int range_filter;        /* set to 1 to apply the PointsRangeFilter (l3d_points_range_
                                filter with cfg.range) inside l3d_voxelize: the same result
                                as filtering first, without the extra pass over the points */
    int64_t last_in_range;   /* points that passed the range filter in the last call (all
                                of them when range_filter is 0) */
    int64_t last_kept;       /* points stored in voxels by the last call */
} l3d_voxelizer;

#define L3D_VOXEL_CHUNK 1024

/* Returns 0, or -1 (bad config: *why says which value; out of memory: *why
 * says so). On failure nothing needs freeing. */
int l3d_voxelizer_init(l3d_voxelizer *v, const l3d_voxel_config *cfg, const char **why);
void l3d_voxelizer_free(l3d_voxelizer *v);

/* Voxelizes points [n][dim] (dim >= 3 features per point, x y z first; the
 * SSN input is dim 4: x, y, z, time lag). Writes, for the M voxels made:
 *   voxels     [max_voxels][max_points][dim]  points in array order; the unused
 *                                             slots of the first M voxels are 0
 *   coords     [max_voxels][3]  int32 cell (z, y, x)
 *   num_points [max_voxels]     int32 1..max_points
 * Only the first M entries of each output are written. Any output may be NULL
 * (not written): with all three NULL the call only counts voxels. Returns M
 * (0 <= M <= max_voxels); v->last_kept is then the number of points stored. */
int l3d_voxelize(l3d_voxelizer *v, const float *points, int64_t n, int dim, float *voxels,
                 int32_t *coords, int32_t *num_points);

/* PointsRangeFilter (spec §1.5 step 3): keeps, in order, the points with
 * range[0] < x < range[3], range[1] < y < range[4], range[2] < z < range[5]
 * (strict float32 compares; NaN is dropped). out [n][dim] may equal points
 * (in place). Returns the number kept. */
int64_t l3d_points_range_filter(const float *points, int64_t n, int dim, const float range[6],
                                float *out);

/* The exact-on-the-grid flips of a voxelized cloud (see docs/voxel-cache.md
 * for when they equal re-voxelizing the flipped cloud; they need a range that
 * is symmetric about 0 on the flipped axis). axis 0 = x (x -> -x, "vertical"
 * flip in MMDetection3D's words), 1 = y (y -> -y, "horizontal"). In place on M
 * voxels of max_points slots of dim features: coordinate i -> grid - 1 - i,
 * the point feature negated in the used slots (unused slots stay 0). */
void l3d_voxels_flip(const l3d_voxelizer *v, int axis, int m, float *voxels, int32_t *coords,
                     const int32_t *num_points, int dim);

#endif
