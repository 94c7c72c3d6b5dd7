/* Index lines formatted on worker threads, their text handed back in order.
 *
 * Formatting (yajl_gen and shortest-digit doubles) is most of lyft-index's
 * output time, while building a line needs the dataset source, which is
 * not thread-safe: so the caller builds each line, in order, into a slot
 * the pool lends, and the pool's workers turn slots into text; the text of
 * each submitted line reaches `sink`, on the caller's thread, in the order
 * the lines were submitted. */
#ifndef LIDAR3D_FORMATS_LINE_POOL_H
#define LIDAR3D_FORMATS_LINE_POOL_H

#include <stddef.h>
#include "formats/error.h"
#include "formats/index_line.h"

typedef struct l3d_line_pool l3d_line_pool;

/* Gets one line's text (newline included); returns L3D_OK to go on. */
typedef int (*l3d_text_sink)(void *ctx, const char *text, size_t len, l3d_err *err);

/* n_workers <= 0: one per online CPU (at most 8). */
int l3d_line_pool_start(l3d_line_pool **pool, int n_workers, l3d_text_sink sink, void *sink_ctx,
                        l3d_err *err);

/* The line to build next. Waits while every slot is taken, meanwhile
 * passing finished text to the sink; NULL (err set) if formatting an
 * earlier line or the sink failed. Asking again without submitting gives
 * the same line (a line left out). */
l3d_index_line *l3d_line_pool_next(l3d_line_pool *pool, l3d_err *err);

/* Queues the line last given by l3d_line_pool_next for formatting. */
void l3d_line_pool_submit(l3d_line_pool *pool);

/* Passes the text of every submitted line to the sink (or reports the first
 * failure, in submission order), stops the workers and frees the pool. With
 * discard set, submitted lines are dropped instead (error paths). */
int l3d_line_pool_finish(l3d_line_pool *pool, int discard, l3d_err *err);

#endif
