/* Tables -> index lines: the sample order, the key frame and its sweeps with
 * their transforms, and the GT boxes in the key-frame LiDAR frame, exactly as
 * MMDetection3D's Lyft converter computes them (spec lyft-data.md §3). */
#ifndef LIDAR3D_FORMATS_LYFT_INDEX_H
#define LIDAR3D_FORMATS_LYFT_INDEX_H

#include "formats/index_line.h"
#include "formats/lyft_tables.h"
#include "formats/source.h"

typedef struct l3d_index_opts {
    int sweeps;          /* 0..10 */
    int verify_lidar;    /* read every .bin and count non-finite floats */
    /* NULL, or [sample_data.n] NULLs: each record's LiDAR file is then
     * looked up in the source once and remembered here, without the
     * source's lock (a file serves up to 11 lines, built on several
     * threads) */
    const l3d_lidar_loc **sd_locs;
} l3d_index_opts;

/* Samples in scene order (scene.json order), then by timestamp (ties keep
 * sample.json order). Samples without a key frame of the channel are left
 * out (counted in t->n_samples_no_channel). `keep_scene` (may be NULL) says
 * which scene rows to keep. *rows is malloc'ed. */
int l3d_index_order(const l3d_tables *t, const unsigned char *keep_scene, uint32_t **rows,
                    uint32_t *n_rows, l3d_err *err);

/* Fills `line` for one sample row. A LiDAR file that cannot be found is
 * recorded with num_points = -1 (the caller applies its policy). */
int l3d_index_build(const l3d_tables *t, l3d_source *src, uint32_t sample_row,
                    const l3d_index_opts *o, l3d_index_line *line, l3d_err *err);

#endif
