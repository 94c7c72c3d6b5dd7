/* The sweep cache (sweep-pack output): every LiDAR scan stored once, in its own
 * sensor frame, plus per sample the scans that make its merged cloud and the
 * transforms that bring them into the key-frame LiDAR frame. One cache serves
 * 0, 5 and 10 sweeps. Dataset names, dtypes and units: docs/formats.md. */
#ifndef LIDAR3D_FORMATS_SWEEP_CACHE_H
#define LIDAR3D_FORMATS_SWEEP_CACHE_H

#include <stdint.h>
#include "formats/error.h"
#include "formats/h5cache.h"

#define L3D_SWEEP_CACHE_FORMAT "lidar3d-sweep-cache"
#define L3D_SWEEP_CACHE_SCHEMA 1
#define L3D_SLOTS 11          /* key frame + up to 10 sweeps */
#define L3D_CACHE_TOKEN 64    /* fixed-length token strings */
#define L3D_CACHE_NAME 128    /* fixed-length scene names */

/* Quantisation of scan_points (int16): x = q * 1/128 m + 1/256 m, so |x| < 256 m
 * and the rounding error is at most 1/256 m; decoding is exact in float32. The
 * half-step offset puts the decoded values midway between multiples of 1/128 m,
 * so no point crosses a pillar or range edge that is such a multiple (0.25 m
 * pillars, ±100 m ranges): rounding moves a key-frame point along its own cell. */
#define L3D_POINT_SCALE (1.0 / 128.0)
#define L3D_POINT_OFFSET (1.0 / 256.0)
#define L3D_POINT_LIMIT 255.99

typedef struct l3d_sweep_cache {
    l3d_h5r h5;
    int64_t n_samples, n_scans, n_points, n_boxes, n_scenes;
    int quantised;                 /* scan_points int16 (else float32) */
    double scale_factor, add_offset;
    const int16_t *points_q;       /* [P][3] when quantised */
    const float *points_f;         /* [P][3] otherwise */
    const float *intensity;        /* [P] or NULL */
    const int64_t *scan_offsets;   /* [K+1] */
    const int32_t *sample_scans;   /* [S][11], -1 where absent */
    const double *sample_transforms;  /* [S][11][4][4], scan frame -> key-frame LiDAR */
    const float *sample_time_lags;    /* [S][11], s */
    const double *sample_timestamps;  /* [S], µs */
    const int32_t *sample_scene;      /* [S], index into scene_names */
    const double *sample_lidar2ego;   /* [S][7]: tx ty tz qw qx qy qz */
    const double *sample_ego2global;  /* [S][7] */
    const char *sample_tokens;        /* [S][64], NUL-padded */
    const char *scene_names;          /* [n_scenes][128] */
    const float *boxes;               /* [B][7]: x y z l w h yaw, key-frame LiDAR, geometric centre */
    const int32_t *box_labels;        /* [B], SSN class order (formats/lyft_tables.h) */
    const int64_t *box_offsets;       /* [S+1] */
} l3d_sweep_cache;

enum { L3D_CACHE_VERIFY_ALL = 1 };   /* also checksum the big point datasets */

/* Validates schema, shapes, offsets, index ranges and checksums, then maps. */
int l3d_sweep_cache_open(l3d_sweep_cache *c, const char *path, int flags, l3d_err *err);
void l3d_sweep_cache_close(l3d_sweep_cache *c);

/* Scans used by sample s with k sweeps (1 + min(k, available)). */
int l3d_sweep_cache_slots(const l3d_sweep_cache *c, int64_t s, int k);
/* Points of the merged cloud of sample s with k sweeps. */
int64_t l3d_sweep_cache_merged_count(const l3d_sweep_cache *c, int64_t s, int k);
/* Writes the merged cloud: per point x, y, z, time_lag (and intensity when
 * with_intensity and the cache has it), float32, key-frame LiDAR frame, key
 * frame first then sweeps nearest first, file order within a scan. `out` holds
 * l3d_sweep_cache_merged_count() * (4 or 5) floats. Returns the point count. */
int64_t l3d_sweep_cache_merge(const l3d_sweep_cache *c, int64_t s, int k, int with_intensity,
                              float *out);

/* ---- writing ---------------------------------------------------------- */

/* Everything but the points, in memory; sizes as in l3d_sweep_cache. */
typedef struct l3d_sweep_cache_meta {
    int64_t n_samples, n_scans, n_points, n_boxes, n_scenes;
    int quantised, with_intensity;
    const int64_t *scan_offsets;
    const char *scan_tokens;          /* [K][64] */
    const int32_t *sample_scans;
    const double *sample_transforms;
    const float *sample_time_lags;
    const double *sample_timestamps;
    const int32_t *sample_scene;
    const double *sample_lidar2ego, *sample_ego2global;
    const char *sample_tokens, *scene_names;
    const float *boxes;
    const int32_t *box_labels;
    const int64_t *box_offsets;
    /* provenance */
    const char *tool_version, *command, *index_checksum, *sweep_transform, *corrupt_policy;
    int64_t points_dropped_nonfinite, points_dropped_range, corrupt_files;
} l3d_sweep_cache_meta;

/* Supplies points rows [row0, row0+n) of scan_points (int16 or float32 xyz)
 * and, when with_intensity, of scan_intensity (float32); NULL when absent. */
typedef int (*l3d_points_fn)(void *ctx, int64_t row0, int64_t n, void *xyz, float *intensity,
                             l3d_err *err);

/* Writes PATH.tmp, then renames it to PATH. */
int l3d_sweep_cache_write(const char *path, const l3d_sweep_cache_meta *m, l3d_points_fn points,
                          void *ctx, l3d_err *err);

#endif
