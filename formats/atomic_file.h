/* Outputs appear complete or not at all: write to "NAME.tmp.<pid>", fsync,
 * rename over NAME, fsync the directory. A killed writer leaves the old file. */
#ifndef LIDAR3D_FORMATS_ATOMIC_FILE_H
#define LIDAR3D_FORMATS_ATOMIC_FILE_H

#include <stdio.h>
#include "formats/error.h"

typedef struct l3d_atomic_file {
    FILE *fp;          /* write here */
    char path[4096];   /* final name */
    char tmp[4200];    /* temporary name */
} l3d_atomic_file;

int l3d_atomic_open(l3d_atomic_file *af, const char *path, l3d_err *err);
/* Flushes, fsyncs and renames; closes in every case. */
int l3d_atomic_commit(l3d_atomic_file *af, l3d_err *err);
/* Closes and removes the temporary file (safe to call twice). */
void l3d_atomic_abort(l3d_atomic_file *af);

#endif
