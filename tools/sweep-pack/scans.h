/* Reading the scans of a plan: decode, validate, quantise, and append them to
 * a temporary points file in arrival order (folders: parallel batches in
 * index order; archives: one pass in member order). The cache writer then
 * copies them out in scan order, so folder and archive give the same cache. */
#ifndef LIDAR3D_TOOLS_SWEEP_PACK_SCANS_H
#define LIDAR3D_TOOLS_SWEEP_PACK_SCANS_H

#include "tools/sweep-pack/plan.h"

typedef struct scan_opts {
    int threads;
    int quantise;         /* int16 at 1/128 m, else float32 */
    int intensity;        /* also keep column 3 */
} scan_opts;

typedef struct scan_stats {
    int64_t points, dropped_nonfinite, dropped_range, corrupt_files;
    double bytes_read;
} scan_stats;

typedef struct scan_store {
    int fd_xyz, fd_int;   /* unlinked temporary files */
    size_t xyz_size;      /* bytes per point: 6 or 12 */
} scan_store;

int scans_read(pack_plan *p, const scan_opts *o, const char *tmp_base, scan_store *st,
               scan_stats *stats, l3d_err *err);
/* l3d_points_fn over a scan_store, scans in plan order. */
typedef struct points_cursor {
    const pack_plan *p;
    const scan_store *st;
    int64_t scan, within;
} points_cursor;
int scans_points_fn(void *ctx, int64_t row0, int64_t n, void *xyz, float *intensity, l3d_err *err);
void scans_close(scan_store *st);

#endif
