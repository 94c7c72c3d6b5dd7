/* sweep-pack's plan: index lines -> the distinct scans to store and, per
 * sample, which scans (key frame, then sweeps nearest first) with which
 * transforms. A scan used by eleven samples is stored once. */
#ifndef LIDAR3D_TOOLS_SWEEP_PACK_PLAN_H
#define LIDAR3D_TOOLS_SWEEP_PACK_PLAN_H

#include <stdint.h>
#include <stdio.h>
#include "formats/error.h"
#include "formats/strmap.h"
#include "formats/sweep_cache.h"

typedef struct pack_scan {
    char token[L3D_CACHE_TOKEN + 1];
    int root;                  /* index into plan.roots */
    char *path;                /* relative to the root */
    int64_t expect_points;     /* from the index line */
    long first_line;           /* index line that first named it, for messages */
    /* filled while reading */
    int64_t count, tmp_off, tail_bytes;
    int done;
} pack_scan;

typedef struct pack_plan {
    char **roots;
    int n_roots;
    pack_scan *scans;
    int64_t n_scans, cap_scans;
    l3d_strmap by_token;       /* sample_data token -> scan index + 1 */
    int64_t n_samples, cap_samples;
    int32_t *sample_scans;     /* [S][11] */
    double *transforms;        /* [S][11][16] */
    float *lags;               /* [S][11] */
    double *timestamps;        /* [S] */
    int32_t *scene;            /* [S] */
    double *l2e, *e2g;         /* [S][7] */
    char *tokens;              /* [S][64] */
    char *scene_names;         /* [n_scenes][128] */
    int64_t n_scenes, cap_scenes;
    l3d_strmap scene_ids;      /* scene name -> id + 1 (all scenes seen, for sharding) */
    int64_t n_scenes_seen;
    l3d_strmap kept_ids;       /* scene name -> index in scene_names + 1 */
    float *boxes;              /* [B][7] */
    int32_t *labels;
    int64_t n_boxes, cap_boxes;
    int64_t *box_offsets;      /* [S+1] */
    uint64_t index_checksum;
} pack_plan;

typedef struct plan_opts {
    int shard_i, shard_n;      /* keep scenes whose order index % n == i */
    int mmdet_transform;       /* reproduce MMDetection3D >= 1.1's translation */
} plan_opts;

int plan_read(pack_plan *p, FILE *in, const char *name, const plan_opts *o, l3d_err *err);
void plan_free(pack_plan *p);

#endif
