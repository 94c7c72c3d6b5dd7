#include "formats/fileio.h"

#include <errno.h>
#include <unistd.h>

int l3d_pread_all(int fd, void *buf, size_t n, int64_t off)
{
    char *p = buf;
    while (n) {
        ssize_t k = pread(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = EIO;
            return -1;
        }
        p += k, n -= (size_t)k, off += k;
    }
    return 0;
}

int l3d_pwrite_all(int fd, const void *buf, size_t n, int64_t off)
{
    const char *p = buf;
    while (n) {
        ssize_t k = pwrite(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = ENOSPC;
            return -1;
        }
        p += k, n -= (size_t)k, off += k;
    }
    return 0;
}
