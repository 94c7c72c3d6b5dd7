/* The Lyft/nuScenes JSON tables, reduced to the fields LiDAR detection uses.
 *
 * Every table is read once (formats/json_split: in chunks on every CPU, or
 * streamed) into compact arrays, leaving out the records no index line can
 * use (other sensors' sample_data, ego poses nothing kept names);
 * tokens and names are interned into dense ids, so the 638k annotations and
 * 189k sample_data of Lyft train take tens of MB, not a DOM of the files.
 * After loading, every reference is resolved to a row index, and dangling
 * references are reported (spec ../shared/spec/lyft-data.md §1.3-§1.4). */
#ifndef LIDAR3D_FORMATS_LYFT_TABLES_H
#define LIDAR3D_FORMATS_LYFT_TABLES_H

#include <stdint.h>
#include "formats/error.h"
#include "formats/geometry.h"
#include "formats/source.h"
#include "formats/strmap.h"

#define L3D_NO_ROW UINT32_MAX

typedef struct l3d_scene { uint32_t token, name; } l3d_scene;
typedef struct l3d_sample {
    uint32_t token, scene_tok;
    uint32_t scene;        /* row, after linking */
    uint32_t key_sd;       /* row of the key-frame sample_data of the channel */
    double timestamp;      /* µs */
} l3d_sample;
typedef struct l3d_sample_data {
    uint32_t token, sample_tok, ego_tok, calib_tok, prev_tok, filename;
    uint32_t sample, ego, calib, prev;   /* rows; prev = L3D_NO_ROW at a chain end */
    uint8_t key_frame, prev_dangling, in_channel;
    double timestamp;      /* µs */
} l3d_sample_data;
typedef struct l3d_ego_pose { uint32_t token; l3d_pose pose; } l3d_ego_pose;
typedef struct l3d_calib { uint32_t token, sensor_tok, sensor; l3d_pose pose; } l3d_calib;
typedef struct l3d_sensor { uint32_t token, channel; } l3d_sensor;
typedef struct l3d_annotation {
    uint32_t token, sample_tok, instance_tok;
    uint32_t sample, instance;
    double centre[3], size_wlh[3], q[4];
    int32_t num_lidar_pts;
} l3d_annotation;
typedef struct l3d_instance { uint32_t token, category_tok, category; } l3d_instance;
typedef struct l3d_category { uint32_t token, name; } l3d_category;

#define L3D_TABLE(T) struct { T *rows; uint32_t n, cap; }

typedef struct l3d_tables {
    l3d_intern str;   /* every token, name and file name */
    L3D_TABLE(l3d_scene) scene;
    L3D_TABLE(l3d_sample) sample;
    L3D_TABLE(l3d_sample_data) sample_data;
    L3D_TABLE(l3d_ego_pose) ego_pose;
    L3D_TABLE(l3d_calib) calib;
    L3D_TABLE(l3d_sensor) sensor;
    L3D_TABLE(l3d_annotation) ann;
    L3D_TABLE(l3d_instance) instance;
    L3D_TABLE(l3d_category) category;
    int has_annotations;   /* sample_annotation.json was present */
    /* annotations per sample, in sample_annotation.json order (CSR) */
    uint32_t *ann_offsets;  /* [sample.n + 1] */
    uint32_t *ann_rows;
    /* counted, non-fatal findings */
    long n_prev_dangling;       /* channel records whose prev is absent */
    long n_samples_no_channel;  /* samples without a key frame of the channel */
    long n_records;             /* records read over all tables */
} l3d_tables;

/* The tables read; the first six are required. (Folders are read in an
 * order of their own: see read_order in lyft_tables.c.) */
extern const char *const l3d_table_names[];

typedef void (*l3d_bytes_fn)(void *ctx, int64_t bytes_read);

/* Loads and links the tables of src for LiDAR channel `channel`.
 * progress (may be NULL) is called as bytes are read. Should a channel
 * record's prev name a record left out, the tables are read a second time,
 * keeping every record (progress then starts over). */
int l3d_tables_load(l3d_tables *t, l3d_source *src, const char *channel, int verify_lidar,
                    l3d_bytes_fn progress, void *progress_ctx, l3d_err *err);
void l3d_tables_free(l3d_tables *t);

static inline const char *l3d_str(const l3d_tables *t, uint32_t id)
{
    return l3d_intern_str(&t->str, id);
}

/* Lyft's nine category names, in the SSN class order (spec ssn-model.md §6.1). */
extern const char *const l3d_lyft_classes[9];
int l3d_lyft_class_index(const char *name);   /* -1 if not one of the nine */

#endif
