/* pread/pwrite of a whole buffer: both may move fewer bytes than asked (a
 * signal, a pipe, a full disk), so every caller would loop. */
#ifndef LIDAR3D_FORMATS_FILEIO_H
#define LIDAR3D_FORMATS_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* 0, or -1 with errno set (EIO for a file shorter than off + n). */
int l3d_pread_all(int fd, void *buf, size_t n, int64_t off);
/* 0, or -1 with errno set (ENOSPC when the disk takes no more). */
int l3d_pwrite_all(int fd, const void *buf, size_t n, int64_t off);

#endif
