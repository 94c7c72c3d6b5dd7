/* Streaming reader for a JSON array of flat records (the Lyft tables).
 *
 * Built on yajl's event parser: no DOM of the file is ever built. Each
 * top-level object is collected into an l3d_record (scalars and flat numeric
 * arrays; deeper structure is noted but not kept) and handed to a callback,
 * then forgotten, so memory stays bounded by the largest record. Malformed
 * JSON is reported with file, line and column. */
#ifndef LIDAR3D_FORMATS_JSON_RECORDS_H
#define LIDAR3D_FORMATS_JSON_RECORDS_H

#include <stddef.h>
#include <stdint.h>
#include "formats/error.h"

#define L3D_REC_MAX_FIELDS 48
#define L3D_REC_MAX_NUMS 16

typedef enum {
    L3D_JNULL, L3D_JBOOL, L3D_JNUM, L3D_JSTR, L3D_JNUMARR, L3D_JOTHER
} l3d_jkind;

typedef struct l3d_jfield {
    const char *key;
    l3d_jkind kind;
    int boolean;
    double num;                      /* L3D_JNUM */
    const char *str;                 /* L3D_JSTR, NUL-terminated */
    size_t len;
    double nums[L3D_REC_MAX_NUMS];   /* L3D_JNUMARR */
    int n_nums;
} l3d_jfield;

/* A field made empty (null, no key) for the next key: all but nums[], which
 * only n_nums counts (a memset of the whole was a hot spot). */
static inline void l3d_jfield_clear(l3d_jfield *f)
{
    f->key = NULL;
    f->kind = L3D_JNULL;
    f->boolean = 0;
    f->num = 0;
    f->str = NULL;
    f->len = 0;
    f->n_nums = 0;
}

typedef struct l3d_record {
    const char *file;   /* for messages */
    long index;         /* 0-based position in the array */
    long line;          /* line where the record starts */
    int n;
    l3d_jfield f[L3D_REC_MAX_FIELDS];
} l3d_record;

/* Returns L3D_OK to continue, an error code (with err filled) to stop. */
typedef int (*l3d_record_fn)(void *ctx, const l3d_record *rec, l3d_err *err);

typedef struct l3d_jparser l3d_jparser;

l3d_jparser *l3d_jparser_new(const char *file, l3d_record_fn fn, void *ctx);
int l3d_jparser_feed(l3d_jparser *p, const unsigned char *buf, size_t n, l3d_err *err);
int l3d_jparser_finish(l3d_jparser *p, l3d_err *err);   /* end of input */
long l3d_jparser_records(const l3d_jparser *p);
void l3d_jparser_free(l3d_jparser *p);

/* Field getters: each fails with L3D_ESCHEMA naming file, record and field
 * when the field is absent or of the wrong type, and with L3D_ENONFINITE for
 * NaN/inf. */
const l3d_jfield *l3d_rec_field(const l3d_record *r, const char *key);
int l3d_rec_str(const l3d_record *r, const char *key, const char **out, l3d_err *err);
int l3d_rec_num(const l3d_record *r, const char *key, double *out, l3d_err *err);
int l3d_rec_bool(const l3d_record *r, const char *key, int *out, l3d_err *err);
int l3d_rec_nums(const l3d_record *r, const char *key, int n, double *out, l3d_err *err);

#endif
