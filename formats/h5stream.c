#include "formats/h5stream.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/fileio.h"

#define WRITEBACK_STEP (32 << 20)   /* start writeback every 32 MiB */
#define COPY_CHUNK (8 << 20)
#define STAGE_BYTES (8 << 20)       /* direct writes of 8 MiB */
#define DIRECT_ALIGN 4096

static int io_fail(l3d_err *err, const char *path, const char *what, int e)
{
    return l3d_fail(err, L3D_EIO, "%s: cannot %s: %s (disk full or I/O error?)", path, what,
                    strerror(e ? e : EIO));
}

/* File offset of dataset `name`, -1 when it has no storage (0 rows). */
static int64_t dataset_offset(l3d_h5w *w, const char *name)
{
    hid_t d = H5Dopen2(w->file, name, H5P_DEFAULT);
    if (d < 0)
        return -1;
    haddr_t off = H5Dget_offset(d);
    H5Dclose(d);
    return off == HADDR_UNDEF ? -1 : (int64_t)off;
}

static int create_dataset(l3d_h5stream *s, hsize_t rows, l3d_err *err)
{
    hsize_t dims[4] = {rows};
    for (int i = 1; i < s->rank; i++)
        dims[i] = s->row_dims[i - 1];
    return l3d_h5w_dataset(s->h5, s->name, s->type, s->rank, dims, NULL, err);
}

int l3d_h5stream_begin(l3d_h5stream *s, l3d_h5w *w, const char *path, const char *name,
                       hid_t type, int rank, const hsize_t *row_dims, l3d_err *err)
{
    memset(s, 0, sizeof *s);
    s->fd = s->direct_fd = -1;
    s->h5 = w;
    if (rank < 1 || rank > 4 || strlen(name) >= sizeof s->name)
        return l3d_fail(err, L3D_EINTERNAL, "%s: bad streamed dataset '%s'", path, name);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->type = type;
    s->rank = rank;
    s->row_bytes = H5Tget_size(type);
    for (int i = 1; i < rank; i++) {
        s->row_dims[i - 1] = row_dims[i - 1];
        s->row_bytes *= row_dims[i - 1];
    }
    /* the probe: the same file with a one-row dataset */
    int rc = l3d_h5w_create(w, path, err);
    if (rc || (rc = create_dataset(s, 1, err))) {
        l3d_h5w_abort(w);
        return rc;
    }
    s->base = dataset_offset(w, name);
    l3d_h5w_abort(w);
    if (s->base < 0)
        return l3d_fail(err, L3D_EINTERNAL, "%s: HDF5 gave dataset '%s' no storage", path, name);
    /* the real file */
    if ((rc = l3d_h5w_create(w, path, err)))
        return rc;
    s->fd = open(w->tmp, O_RDWR | O_CLOEXEC);
    if (s->fd < 0) {
        rc = io_fail(err, w->tmp, "open for writing", errno);
        l3d_h5w_abort(w);
        return rc;
    }
    s->direct_fd = -1;
    if (s->base % DIRECT_ALIGN == 0 && !getenv("LIDAR3D_NO_DIRECT_IO")) {
        s->direct_fd = open(w->tmp, O_WRONLY | O_DIRECT | O_CLOEXEC);   /* fails on tmpfs */
        if (s->direct_fd >= 0 &&
            !(s->stage = aligned_alloc(DIRECT_ALIGN, STAGE_BYTES))) {
            close(s->direct_fd);
            s->direct_fd = -1;
        }
        s->stage_at = s->base;
    }
    return rc;
}

/* Writes the staged bytes: whole blocks directly, a partial last block
 * (`final` only) through the page cache. A file system that accepted
 * O_DIRECT at open but refuses the write gets everything the normal way. */
static int write_stage(l3d_h5stream *s, int final)
{
    size_t whole = s->staged & ~(size_t)(DIRECT_ALIGN - 1);
    if (whole) {
        ssize_t k = pwrite(s->direct_fd, s->stage, whole, (off_t)s->stage_at);
        if (k < 0 && errno == EINVAL) {
            close(s->direct_fd);
            s->direct_fd = -1;
            whole = 0;
        } else if (k != (ssize_t)whole) {
            if (k >= 0)
                errno = ENOSPC;
            return -1;
        }
    }
    if (whole < s->staged && (final || s->direct_fd < 0)) {
        if (l3d_pwrite_all(s->fd, s->stage + whole, s->staged - whole, s->stage_at + (int64_t)whole))
            return -1;
        whole = s->staged;
    }
    memmove(s->stage, s->stage + whole, s->staged - whole);
    s->staged -= whole;
    s->stage_at += (int64_t)whole;
    return 0;
}

static int write_staged(l3d_h5stream *s, const unsigned char *p, size_t n)
{
    while (n) {
        size_t k = STAGE_BYTES - s->staged < n ? STAGE_BYTES - s->staged : n;
        memcpy(s->stage + s->staged, p, k);
        s->staged += k, p += k, n -= k;
        if (s->staged == STAGE_BYTES && write_stage(s, 0))
            return -1;
        if (s->direct_fd < 0 && n)   /* fell back: the rest goes the normal way */
            return l3d_pwrite_all(s->fd, p, n, s->stage_at + (int64_t)s->staged);
    }
    return 0;
}

