/* The index line: one JSON object per sample, written by lyft-index and read
 * by every later tool. Field names follow MMDetection3D's Lyft info records;
 * docs/formats.md documents each field, unit and frame. */
#ifndef LIDAR3D_FORMATS_INDEX_LINE_H
#define LIDAR3D_FORMATS_INDEX_LINE_H

#include <stdint.h>
#include <stdio.h>
#include "formats/error.h"

#define L3D_MAX_SWEEPS 10
#define L3D_TOKEN_MAX 72
#define L3D_NAME_MAX 128
#define L3D_PATH_MAX 1024
#define L3D_INDEX_SCHEMA 1

typedef struct l3d_lidar_file {
    char path[L3D_PATH_MAX];   /* relative to the line's root */
    int64_t num_points;        /* floor(bytes / 20); -1 when the file is missing */
    int64_t tail_bytes;        /* bytes past the last whole point (corrupt file) */
    int64_t nonfinite;         /* non-finite floats, -1 when not verified */
} l3d_lidar_file;

typedef struct l3d_sweep {
    char sample_data_token[L3D_TOKEN_MAX];
    l3d_lidar_file lidar;
    double timestamp;          /* µs */
    double rotation[9];        /* sensor2lidar_rotation, row-major */
    double translation[3];     /* sensor2lidar_translation */
    double time_lag;           /* s, key minus sweep */
} l3d_sweep;

typedef struct l3d_index_line {
    char token[L3D_TOKEN_MAX], scene_token[L3D_TOKEN_MAX], scene_name[L3D_NAME_MAX];
    char sample_data_token[L3D_TOKEN_MAX];
    char root[L3D_PATH_MAX];
    double timestamp;          /* µs */
    l3d_lidar_file lidar;
    double lidar2ego_translation[3], lidar2ego_rotation[4];
    double ego2global_translation[3], ego2global_rotation[4];
    int n_sweeps;
    l3d_sweep sweeps[L3D_MAX_SWEEPS];
    int sweeps_missing;        /* the prev chain broke at an absent record */
    int annotated;             /* sample_annotation.json existed */
    size_t n_boxes, cap_boxes;
    double *gt_boxes;          /* [n_boxes][7]: x y z l w h yaw, key-frame LiDAR frame */
    char (*gt_names)[32];
    char (*gt_tokens)[L3D_TOKEN_MAX];
    int32_t *num_lidar_pts;
} l3d_index_line;

void l3d_index_line_init(l3d_index_line *l);
void l3d_index_line_free(l3d_index_line *l);
int l3d_index_line_reserve(l3d_index_line *l, size_t n_boxes);

/* Writes one line (with the trailing newline). */
int l3d_index_line_write(FILE *fp, const l3d_index_line *l, l3d_err *err);

/* Appends the same text to the malloc'ed buffer *buf of *len bytes in use
 * and *cap allocated (NULL, 0, 0 to start), growing it as needed; on
 * failure *len is unchanged. */
int l3d_index_line_append(char **buf, size_t *len, size_t *cap, const l3d_index_line *l,
                          l3d_err *err);

/* Parses one line; `file` and `lineno` name it in messages. */
int l3d_index_line_parse(const char *text, const char *file, long lineno, l3d_index_line *l,
                         l3d_err *err);

/* Shortest text that reads back as the same double ("%.17g" at most). */
void l3d_format_double(char buf[32], double v);

#endif
