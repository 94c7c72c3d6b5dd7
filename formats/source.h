/* Where a Lyft dataset lives: folders in the Kaggle or MMDetection3D layout,
 * or the distributed archives (.zip, .tar, .tar.gz, ...) read in place with
 * libarchive. One l3d_source combines several such inputs, e.g.
 * `train_data.zip train_lidar.zip`.
 *
 * Folder layouts accepted (T = the folder holding the tables, root = T/..):
 *   DIR/train_data/ + DIR/train_lidar/              (Kaggle)
 *   DIR/v1.01-train/v1.01-train/ + DIR/v1.01-train/lidar/   (MMDetection3D)
 *   any of the table folders given directly, with lidar/ beside it.
 * A LiDAR file name from sample_data.filename is tried as root/NAME, then as
 * root/{lidar,train_lidar,test_lidar}/BASENAME. In archives, members are
 * matched by base name. */
#ifndef LIDAR3D_FORMATS_SOURCE_H
#define LIDAR3D_FORMATS_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include "formats/error.h"

typedef struct l3d_source l3d_source;
typedef struct l3d_stream l3d_stream;

/* paths: folders or archive files. */
int l3d_source_open(l3d_source **out, char *const *paths, int n_paths, l3d_err *err);
void l3d_source_close(l3d_source *src);

/* Reads up to n bytes of a table member; *got = 0 at the end. */
int l3d_stream_read(l3d_stream *s, void *buf, size_t n, size_t *got, l3d_err *err);

/* The file a stream reads, when it is a plain file that can be opened again
 * and read from any offset; NULL for archive members. */
const char *l3d_stream_path(const l3d_stream *s);

/* Called once per table file found. `table` is the table name ("sample"),
 * `display` names the file for messages ("DIR/train_data/sample.json" or
 * "train_data.zip:train_data/sample.json"), `size` its byte size (-1 if not
 * known in advance). */
typedef int (*l3d_table_fn)(void *ctx, const char *table, const char *display, int64_t size,
                            l3d_stream *s, l3d_err *err);

/* Visits the tables named in `wanted` (NULL-terminated). Folders are visited
 * in `wanted` order; archives in member order (one pass, which also records
 * the archive's .bin members for l3d_source_find_lidar). A table present
 * twice is an error. `verify_lidar` makes the archive pass read every .bin
 * member and count non-finite floats. */
int l3d_source_scan(l3d_source *src, const char *const *wanted, int verify_lidar,
                    l3d_table_fn fn, void *ctx, l3d_err *err);

/* Total bytes of the table files that a scan will read (-1 if unknown). */
int64_t l3d_source_table_bytes(l3d_source *src, const char *const *wanted);

typedef struct l3d_lidar_loc {
    int found;
    const char *root;      /* absolute folder or archive path */
    const char *rel;       /* path relative to root, or archive member name ("" when not
                              found); the source's, like the answer itself */
    int64_t size;          /* bytes */
    int64_t nonfinite;     /* non-finite floats, -1 if not verified */
} l3d_lidar_loc;

/* Resolves sample_data.filename; with verify, reads a folder file and counts
 * non-finite floats (archives were verified during the scan). Answers are
 * remembered: *loc points at the source's copy, valid while the source is
 * open (a sweep is looked up again by each of the next ten samples). Safe
 * to call from several threads at once (index lines are built on a pool). */
int l3d_source_find_lidar(l3d_source *src, const char *filename, int verify,
                          const l3d_lidar_loc **loc, l3d_err *err);

/* Where LiDAR files are looked for first: the root of the first folder
 * source, else the first archive. Used as an index line's root when its
 * files are missing. */
const char *l3d_source_root(const l3d_source *src);

/* Counts non-finite floats in a little-endian float32 buffer. */
int64_t l3d_count_nonfinite_f32(const void *buf, size_t n_bytes);

#endif