int l3d_h5stream_write(l3d_h5stream *s, const void *rows, int64_t n, l3d_err *err)
{
    if (n <= 0)
        return L3D_OK;
    int64_t at = s->base + s->rows * (int64_t)s->row_bytes;
    size_t bytes = (size_t)n * s->row_bytes;
    if (s->direct_fd >= 0 ? write_staged(s, rows, bytes) : l3d_pwrite_all(s->fd, rows, bytes, at))
        return io_fail(err, s->h5->tmp, "write rows", errno);
    s->rows += n;
    if (s->direct_fd >= 0)
        return L3D_OK;
#ifdef SYNC_FILE_RANGE_WRITE
    int64_t end = s->base + s->rows * (int64_t)s->row_bytes;
    if (end - s->base - s->synced >= WRITEBACK_STEP) {
        /* a hint: the disk writes while we compute; errors surface at fsync */
        sync_file_range(s->fd, s->base + s->synced, end - s->base - s->synced,
                        SYNC_FILE_RANGE_WRITE);
        s->synced = end - s->base;
    }
#endif
    return L3D_OK;
}

/* Moves len bytes from src to dst in the same file; overlapping ranges are
 * copied from the end when moving up. */
static int move_bytes(int fd, int64_t src, int64_t dst, int64_t len)
{
    char *buf = malloc(COPY_CHUNK);
    if (!buf)
        return -1;
    int64_t done = 0;
    while (done < len) {
        int64_t n = len - done < COPY_CHUNK ? len - done : COPY_CHUNK;
        int64_t o = dst > src ? len - done - n : done;
        if (l3d_pread_all(fd, buf, (size_t)n, src + o) || l3d_pwrite_all(fd, buf, (size_t)n, dst + o)) {
            free(buf);
            return -1;
        }
        done += n;
    }
    free(buf);
    return 0;
}

int l3d_h5stream_place(l3d_h5stream *s, l3d_err *err)
{
    if (s->stage && s->staged && write_stage(s, 1))
        return io_fail(err, s->h5->tmp, "write rows", errno);
    int rc = create_dataset(s, (hsize_t)s->rows, err);
    if (rc || s->rows == 0)
        return rc;
    int64_t at = dataset_offset(s->h5, s->name);
    if (at < 0)
        return l3d_fail(err, L3D_EINTERNAL, "%s: HDF5 gave dataset '%s' no storage", s->h5->tmp,
                        s->name);
    if (at != s->base &&
        move_bytes(s->fd, s->base, at, s->rows * (int64_t)s->row_bytes))
        return io_fail(err, s->h5->tmp, "move the streamed rows", errno);
    s->base = at;
    return L3D_OK;
}

void l3d_h5stream_close(l3d_h5stream *s)
{
    if (s->fd >= 0)
        close(s->fd);
    if (s->direct_fd >= 0)
        close(s->direct_fd);
    free(s->stage);
    s->fd = s->direct_fd = -1;
    s->stage = NULL;
}

/* ---- spills ---------------------------------------------------------------- */

#define SPILL_BUF (1 << 20)

int l3d_spill_open(l3d_spill *sp, const char *beside, const char *what, l3d_err *err)
{
    memset(sp, 0, sizeof *sp);
    sp->what = what;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", beside);
    const char *d = dirname(dir);
    sp->fd = open(d, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (sp->fd < 0) {   /* file systems without O_TMPFILE */
        char name[4200];
        snprintf(name, sizeof name, "%s/.spill-XXXXXX", d);
        sp->fd = mkstemp(name);
        if (sp->fd >= 0)
            unlink(name);
    }
    sp->buf = malloc(SPILL_BUF);
    if (sp->fd < 0 || !sp->buf) {
        int e = errno;
        l3d_spill_close(sp);
        return io_fail(err, d, "create a temporary file", e);
    }
    return L3D_OK;
}

static int spill_flush(l3d_spill *sp, l3d_err *err)
{
    if (sp->used && l3d_pwrite_all(sp->fd, sp->buf, sp->used, sp->bytes))
        return io_fail(err, sp->what, "write a temporary file", errno);
    sp->bytes += (int64_t)sp->used;
    sp->used = 0;
    return L3D_OK;
}

int l3d_spill_write(l3d_spill *sp, const void *data, size_t n, l3d_err *err)
{
    const char *p = data;
    while (n) {
        size_t k = SPILL_BUF - sp->used < n ? SPILL_BUF - sp->used : n;
        memcpy(sp->buf + sp->used, p, k);
        sp->used += k, p += k, n -= k;
        int rc;
        if (sp->used == SPILL_BUF && (rc = spill_flush(sp, err)))
            return rc;
    }
    return L3D_OK;
}

int l3d_spill_to_dataset(l3d_spill *sp, l3d_h5w *w, const char *name, hid_t mem_type,
                         size_t row_bytes, l3d_err *err)
{
    int rc = spill_flush(sp, err);
    if (rc)
        return rc;
    if (sp->bytes % (int64_t)row_bytes)
        return l3d_fail(err, L3D_EINTERNAL, "%s: %lld bytes spilled, not whole rows", sp->what,
                        (long long)sp->bytes);
    const int64_t chunk_rows = SPILL_BUF / (int64_t)row_bytes;
    for (int64_t row = 0, rows = sp->bytes / (int64_t)row_bytes; row < rows; row += chunk_rows) {
        int64_t n = rows - row < chunk_rows ? rows - row : chunk_rows;
        if (l3d_pread_all(sp->fd, sp->buf, (size_t)n * row_bytes, row * (int64_t)row_bytes))
            return io_fail(err, sp->what, "read a temporary file", errno);
        if ((rc = l3d_h5w_write_rows(w, name, mem_type, (hsize_t)row, (hsize_t)n, sp->buf, err)))
            return rc;
    }
    return L3D_OK;
}

void l3d_spill_close(l3d_spill *sp)
{
    if (sp->fd >= 0)
        close(sp->fd);
    free(sp->buf);
    sp->fd = -1;
    sp->buf = NULL;
}
