/* Reading a table file (a JSON array of records): cut in chunks, on every
 * CPU, or streamed.
 *
 * A plain file (not an archive member) is cut into chunks of about
 * L3D_CHUNK_BYTES at lines that start with '{' (a raw newline cannot be in
 * a JSON string, so such a line starts an object), and the chunks are parsed
 * by formats/json_fast, one thread per CPU, each into a part of its own
 * that the caller then takes in file order. That a cut falls between two
 * records is checked, not assumed: each chunk must parse as an array of its
 * own, ending just before a comma, so the chunks' records are exactly the
 * file's. On any failure whatsoever (a bad cut, bad JSON, a record the
 * caller refuses) the caller undoes what it took and the whole file is read
 * again by yajl (formats/json_records), whose message names the file, line
 * and column. Archive members, and files with no line to cut at, are
 * streamed through yajl. Either way memory stays bounded by a few chunks
 * per thread, never a whole file. */
#ifndef LIDAR3D_FORMATS_JSON_SPLIT_H
#define LIDAR3D_FORMATS_JSON_SPLIT_H

#include <stdint.h>
#include "formats/json_records.h"
#include "formats/source.h"

/* Chunk size aimed at; LIDAR3D_CHUNK_BYTES overrides it (the tests make it
 * tiny), and LIDAR3D_CHUNK_BYTES=0 turns the chunked fast path off. */
#define L3D_CHUNK_BYTES (2 << 20)
/* A chunk larger than this (no line to cut at) sends the file to yajl. */
#define L3D_CHUNK_MAX (64 << 20)

/* Told the size of each read, on the calling thread. */
typedef void (*l3d_read_fn)(void *ctx, size_t n);

/* What the caller does with the parts (one per chunk). */
typedef struct l3d_parts {
    /* A fresh context for one chunk's records, NULL when out of memory.
     * Called from the parsing threads: it must only allocate. */
    void *(*open)(void *owner);
    /* Takes a part's records after those taken before; calling thread. */
    int (*take)(void *owner, void *part, l3d_err *err);
    /* Frees a part (taken or not). */
    void (*drop)(void *owner, void *part);
    /* Forgets every record taken, before the whole file is read again
     * into the owner's own context. */
    void (*undo)(void *owner);
} l3d_parts;

/* Parses all of s through fn(ctx). on_read may be NULL. */
int l3d_json_parse_stream(l3d_stream *s, const char *display, l3d_record_fn fn, void *ctx,
                          l3d_read_fn on_read, void *read_ctx, l3d_err *err);

/* Parses s in chunks when it can, through
 * fn with the contexts of `parts` (see above), else through fn(ctx) as
 * l3d_json_parse_stream does. *chunks says how many chunks were parsed (0:
 * the file was streamed). */
int l3d_json_parse_table(l3d_stream *s, const char *display, l3d_record_fn fn,
                         void *ctx, const l3d_parts *parts, void *owner, int *chunks,
                         l3d_read_fn on_read, void *read_ctx, l3d_err *err);

/* Frees the parsers and buffers that chunked reads keep for the next table
 * (call when done reading tables). */
void l3d_json_chunk_cache_free(void);

#endif
