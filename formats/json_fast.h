/* A fast way through a table file's records: simdjson's on-demand parser
 * (SIMD, far quicker than yajl's byte-at-a-time lexer) building the very
 * same l3d_record values formats/json_records.c builds.
 *
 * It is only a fast path. It says nothing about why input is bad (no
 * message, no line): on any failure, including a callback's, the caller
 * throws away what it got and reads the same bytes again with
 * formats/json_records.c, whose messages name file, line and column. Every
 * value is visited, so it accepts no input that yajl would refuse; numbers
 * are rounded correctly by both, so the records are identical. Records it
 * hands over carry their index within the buffer and no line (-1). */
#ifndef LIDAR3D_FORMATS_JSON_FAST_H
#define LIDAR3D_FORMATS_JSON_FAST_H

#include <stddef.h>
#include "formats/json_records.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes that must be readable after the input (any content). */
#define L3D_JSON_FAST_PADDING 64

typedef struct l3d_json_fast l3d_json_fast;

l3d_json_fast *l3d_json_fast_new(void);
void l3d_json_fast_free(l3d_json_fast *p);

/* Parses buf[0, len), a JSON array of objects, giving each to fn(ctx).
 * Returns L3D_OK, or non-zero when the input is not such an array, is not
 * valid JSON, or fn failed (then err holds fn's message, if it wrote one).
 * *n_records counts the records handed over either way. */
int l3d_json_fast_parse(l3d_json_fast *p, const char *buf, size_t len, const char *file,
                        l3d_record_fn fn, void *ctx, long *n_records, l3d_err *err);

#ifdef __cplusplus
}
#endif
#endif
