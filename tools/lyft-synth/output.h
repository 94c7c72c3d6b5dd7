/* Where lyft-synth writes: everything goes into OUTDIR.tmp-<pid>, which is
 * renamed to OUTDIR only when complete, so a failed or interrupted run leaves
 * no half-written dataset. Also the map raster, the archives and the split
 * files. */
#ifndef LIDAR3D_SYNTH_OUTPUT_H
#define LIDAR3D_SYNTH_OUTPUT_H

#include <signal.h>

#include "formats/error.h"
#include "tools/lyft-synth/dataset.h"

typedef struct syn_out {
    char final[4096];    /* OUTDIR */
    char tmp[4200];      /* where it is built */
    int replace;         /* OUTDIR exists and is not empty (--force) */
    int committed;
} syn_out;

/* Checks OUTDIR (absent or empty, or any folder with force) and creates the
 * temporary tree with train_data/, train_maps/ and, unless tables_only,
 * train_lidar/. */
int syn_out_begin(syn_out *o, const char *outdir, int force, int tables_only, l3d_err *err);
/* Moves the finished tree to OUTDIR (replacing the old one with force). */
int syn_out_commit(syn_out *o, l3d_err *err);
/* Removes the temporary tree unless committed. */
void syn_out_abort(syn_out *o);

/* A placeholder map raster (the SDK only needs the file to exist). */
int syn_write_map_png(const char *path, l3d_err *err);

/* Packs root/train_data, train_lidar and train_maps into root/train_*.<format>
 * (format zip, tar or tar.gz), members named as in the folders. */
int syn_pack(const syn_dataset *d, const char *root, const char *format,
             volatile sig_atomic_t *stop, l3d_err *err);

/* dir/train.txt and dir/val.txt: scene names, one per line. */
int syn_write_split(const syn_dataset *d, const char *dir, l3d_err *err);

/* rm -rf (does not follow symbolic links). */
int syn_remove_tree(const char *path);

#endif
