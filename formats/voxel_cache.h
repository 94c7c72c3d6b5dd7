/* The voxel cache (voxel-cache output): per sample, the hard-voxelized merged
 * cloud (spec ssn-model.md §2, kernels/cpu/voxelize.h) in CSR layout, plus the
 * boxes and tokens of the sweep cache it was made from. Datasets, dtypes,
 * units, attributes and the augmentations it supports: docs/voxel-cache.md.
 *
 *   voxel_points      [V][P][4] float32  x y z time_lag, key-frame LiDAR frame
 *                                        (m, s); unused slots 0; P = max_points
 *   voxel_num_points  [V]       int32    1..P
 *   voxel_coords      [V][3]    int32    cell (z, y, x)
 *   voxel_offsets     [S+1]     int64    sample s owns voxels [off[s], off[s+1])
 *   sample_point_counts [S][3]  int64    merged, after the range filter, in voxels
 *   boxes [B][7] float32, box_labels [B] int32, box_offsets [S+1] int64,
 *   sample_tokens [S] 64-byte strings: as in the sweep cache. */
#ifndef LIDAR3D_FORMATS_VOXEL_CACHE_H
#define LIDAR3D_FORMATS_VOXEL_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include "formats/error.h"
#include "formats/h5cache.h"
#include "formats/h5stream.h"
#include "formats/sweep_cache.h"   /* L3D_CACHE_TOKEN, L3D_CACHE_VERIFY_ALL */
#include "kernels/cpu/voxelize.h"

#define L3D_VOXEL_CACHE_FORMAT "lidar3d-voxel-cache"
#define L3D_VOXEL_CACHE_SCHEMA 1
#define L3D_VOXEL_FEATURES 4      /* x, y, z, time_lag */

/* ---- the config file ---------------------------------------------------
 * `key = value` lines; `#` starts a comment; blank lines are ignored. Keys:
 *   point_cloud_range = x_min y_min z_min x_max y_max z_max
 *   voxel_size = x y z
 *   max_points = N
 *   max_voxels = N
 * Keys left out keep their value in *cfg (start from L3D_VOXEL_CONFIG_SSN). */
int l3d_voxel_config_parse(l3d_voxel_config *cfg, const char *text, const char *path,
                           l3d_err *err);
/* Reads FILE and parses it (L3D_EIO when unreadable, L3D_EINPUT when bad). */
int l3d_voxel_config_load(l3d_voxel_config *cfg, const char *path, l3d_err *err);
/* The config as a config file (every key; floats in the shortest text that
 * reads back to the same float32). Returns the length, as snprintf. */
int l3d_voxel_config_format(const l3d_voxel_config *cfg, char *buf, size_t n);

/* ---- reading ---------------------------------------------------------- */

typedef struct l3d_voxel_cache {
    l3d_h5r h5;
    l3d_voxel_config cfg;
    int32_t grid[3];                   /* cells along x, y, z */
    int sweeps;                        /* sweeps merged per sample (0..10) */
    int64_t n_samples, n_voxels, n_boxes;
    const float *voxel_points;         /* [V][max_points][4] */
    const int32_t *voxel_num_points;   /* [V] */
    const int32_t *voxel_coords;       /* [V][3] z, y, x */
    const int64_t *voxel_offsets;      /* [S+1] */
    const int64_t *sample_point_counts;   /* [S][3] */
    const float *boxes;                /* [B][7] x y z l w h yaw, geometric centre */
    const int32_t *box_labels;         /* [B] SSN class order */
    const int64_t *box_offsets;        /* [S+1] */
    const char *sample_tokens;         /* [S][64] NUL-padded */
} l3d_voxel_cache;

/* flags: L3D_CACHE_VERIFY_ALL (formats/sweep_cache.h) also
 * checksums the three voxel datasets and checks every voxel (counts 1..P,
 * coordinates inside the grid, unused slots zero, no cell twice in a sample).
 * Without it: schema, attributes, shapes, offsets, labels and the checksums of
 * every dataset but those three. Then maps the file (pread with
 * LIDAR3D_NO_MMAP=1 or where mmap fails). */
int l3d_voxel_cache_open(l3d_voxel_cache *c, const char *path, int flags, l3d_err *err);
void l3d_voxel_cache_close(l3d_voxel_cache *c);

/* One sample's slices (pointers into the map; NULL where the sample has no voxels
 * or no boxes). */
typedef struct l3d_voxel_sample {
    int64_t n_voxels, n_boxes;
    const float *points;               /* [n_voxels][max_points][4] */
    const int32_t *num_points;         /* [n_voxels] */
    const int32_t *coords;             /* [n_voxels][3] */
    const float *boxes;                /* [n_boxes][7] */
    const int32_t *labels;             /* [n_boxes] */
    const char *token;                 /* 64 bytes, NUL-padded */
} l3d_voxel_sample;

void l3d_voxel_cache_sample(const l3d_voxel_cache *c, int64_t s, l3d_voxel_sample *out);

/* ---- writing ----------------------------------------------------------
 * One pass: l3d_voxel_cache_begin, then the voxel rows sample by sample in
 * order (l3d_voxel_cache_append), then l3d_voxel_cache_finish with the per-
 * sample offsets, boxes and tokens. The datasets still end up contiguous and
 * allocated at their final sizes (formats/h5stream.h says how). */

typedef struct l3d_voxel_cache_info {
    l3d_voxel_config cfg;
    int sweeps;
    int64_t n_samples, n_boxes;
    const int64_t *voxel_offsets;         /* [S+1], ending at the rows appended */
    const int64_t *sample_point_counts;   /* [S][3] */
    const float *boxes;
    const int32_t *box_labels;
    const int64_t *box_offsets;
    const char *sample_tokens;            /* [S][64] */
    /* provenance, recorded as root attributes ("" when NULL) */
    const char *tool_version, *source, *source_sweep_transform;
} l3d_voxel_cache_info;

typedef struct l3d_stream_sum {       /* l3d_checksum fed in pieces of any size */
    uint64_t h;
    unsigned char carry[8];
    int n;
} l3d_stream_sum;

typedef struct l3d_voxel_cache_writer {
    l3d_h5w h5;
    l3d_h5stream points;              /* voxel_points rows, written in place */
    l3d_spill num, coords;            /* voxel_num_points, voxel_coords */
    int max_points;
    int64_t row;
    l3d_stream_sum sum_points, sum_num, sum_coords;
} l3d_voxel_cache_writer;

/* Starts NAME.tmp for voxels of cfg.max_points slots. */
int l3d_voxel_cache_begin(l3d_voxel_cache_writer *w, const char *path,
                          const l3d_voxel_config *cfg, l3d_err *err);
/* Appends m voxels (the next sample's, or part of it). */
int l3d_voxel_cache_append(l3d_voxel_cache_writer *w, int64_t m, const float *points,
                           const int32_t *num_points, const int32_t *coords, l3d_err *err);
/* Checks that the offsets span exactly the rows appended (at most max_voxels
 * a sample), writes everything else with the checksums and commits (fsync,
 * rename, fsync dir). On failure the temporary file is removed. */
int l3d_voxel_cache_finish(l3d_voxel_cache_writer *w, const l3d_voxel_cache_info *info,
                           l3d_err *err);
void l3d_voxel_cache_abort(l3d_voxel_cache_writer *w);

#endif
