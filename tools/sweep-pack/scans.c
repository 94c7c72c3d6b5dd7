#include "tools/sweep-pack/scans.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/fileio.h"
#include "tools/common/cli.h"

/* One decoded scan, ready to append. */
typedef struct decoded {
    void *xyz;
    float *intensity;
    int64_t n, nonfinite, out_of_range, tail;
    int rc;
    l3d_err err;
} decoded;

/* Raw .bin bytes -> kept points. Drops points with a non-finite coordinate
 * (or intensity, when kept) and, when quantising, beyond ±256 m. */
static void decode(const unsigned char *raw, size_t bytes, const scan_opts *o, decoded *d)
{
    int64_t n = (int64_t)(bytes / 20);
    d->tail = (int64_t)(bytes % 20);
    d->xyz = malloc((size_t)(n ? n : 1) * (o->quantise ? 6 : 12));
    d->intensity = o->intensity ? malloc((size_t)(n ? n : 1) * sizeof(float)) : NULL;
    if (!d->xyz || (o->intensity && !d->intensity)) {
        d->rc = l3d_fail(&d->err, L3D_EINTERNAL, "out of memory");
        return;
    }
    int16_t *q = d->xyz;
    float *f = d->xyz;
    int64_t w = 0;
    for (int64_t i = 0; i < n; i++) {
        float v[4];
        memcpy(v, raw + 20 * i, 16);   /* little-endian float32, as the files are */
        if (!isfinite(v[0]) || !isfinite(v[1]) || !isfinite(v[2]) ||
            (o->intensity && !isfinite(v[3]))) {
            d->nonfinite++;
            continue;
        }
        if (o->quantise) {
            if (fabsf(v[0]) > L3D_POINT_LIMIT || fabsf(v[1]) > L3D_POINT_LIMIT ||
                fabsf(v[2]) > L3D_POINT_LIMIT) {
                d->out_of_range++;
                continue;
            }
            for (int a = 0; a < 3; a++)
                q[3 * w + a] = (int16_t)lrint(((double)v[a] - L3D_POINT_OFFSET) / L3D_POINT_SCALE);
        } else {
            for (int a = 0; a < 3; a++)
                f[3 * w + a] = v[a];
        }
        if (o->intensity)
            d->intensity[w] = v[3];
        w++;
    }
    d->n = w;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const char *b = buf;
    while (n) {
        ssize_t k = write(fd, b, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Appends one decoded scan to the store and records where it went. */
static int append(pack_plan *p, int64_t idx, decoded *d, scan_store *st, scan_stats *stats,
                  int64_t *next_off, l3d_err *err)
{
    pack_scan *s = &p->scans[idx];
    if (d->rc) {
        *err = d->err;
        return d->rc;
    }
    if (write_all(st->fd_xyz, d->xyz, (size_t)d->n * st->xyz_size) ||
        (d->intensity && write_all(st->fd_int, d->intensity, (size_t)d->n * 4)))
        return l3d_fail(err, L3D_EIO, "cannot write temporary points (disk full?): %s",
                        strerror(errno));
    s->count = d->n;
    s->tmp_off = *next_off;
    s->tail_bytes = d->tail;
    s->done = 1;
    *next_off += d->n;
    stats->points += d->n;
    stats->dropped_nonfinite += d->nonfinite;
    stats->dropped_range += d->out_of_range;
    if (d->tail) {
        stats->corrupt_files++;
        l3d_warn("%s/%s: size is not a multiple of 20 bytes; using its first %lld points",
                 p->roots[s->root], s->path, (long long)(d->n + d->nonfinite + d->out_of_range));
    }
    if (d->nonfinite)
        l3d_warn("%s/%s: dropped %lld points with non-finite values", p->roots[s->root], s->path,
                 (long long)d->nonfinite);
    if (d->out_of_range)
        l3d_warn("%s/%s: dropped %lld points beyond ±256 m (use --no-quantize to keep them)",
                 p->roots[s->root], s->path, (long long)d->out_of_range);
    free(d->xyz);
    free(d->intensity);
    memset(d, 0, sizeof *d);
    return L3D_OK;
}

static int check_size(const pack_plan *p, const pack_scan *s, int64_t bytes, l3d_err *err)
{
    if (bytes / 20 < s->expect_points)
        return l3d_fail(err, L3D_EINPUT, "%s/%s: truncated: %lld bytes, but the index (line %ld) "
                        "promised %lld points; re-index or restore the file", p->roots[s->root],
                        s->path, (long long)bytes, s->first_line, (long long)s->expect_points);
    return L3D_OK;
}

/* ---- folders: parallel batches --------------------------------------- */

typedef struct batch {
    pack_plan *p;
    const scan_opts *o;
    int64_t first, n;           /* scans [first, first+n) of the folder list */
    const int64_t *list;
    decoded *out;
    int64_t next;               /* next slot to claim */
    pthread_mutex_t lock;
    double bytes;
} batch;

static void read_one(batch *b, int64_t slot)
{
    pack_plan *p = b->p;
    pack_scan *s = &p->scans[b->list[b->first + slot]];
    decoded *d = &b->out[slot];
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", p->roots[s->root], s->path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        d->rc = l3d_fail(&d->err, errno == ENOENT ? L3D_EMISSING_LIDAR : L3D_EIO,
                         "%s: %s (named by index line %ld)", path, strerror(errno), s->first_line);
        return;
    }
    struct stat st;
    fstat(fd, &st);
    unsigned char *raw = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (raw && got < (size_t)st.st_size) {
        ssize_t k = read(fd, raw + got, (size_t)st.st_size - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    if (!raw || got != (size_t)st.st_size)
        d->rc = l3d_fail(&d->err, raw ? L3D_EIO : L3D_EINTERNAL, "%s: cannot read", path);
    else if (!(d->rc = check_size(p, s, (int64_t)got, &d->err)))
        decode(raw, got, b->o, d);
    free(raw);
    pthread_mutex_lock(&b->lock);
    b->bytes += (double)got;
    pthread_mutex_unlock(&b->lock);
}

static void *worker(void *arg)
{
    batch *b = arg;
    for (;;) {
        pthread_mutex_lock(&b->lock);
        int64_t slot = b->next++;
        pthread_mutex_unlock(&b->lock);
        if (slot >= b->n)
            return NULL;
        read_one(b, slot);
    }
}

static int read_folder_scans(pack_plan *p, const scan_opts *o, const int64_t *list, int64_t n,
                             scan_store *st, scan_stats *stats, int64_t *next_off,
                             l3d_progress *prog, int64_t *n_done, l3d_err *err)
{
    enum { BATCH = 32 };
    decoded out[BATCH];
    int threads = o->threads < 1 ? 1 : o->threads > 64 ? 64 : o->threads;
    pthread_t tid[64];
    for (int64_t first = 0; first < n; first += BATCH) {
        batch b = {.p = p, .o = o, .first = first, .n = n - first < BATCH ? n - first : BATCH,
                   .list = list, .out = out};
        memset(out, 0, sizeof out);
        pthread_mutex_init(&b.lock, NULL);
        int started = 0;
        for (int t = 0; t < threads - 1 && t < b.n - 1; t++)
            if (pthread_create(&tid[started], NULL, worker, &b) == 0)
                started++;
        worker(&b);
        for (int t = 0; t < started; t++)
            pthread_join(tid[t], NULL);
        pthread_mutex_destroy(&b.lock);
        stats->bytes_read += b.bytes;
        int rc = L3D_OK;
        for (int64_t k = 0; k < b.n; k++) {
            if (!rc)
                rc = append(p, list[first + k], &out[k], st, stats, next_off, err);
            free(out[k].xyz);
            free(out[k].intensity);
        }
        if (rc)
            return rc;
        *n_done += b.n;
        l3d_progress_update(prog, (double)*n_done);
    }
    return L3D_OK;
}

/* ---- archives: one sequential pass ----------------------------------- */

static int read_archive_scans(pack_plan *p, const scan_opts *o, int root, scan_store *st,
                              scan_stats *stats, int64_t *next_off, l3d_progress *prog,
                              int64_t *n_done, l3d_err *err)
{
    l3d_strmap members;
    l3d_strmap_init(&members);
    int64_t wanted = 0;
    for (int64_t i = 0; i < p->n_scans; i++)
        if (p->scans[i].root == root && !p->scans[i].done) {
            if (!l3d_strmap_put(&members, p->scans[i].path, (size_t)i + 1))
                return l3d_fail(err, L3D_EINTERNAL, "out of memory");
            wanted++;
        }
    struct archive *ar = archive_read_new();
    archive_read_support_filter_all(ar);
    archive_read_support_format_all(ar);
    int rc = L3D_OK;
    unsigned char *raw = NULL;
    size_t cap = 0;
    if (archive_read_open_filename(ar, p->roots[root], 1 << 16) != ARCHIVE_OK) {
        rc = l3d_fail(err, L3D_EARCHIVE, "%s: cannot open as an archive: %s", p->roots[root],
                      archive_error_string(ar));
        goto out;
    }
    while (wanted > 0) {
        struct archive_entry *e;
        int r = archive_read_next_header(ar, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK) {
            rc = l3d_fail(err, L3D_EARCHIVE, "%s: damaged archive: %s", p->roots[root],
                          archive_error_string(ar));
            goto out;
        }
        size_t idx = l3d_strmap_get(&members, archive_entry_pathname(e));
        if (!idx)
            continue;
        size_t got = 0;
        for (;;) {
            if (got + 65536 > cap) {
                cap = cap ? 2 * cap : 1 << 22;
                unsigned char *nr = realloc(raw, cap);
                if (!nr) {
                    rc = l3d_fail(err, L3D_EINTERNAL, "out of memory");
                    goto out;
                }
                raw = nr;
            }
            la_ssize_t k = archive_read_data(ar, raw + got, 65536);
            if (k < 0) {
                rc = l3d_fail(err, L3D_EARCHIVE, "%s:%s: damaged archive member: %s",
                              p->roots[root], archive_entry_pathname(e), archive_error_string(ar));
                goto out;
            }
            if (k == 0)
                break;
            got += (size_t)k;
        }
        pack_scan *s = &p->scans[idx - 1];
        if (s->done)
            continue;
        stats->bytes_read += (double)got;
        if ((rc = check_size(p, s, (int64_t)got, err)))
            goto out;
        decoded d = {0};
        decode(raw, got, o, &d);
        if ((rc = append(p, (int64_t)idx - 1, &d, st, stats, next_off, err))) {
            free(d.xyz);
            free(d.intensity);
            goto out;
        }
        wanted--;
        l3d_progress_update(prog, (double)++*n_done);
    }
out:
    archive_read_free(ar);
    l3d_strmap_free(&members);
    free(raw);
    return rc;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int temp_fd(const char *base, const char *suffix, l3d_err *err)
{
    char path[8192];
    snprintf(path, sizeof path, "%s.%s.tmp", base, suffix);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -l3d_fail(err, L3D_EIO, "cannot create '%s': %s", path, strerror(errno));
    unlink(path);   /* gone however this process ends */
    return fd;
}

int scans_read(pack_plan *p, const scan_opts *o, const char *tmp_base, scan_store *st,
               scan_stats *stats, l3d_err *err)
{
    memset(stats, 0, sizeof *stats);
    st->fd_int = -1;
    st->xyz_size = o->quantise ? 6 : 12;
    st->fd_xyz = temp_fd(tmp_base, "points", err);
    if (st->fd_xyz < 0)
        return -st->fd_xyz;
    if (o->intensity && (st->fd_int = temp_fd(tmp_base, "intensity", err)) < 0)
        return -st->fd_int;
    int64_t *list = malloc((size_t)(p->n_scans + 1) * sizeof *list), n_list = 0, next_off = 0,
            n_done = 0;
    if (!list)
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    l3d_progress prog;
    l3d_progress_begin(&prog, "reading scans", "scans", (double)p->n_scans);
    int rc = L3D_OK;
    for (int r = 0; r < p->n_roots && !rc; r++) {
        if (is_dir(p->roots[r])) {
            n_list = 0;
            for (int64_t i = 0; i < p->n_scans; i++)
                if (p->scans[i].root == r)
                    list[n_list++] = i;
            rc = read_folder_scans(p, o, list, n_list, st, stats, &next_off, &prog, &n_done, err);
        } else {
            rc = read_archive_scans(p, o, r, st, stats, &next_off, &prog, &n_done, err);
        }
    }
    l3d_progress_end(&prog);
    free(list);
    for (int64_t i = 0; i < p->n_scans && !rc; i++)
        if (!p->scans[i].done)
            rc = l3d_fail(err, L3D_EMISSING_LIDAR, "%s: LiDAR member '%s' not found (named by "
                          "index line %ld)", p->roots[p->scans[i].root], p->scans[i].path,
                          p->scans[i].first_line);
    return rc;
}

int scans_points_fn(void *ctx, int64_t row0, int64_t n, void *xyz, float *intensity, l3d_err *err)
{
    (void)row0; /* rows arrive in order: the cursor follows them */
    points_cursor *c = ctx;
    int64_t w = 0;
    while (w < n) {
        const pack_scan *s = &c->p->scans[c->scan];
        int64_t take = s->count - c->within;
        if (take > n - w)
            take = n - w;
        off_t src = (off_t)(s->tmp_off + c->within);
        if (take > 0 &&
            (l3d_pread_all(c->st->fd_xyz, (char *)xyz + (size_t)w * c->st->xyz_size,
                       (size_t)take * c->st->xyz_size, src * (off_t)c->st->xyz_size) ||
             (intensity && l3d_pread_all(c->st->fd_int, intensity + w, (size_t)take * 4, src * 4))))
            return l3d_fail(err, L3D_EIO, "cannot read temporary points back: %s", strerror(errno));
        w += take;
        c->within += take;
        if (c->within == s->count) {
            c->scan++;
            c->within = 0;
        }
    }
    return L3D_OK;
}

void scans_close(scan_store *st)
{
    if (st->fd_xyz >= 0)
        close(st->fd_xyz);
    if (st->fd_int >= 0)
        close(st->fd_int);
    st->fd_xyz = st->fd_int = -1;
}
