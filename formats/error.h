/* Error reporting shared by the formats library and the tools.
 *
 * Library calls never exit: they return one of the codes below and fill an
 * l3d_err with a message that names the file, the record and what was
 * expected. Tools turn the code into their exit status (docs/tools.md). */
#ifndef LIDAR3D_FORMATS_ERROR_H
#define LIDAR3D_FORMATS_ERROR_H

#include <stdarg.h>

enum l3d_code {
    L3D_OK = 0,
    L3D_EINTERNAL = 1,       /* out of memory, or a bug */
    L3D_EUSAGE = 2,          /* bad command line */
    L3D_EIO = 3,             /* cannot open/read/write a file */
    L3D_EJSON = 4,           /* malformed JSON (file, line, column) */
    L3D_ESCHEMA = 5,         /* a record lacks a field or has the wrong type */
    L3D_EMISSING_TABLE = 6,  /* a required table is absent */
    L3D_EDANGLING = 7,       /* a token points at a record that does not exist */
    L3D_EMISSING_LIDAR = 8,  /* a LiDAR .bin named by the tables is absent */
    L3D_EARCHIVE = 9,        /* damaged archive or member */
    L3D_ENONFINITE = 10,     /* NaN or infinity where a number is required */
    L3D_ECATEGORY = 11,      /* category name outside Lyft's nine */
    L3D_EINPUT = 12,         /* other bad input (empty file, bad split file, ...) */
};

typedef struct l3d_err {
    int code;
    char msg[1024];
} l3d_err;

/* Sets err (if not NULL) and returns code, so callers can write
 * `return l3d_fail(err, L3D_EIO, "%s: %s", path, strerror(errno));` */
int l3d_fail(l3d_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Short name of a code, e.g. "missing-lidar", for docs and logs. */
const char *l3d_code_name(int code);

#endif
