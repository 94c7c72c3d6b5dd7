/* The whole synthetic dataset before anything is written: scenes (one log
 * each), samples with timestamps and ego poses, instances and their
 * annotations (global frame), per-host LIDAR_TOP calibrations, the chosen
 * defects and the val scenes. Tokens are not stored: syn_token derives each
 * from (seed, table, row). */
#ifndef LIDAR3D_SYNTH_DATASET_H
#define LIDAR3D_SYNTH_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "formats/error.h"
#include "tools/lyft-synth/world.h"

#define SYN_NONE UINT32_MAX
#define SYN_NHOSTS 12
#define SYN_GPS_EPOCH_US 315964800000000LL   /* Unix time of the GPS epoch, µs */

typedef struct syn_opts {
    uint64_t seed;
    int scenes, samples, objects;     /* samples per scene, objects per scene */
    double radius;                    /* objects are annotated within this distance of the ego */
    int tables_only;
    int missing_bin, corrupt_bin, dangling_prev;
    double val_fraction;
} syn_opts;

enum { SYN_DEFECT_MISSING = 1, SYN_DEFECT_CORRUPT = 2, SYN_DEFECT_DANGLING = 4 };

typedef struct syn_scene {
    int host;
    int val;                     /* listed in val.txt */
    int64_t t0_q;                /* first sample time, quarter µs (exact in a double) */
    syn_world world;
    uint32_t first_sample, n_samples;
    uint32_t first_inst, n_inst;
    char name[96];
} syn_scene;

typedef struct syn_sample {
    uint32_t scene, k;           /* k-th sample of its scene */
    int64_t ts_q;                /* quarter µs */
    double t;                    /* s since the scene's first sample */
    double ego_t[3], ego_q[4];   /* ego -> global */
    uint32_t ann_begin, ann_end; /* its annotations */
    int defects;
} syn_sample;

typedef struct syn_instance {
    uint32_t scene, obj;         /* world object */
    int cls, attr;               /* copied from the object (worlds are freed with --tables-only) */
    double lwh[3];
    uint32_t first_ann, last_ann, n_ann;
} syn_instance;

typedef struct syn_ann {
    uint32_t sample, inst, prev, next;
    double centre[3], q[4];      /* geometric centre and rotation, global frame */
    int32_t num_pts;             /* returns from the object in the sample's scan; -1: no scan */
} syn_ann;

typedef struct syn_calib {
    int used;
    double t[3], q[4];           /* LIDAR_TOP -> ego */
} syn_calib;

typedef struct syn_dataset {
    syn_opts o;
    syn_scene *scenes;
    int n_scenes;
    syn_sample *samples;
    uint32_t n_samples;
    syn_instance *inst;
    uint32_t n_inst;
    syn_ann *ann;
    uint32_t n_ann, cap_ann;
    syn_calib calib[SYN_NHOSTS];
} syn_dataset;

/* progress (may be NULL) is called with the number of scenes done. */
int syn_dataset_build(syn_dataset *d, const syn_opts *o, void (*progress)(void *, double),
                      void *ctx, l3d_err *err);
void syn_dataset_free(syn_dataset *d);

const char *syn_host_name(int host);   /* "a101" */
/* 64 lowercase hex digits (32 for the map) naming row `index` of a table. */
void syn_token(char out[65], uint64_t seed, int tag, uint64_t index);
/* "train_lidar/host-a101_lidar1_<T>.bin", T = GPS-epoch ns of the sample. */
void syn_lidar_filename(const syn_dataset *d, uint32_t sample, char *buf, size_t n);
static inline double syn_ts_us(int64_t q) { return (double)q / 4.0; }
/* Pure-yaw quaternion [w, x, y, z]. */
void syn_yaw_quat(double yaw, double q[4]);

#endif
