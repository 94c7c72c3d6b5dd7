/* Index lines built and formatted on worker threads, handed back in order.
 *
 * Building a line (look-ups, transforms) and formatting it (shortest-digit
 * doubles) is most of lyft-index's output time, and lines are independent:
 * so the caller submits jobs (sample rows) in order, the pool's workers
 * build and format them, and each line with its text reaches `sink`, on
 * the caller's thread, in the order the jobs were submitted. */
#ifndef LIDAR3D_FORMATS_LINE_POOL_H
#define LIDAR3D_FORMATS_LINE_POOL_H

#include <stddef.h>
#include <stdint.h>
#include "formats/error.h"
#include "formats/index_line.h"

typedef struct l3d_line_pool l3d_line_pool;

/* Fills `line` for one job; called on several worker threads at once, so
 * it must only read shared state (or lock). Returns L3D_OK or fills err. */
typedef int (*l3d_line_build)(void *ctx, uint32_t job, l3d_index_line *line, l3d_err *err);

/* Gets one built line and its text (newline included), in submission
 * order; returns L3D_OK to go on. */
typedef int (*l3d_line_sink)(void *ctx, const l3d_index_line *line, const char *text,
                             size_t len, l3d_err *err);

/* n_workers <= 0: one per online CPU (at most 8). */
int l3d_line_pool_start(l3d_line_pool **pool, int n_workers, l3d_line_build build,
                        l3d_line_sink sink, void *ctx, l3d_err *err);

/* Queues a job. Waits while every slot is taken, meanwhile passing finished
 * lines to the sink; fails (err set) when building or formatting an earlier
 * line, or the sink, failed: the first failure in submission order. */
int l3d_line_pool_submit(l3d_line_pool *pool, uint32_t job, l3d_err *err);

/* Passes every submitted line to the sink (or reports the first failure, in
 * submission order), stops the workers and frees the pool. With discard
 * set, submitted jobs are dropped instead (error paths). */
int l3d_line_pool_finish(l3d_line_pool *pool, int discard, l3d_err *err);

#endif
