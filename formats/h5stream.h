/* Writing an HDF5 cache in one pass when the row counts are known only at the
 * end, yet every dataset must be contiguous, allocated at its final size and
 * mmap-able (h5cache.h).
 *
 * The big dataset (the voxel cache's voxel_points, 95 % of its bytes) is a
 * "stream": its rows are written raw into the temporary file at the offset
 * where HDF5 will place the first dataset created in it. That offset does not
 * depend on the dataset's size, so l3d_h5stream_begin finds it by creating the
 * same layout once with one row, then starts the file again. At the end
 * l3d_h5stream_place creates the dataset with the real row count and checks
 * the offset; if an HDF5 version places it elsewhere the rows are moved there
 * (correct, only slower).
 *
 * The rows go to the disk with O_DIRECT where the file system allows it,
 * through an aligned staging buffer: a cache of hundreds of GB would
 * otherwise pass through (and evict) the page cache, and copying into the
 * page cache was the most expensive and most erratic part of writing one.
 * Elsewhere (tmpfs, say) they are written normally and each 32 MiB is handed
 * to the kernel's writeback as it fills, so the final fsync has little left
 * to wait for.
 *
 * Smaller datasets of unknown length go to a spill: an unlinked temporary file
 * beside the output, copied into their dataset at the end. */
#ifndef LIDAR3D_FORMATS_H5STREAM_H
#define LIDAR3D_FORMATS_H5STREAM_H

#include <stdint.h>
#include "formats/h5cache.h"

typedef struct l3d_h5stream {
    l3d_h5w *h5;
    char name[64];
    hid_t type;                   /* file type of the elements */
    int rank;
    hsize_t row_dims[3];          /* dims after the first */
    size_t row_bytes;
    int fd;                       /* the temporary file, for raw writes */
    int direct_fd;                /* the same with O_DIRECT, or -1 */
    unsigned char *stage;         /* direct mode: aligned staging buffer */
    size_t staged;                /* bytes in it, to go at stage_at */
    int64_t stage_at;
    int64_t base;                 /* where the rows go (expected dataset offset) */
    int64_t rows, synced;         /* rows written; bytes handed to writeback */
} l3d_h5stream;

/* Creates the writer's temporary file (l3d_h5w_create) and prepares dataset
 * `name` of `type`, rank 1..4, with row shape row_dims[rank-1]. Nothing else
 * may be created in the file before l3d_h5stream_place. */
int l3d_h5stream_begin(l3d_h5stream *s, l3d_h5w *w, const char *path, const char *name,
                       hid_t type, int rank, const hsize_t *row_dims, l3d_err *err);
/* Appends n rows (native layout of `type`). */
int l3d_h5stream_write(l3d_h5stream *s, const void *rows, int64_t n, l3d_err *err);
/* Creates the dataset with s->rows rows where the rows lie (moving them if
 * needed); after this the file is an ordinary l3d_h5w. */
int l3d_h5stream_place(l3d_h5stream *s, l3d_err *err);
/* Closes the raw descriptor (the l3d_h5w is aborted or committed separately). */
void l3d_h5stream_close(l3d_h5stream *s);

typedef struct l3d_spill {
    int fd;
    int64_t bytes;
    char *buf;                    /* write buffer */
    size_t used;
    const char *what;             /* for messages */
} l3d_spill;

/* An unlinked temporary file in the directory of `beside`. */
int l3d_spill_open(l3d_spill *sp, const char *beside, const char *what, l3d_err *err);
int l3d_spill_write(l3d_spill *sp, const void *data, size_t n, l3d_err *err);
/* Copies the spilled bytes, rows of row_bytes each, into dataset `name`
 * (created with data NULL) of w, in chunks. */
int l3d_spill_to_dataset(l3d_spill *sp, l3d_h5w *w, const char *name, hid_t mem_type,
                         size_t row_bytes, l3d_err *err);
void l3d_spill_close(l3d_spill *sp);

#endif
