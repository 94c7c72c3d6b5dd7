/* Writing one JSON table file: an array of records, one record per line,
 * generated with yajl; numbers in the shortest form that reads back exactly. */
#ifndef LIDAR3D_SYNTH_JSONW_H
#define LIDAR3D_SYNTH_JSONW_H

#include <stdio.h>
#include <yajl_gen.h>

#include "formats/error.h"

typedef struct jw {
    FILE *fp;
    yajl_gen g;
    char path[4096];
    long n;          /* records so far */
    int bad;         /* a generator call failed */
} jw;

int jw_open(jw *j, const char *dir, const char *table, l3d_err *err);
/* Flushes, fsyncs and closes; reports write and generator errors. */
int jw_close(jw *j, l3d_err *err);
/* Closes without reporting (error paths). */
void jw_abort(jw *j);

void jw_begin(jw *j);    /* a record: "{" */
void jw_end(jw *j);      /* "}" */
void jw_key(jw *j, const char *k);
void jw_str(jw *j, const char *k, const char *v);
void jw_num(jw *j, const char *k, double v);
void jw_int(jw *j, const char *k, long long v);
void jw_bool(jw *j, const char *k, int v);
void jw_nums(jw *j, const char *k, const double *v, int n);
void jw_arr_begin(jw *j, const char *k);   /* "k": [ */
void jw_arr_end(jw *j);
void jw_number(jw *j, double v);   /* a bare value, inside an array */
void jw_string(jw *j, const char *v);

#endif
