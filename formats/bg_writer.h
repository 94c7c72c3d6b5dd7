/* Writes a stream's bytes on a thread of its own, so that the kernel's copy
 * into the page cache (a third of lyft-index's output time for a 280 MB
 * index) overlaps the formatting of the next lines. Double-buffered: the
 * caller fills one buffer while the thread writes the other. */
#ifndef LIDAR3D_FORMATS_BG_WRITER_H
#define LIDAR3D_FORMATS_BG_WRITER_H

#include <stddef.h>
#include <stdio.h>
#include "formats/error.h"

typedef struct l3d_bg_writer l3d_bg_writer;

/* Starts the thread writing to fp (which stays the caller's to close);
 * `name` (a path, or "standard output") is for messages and must outlive w. */
int l3d_bg_writer_start(l3d_bg_writer **w, FILE *fp, const char *name, l3d_err *err);

/* Hands over the malloc'ed buffer *buf (its first *len bytes) to be
 * written, waiting while the previous one is still being written, and
 * gives back an empty buffer in exchange (*len = 0; *cap its size). Fails
 * with L3D_EIO once a write has failed. */
int l3d_bg_writer_put(l3d_bg_writer *w, char **buf, size_t *len, size_t *cap, l3d_err *err);

/* Writes what is pending, stops the thread and frees w; reports a failed
 * write. With abandon set, drops what is pending (error paths). */
int l3d_bg_writer_finish(l3d_bg_writer *w, int abandon, l3d_err *err);

#endif
