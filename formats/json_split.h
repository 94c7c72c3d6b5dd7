/* Reading a table file (a JSON array of records) through formats/json_records,
 * whole or in two parts on two threads.
 *
 * Lyft's sample_annotation.json is most of a dataset's bytes, and yajl
 * parses one byte at a time: so a plain file (not an archive member) of at
 * least L3D_SPLIT_MIN bytes is cut at a line that starts a record near its
 * middle, and the part after the cut is parsed on a second thread as if it
 * were an array of its own. The cut is trusted only when the first part's
 * parse, having reached it, stands right after a record and its comma
 * (l3d_jparser_between_records): then the second part's records are exactly
 * those a whole-file parse would have produced. In every other case, and
 * whenever the second part fails, the first part's parser simply reads on
 * past the cut, so every error is reported as a whole-file parse reports
 * it, with the same file, line, column and record number. */
#ifndef LIDAR3D_FORMATS_JSON_SPLIT_H
#define LIDAR3D_FORMATS_JSON_SPLIT_H

#include <stdint.h>
#include "formats/json_records.h"
#include "formats/source.h"

/* Below this a second thread is not worth its start (formats/lyft_tables.c
 * applies it; LIDAR3D_SPLIT_MIN overrides it, which the tests use). */
#define L3D_SPLIT_MIN (32 << 20)

/* Told the size of each read, on the calling thread. */
typedef void (*l3d_read_fn)(void *ctx, size_t n);

/* Parses all of s through fn(ctx). on_read may be NULL. */
int l3d_json_parse_stream(l3d_stream *s, const char *display, l3d_record_fn fn, void *ctx,
                          l3d_read_fn on_read, void *read_ctx, l3d_err *err);

/* Parses s (of `size` bytes, -1 if unknown), in two parts when it can (see
 * above; whatever its size): records before the cut go to fn(ctx), records
 * after it to fn(ctx_b) on another thread, so fn must change nothing that
 * ctx and ctx_b share. On success *split = 1 means ctx_b holds the records
 * that follow ctx's; *split = 0 means ctx holds them all and whatever ctx_b
 * got is to be thrown away (as on failure). */
int l3d_json_parse_split(l3d_stream *s, const char *display, int64_t size, l3d_record_fn fn,
                         void *ctx, void *ctx_b, int *split, l3d_read_fn on_read,
                         void *read_ctx, l3d_err *err);

#endif
