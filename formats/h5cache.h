/* What the HDF5 caches (sweep cache, voxel cache) share: files whose datasets
 * are contiguous, uncompressed, allocated early and page-aligned, each with an
 * FNV-1a checksum attribute, written to NAME.tmp and renamed on success; and a
 * reader that validates and then memory-maps the whole file read-only, so a
 * dataset is a pointer into the map (zero-copy). Where mmap is unavailable
 * (or LIDAR3D_NO_MMAP=1) datasets are read with pread instead. */
#ifndef LIDAR3D_FORMATS_H5CACHE_H
#define LIDAR3D_FORMATS_H5CACHE_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>
#include "formats/error.h"

/* ---- writing ---------------------------------------------------------- */

typedef struct l3d_h5w {
    hid_t file;
    char path[4096], tmp[4200];
} l3d_h5w;

int l3d_h5w_create(l3d_h5w *w, const char *path, l3d_err *err);
/* Creates a contiguous dataset of `rank` dims of `type` and writes `data`
 * (may be NULL to write later with l3d_h5w_write_rows). Adds the checksum
 * attribute when data is given. */
int l3d_h5w_dataset(l3d_h5w *w, const char *name, hid_t type, int rank, const hsize_t *dims,
                    const void *data, l3d_err *err);
/* Writes rows [row0, row0+n) of a rank>=1 dataset created with data NULL. */
int l3d_h5w_write_rows(l3d_h5w *w, const char *name, hid_t type, hsize_t row0, hsize_t n,
                       const void *data, l3d_err *err);
int l3d_h5w_set_checksum(l3d_h5w *w, const char *name, uint64_t sum, l3d_err *err);
/* Attributes on a dataset ("" or "/" = the file's root group). */
int l3d_h5w_attr_str(l3d_h5w *w, const char *obj, const char *key, const char *val, l3d_err *err);
int l3d_h5w_attr_i64(l3d_h5w *w, const char *obj, const char *key, int64_t val, l3d_err *err);
int l3d_h5w_attr_f64(l3d_h5w *w, const char *obj, const char *key, double val, l3d_err *err);
/* Closes, fsyncs, renames over the final name, fsyncs the directory. */
int l3d_h5w_commit(l3d_h5w *w, l3d_err *err);
void l3d_h5w_abort(l3d_h5w *w);

/* Fixed-length NUL-padded string type of n bytes (caller closes it). */
hid_t l3d_h5_str_type(size_t n);

uint64_t l3d_checksum(const void *data, size_t n, uint64_t state);
#define L3D_CHECKSUM_INIT 1469598103934665603ull

/* ---- reading ---------------------------------------------------------- */

typedef struct l3d_h5r {
    char path[4096];
    hid_t file;
    int fd;
    void *map;            /* whole file, PROT_READ; NULL in pread mode */
    size_t map_len;
    void **owned;         /* pread mode: buffers to free */
    int n_owned;
} l3d_h5r;

typedef struct l3d_h5view {
    const void *data;
    int rank;
    hsize_t dims[4];
    size_t elem;          /* bytes per element */
    size_t bytes;
} l3d_h5view;

/* Opens; checks the root attribute "schema_version" equals `schema` and
 * "format" equals `format` (e.g. "lidar3d-sweep-cache"). */
int l3d_h5r_open(l3d_h5r *r, const char *path, const char *format, int64_t schema, l3d_err *err);
/* Maps dataset `name`, checking its class/size against `type` and its rank;
 * verifies the checksum when `verify` is set. */
int l3d_h5r_view(l3d_h5r *r, const char *name, hid_t type, int rank, int verify,
                 l3d_h5view *v, l3d_err *err);
int l3d_h5r_has(l3d_h5r *r, const char *name);
int l3d_h5r_attr_f64(l3d_h5r *r, const char *obj, const char *key, double *out, l3d_err *err);
int l3d_h5r_attr_i64(l3d_h5r *r, const char *obj, const char *key, int64_t *out, l3d_err *err);
int l3d_h5r_attr_str(l3d_h5r *r, const char *obj, const char *key, char *out, size_t n,
                     l3d_err *err);
void l3d_h5r_close(l3d_h5r *r);

#endif
