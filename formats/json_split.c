#include "formats/json_split.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/fileio.h"
#include "formats/json_fast.h"

enum { STREAM_BUF = 1 << 16, WINDOW = 1 << 16, CUT_SEARCH = 1 << 20, MAX_THREADS = 8 };

static int oom(l3d_err *err) { return l3d_fail(err, L3D_EINTERNAL, "out of memory"); }

/* ---- yajl, streamed --------------------------------------------------- */

int l3d_json_parse_stream(l3d_stream *s, const char *display, l3d_record_fn fn, void *ctx,
                          l3d_read_fn on_read, void *read_ctx, l3d_err *err)
{
    unsigned char *buf = malloc(STREAM_BUF);
    l3d_jparser *p = l3d_jparser_new(display, fn, ctx);
    int rc = buf && p ? L3D_OK : oom(err);
    while (!rc) {
        size_t got;
        if ((rc = l3d_stream_read(s, buf, STREAM_BUF, &got, err)))
            break;
        if (got == 0) {
            rc = l3d_jparser_finish(p, err);
            break;
        }
        if (on_read)
            on_read(read_ctx, got);
        rc = l3d_jparser_feed(p, buf, got, err);
    }
    l3d_jparser_free(p);
    free(buf);
    return rc;
}

/* formats/json_fast is compiled for AVX2 on x86-64 (see the Makefile). */
static int fast_parser_runs_here(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") &&
           __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("popcnt");
#else
    return 1;
#endif
}

/* ---- where to cut ------------------------------------------------------ */

static int is_ws(unsigned char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

static int64_t chunk_target(void)
{
    const char *e = getenv("LIDAR3D_CHUNK_BYTES");
    char *end;
    long long v = e && *e ? strtoll(e, &end, 10) : -1;
    return v >= 0 && *end == 0 ? (int64_t)v : L3D_CHUNK_BYTES;
}

/* The array's body: from just after its '[' to its ']' (0, or -1 when the
 * file does not look like one; yajl then says what it is). */
static int find_body(int fd, int64_t size, unsigned char *w, int64_t *from, int64_t *to)
{
    size_t n = size < WINDOW ? (size_t)size : WINDOW, i = 0;
    if (n == 0 || l3d_pread_all(fd, w, n, 0))
        return -1;
    while (i < n && is_ws(w[i]))
        i++;
    if (i == n || w[i] != '[')
        return -1;
    *from = (int64_t)i + 1;
    if (l3d_pread_all(fd, w, n, size - (int64_t)n))
        return -1;
    size_t k = n;
    while (k > 0 && is_ws(w[k - 1]))
        k--;
    if (k == 0 || w[k - 1] != ']')
        return -1;
    *to = size - (int64_t)n + (int64_t)k - 1;
    return *from <= *to ? 0 : -1;
}

/* The first '{' at or after `from` (and before `to`) that starts a line,
 * indentation aside; -1 if none within CUT_SEARCH bytes. */
static int64_t find_cut(int fd, int64_t from, int64_t to, unsigned char *w)
{
    int64_t pos = from;
    while (pos < to && pos - from < CUT_SEARCH) {
        size_t n = to - pos < WINDOW ? (size_t)(to - pos) : WINDOW, i;
        if (l3d_pread_all(fd, w, n, pos))
            return -1;
        for (i = 0; i < n; i++) {
            if (w[i] != '\n')
                continue;
            size_t j = i + 1;
            while (j < n && (w[j] == ' ' || w[j] == '\t'))
                j++;
            if (j == n && i > 0)
                break;   /* read on from this newline */
            if (j < n && w[j] == '{')
                return pos + (int64_t)j;
        }
        pos += i < n ? (int64_t)i : (int64_t)n;
    }
    return -1;
}

/* Chunk starts (cut[0] .. cut[*n - 1]) and the body's end (cut[*n]). */
static int plan_chunks(int fd, int64_t size, int64_t target, int64_t **cuts_out, int *n_out)
{
    unsigned char *w = malloc(WINDOW);
    int64_t from, to;
    if (!w || find_body(fd, size, w, &from, &to)) {
        free(w);
        return -1;
    }
    int64_t want = (to - from) / target + 1;
    int64_t *cut = want < 1 << 20 ? malloc((size_t)(want + 1) * sizeof *cut) : NULL;
    if (!cut) {
        free(w);
        return -1;
    }
    int n = 0;
    cut[n++] = from;
    for (int64_t i = 1; i < want; i++) {
        int64_t at = from + (to - from) * i / want;
        if (at <= cut[n - 1])
            continue;
        int64_t c = find_cut(fd, at, to, w);
        if (c > cut[n - 1])
            cut[n++] = c;
    }
    cut[n] = to;
    free(w);
    for (int i = 0; i < n; i++)
        if (cut[i + 1] - cut[i] > L3D_CHUNK_MAX) {
            free(cut);
            return -1;
        }
    *cuts_out = cut;
    *n_out = n;
    return 0;
}

/* ---- chunks, on every CPU ---------------------------------------------- */

enum { PENDING, PARSED, FAILED };

typedef struct job {
    int fd;
    const char *display;
    const int64_t *cut;
    int n;
    l3d_record_fn fn;
    const l3d_parts *parts;
    void *owner;
    void **part;             /* [n] */
    int *state;              /* [n], under mu */
    int64_t reported;        /* bytes told to on_read */
    int taken, ahead;        /* chunks taken; how many may wait to be (under mu) */
    atomic_int next, failed;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} job;

/* What a worker parses with. Kept from one table to the next (parser and
 * buffer are some MB each, whose pages would fault in again for each
 * table) until l3d_json_chunk_cache_free. */
typedef struct workspace { l3d_json_fast *fp; char *buf; size_t cap; } workspace;

static pthread_mutex_t spare_mu = PTHREAD_MUTEX_INITIALIZER;
static workspace spare[MAX_THREADS];
static int n_spare;

static workspace take_workspace(void)
{
    workspace w = {0};
    pthread_mutex_lock(&spare_mu);
    if (n_spare)
        w = spare[--n_spare];
    pthread_mutex_unlock(&spare_mu);
    if (!w.fp)
        w.fp = l3d_json_fast_new();
    return w;
}

static void free_workspace(workspace w)
{
    free(w.buf);
    l3d_json_fast_free(w.fp);
}

static void keep_workspace(workspace w)
{
    pthread_mutex_lock(&spare_mu);
    int kept = n_spare < MAX_THREADS;
    if (kept)
        spare[n_spare++] = w;
    pthread_mutex_unlock(&spare_mu);
    if (!kept)
        free_workspace(w);
}

void l3d_json_chunk_cache_free(void)
{
    pthread_mutex_lock(&spare_mu);
    while (n_spare)
        free_workspace(spare[--n_spare]);
    pthread_mutex_unlock(&spare_mu);
}

/* Chunk i as an array of its own, read into w->buf: "[" + its bytes, less the
 * comma after its last record, + "]" and the parser's padding. (Mapping the
 * file instead saved no time, and a file cut short while mapped would be a
 * SIGBUS rather than an error.) */
static int parse_chunk(job *j, workspace *w, int i)
{
    size_t n = (size_t)(j->cut[i + 1] - j->cut[i]);
    if (n + 2 + L3D_JSON_FAST_PADDING > w->cap) {
        size_t cap = n + 2 + L3D_JSON_FAST_PADDING;
        free(w->buf);
        if (!(w->buf = malloc(cap))) {
            w->cap = 0;
            return L3D_EINTERNAL;
        }
        w->cap = cap;
    }
    char *b = w->buf;
    b[0] = '[';
    if (l3d_pread_all(j->fd, b + 1, n, j->cut[i]))
        return L3D_EIO;
    size_t end = n + 1;
    if (i < j->n - 1) {
        size_t k = end;
        while (k > 1 && is_ws((unsigned char)b[k - 1]))
            k--;
        if (k <= 1 || b[k - 1] != ',')
            return L3D_EJSON;   /* not cut between two records */
        b[k - 1] = ' ';
    }
    b[end] = ']';
    memset(b + end + 1, 0, L3D_JSON_FAST_PADDING);
    if (!(j->part[i] = j->parts->open(j->owner)))
        return L3D_EINTERNAL;
    long n_records;
    l3d_err ignored;
    return l3d_json_fast_parse(w->fp, b, end + 1, j->display, j->fn, j->part[i], &n_records,
                               &ignored);
}

static void *worker(void *arg)
{
    job *j = arg;
    workspace w = take_workspace();
    for (;;) {
        int i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n)
            break;
        /* at most `ahead` chunks parsed and not yet taken: memory stays
         * bounded however slow the taking */
        pthread_mutex_lock(&j->mu);
        while (i >= j->taken + j->ahead && !atomic_load(&j->failed))
            pthread_cond_wait(&j->cv, &j->mu);
        pthread_mutex_unlock(&j->mu);
        /* after a failure the rest are only marked, so that none is left pending */
        int rc = atomic_load(&j->failed) || !w.fp ? L3D_EINTERNAL : parse_chunk(j, &w, i);
        if (rc)
            atomic_store(&j->failed, 1);
        pthread_mutex_lock(&j->mu);
        j->state[i] = rc ? FAILED : PARSED;
        pthread_cond_broadcast(&j->cv);
        pthread_mutex_unlock(&j->mu);
    }
    keep_workspace(w);
    return NULL;
}

static int n_cpus(void)
{
    cpu_set_t set;
    int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : n;
}

/* Parses the chunks on worker threads and takes the parts in order as they
 * come; 0 when every part was taken. */
static int run_chunks(job *j, l3d_read_fn on_read, void *read_ctx, l3d_err *err)
{
    int n_threads = j->n < n_cpus() ? j->n : n_cpus(), started = 0;
    pthread_t threads[MAX_THREADS];
    j->ahead = 2 * n_threads;
    for (int t = 0; t < n_threads; t++)
        started += pthread_create(&threads[started], NULL, worker, j) == 0;
    if (!started) {
        j->ahead = j->n;   /* all parsed here, then taken */
        worker(j);
    }
    int rc = L3D_OK;
    for (int i = 0; i < j->n && !rc; i++) {
        pthread_mutex_lock(&j->mu);
        while (j->state[i] == PENDING)
            pthread_cond_wait(&j->cv, &j->mu);
        int state = j->state[i];
        pthread_mutex_unlock(&j->mu);
        if (state != PARSED) {
            rc = L3D_EJSON;
            break;
        }
        if (on_read)
            on_read(read_ctx, (size_t)(j->cut[i + 1] - j->cut[i]));
        j->reported += j->cut[i + 1] - j->cut[i];
        rc = j->parts->take(j->owner, j->part[i], err);
        j->parts->drop(j->owner, j->part[i]);
        j->part[i] = NULL;
        pthread_mutex_lock(&j->mu);
        j->taken = i + 1;
        pthread_cond_broadcast(&j->cv);
        pthread_mutex_unlock(&j->mu);
    }
    if (rc) {
        atomic_store(&j->failed, 1);
        pthread_mutex_lock(&j->mu);
        pthread_cond_broadcast(&j->cv);
        pthread_mutex_unlock(&j->mu);
    }
    for (int t = 0; t < started; t++)
        pthread_join(threads[t], NULL);
    for (int i = 0; i < j->n; i++)
        if (j->part[i])
            j->parts->drop(j->owner, j->part[i]);
    return rc;
}

/* After a failed chunked read, the bytes read again are not told twice. */
typedef struct read_credit { l3d_read_fn fn; void *ctx; int64_t credit; } read_credit;

static void credited(void *vc, size_t n)
{
    read_credit *c = vc;
    size_t skip = c->credit < (int64_t)n ? (size_t)c->credit : n;
    c->credit -= (int64_t)skip;
    if (n > skip)
        c->fn(c->ctx, n - skip);
}

int l3d_json_parse_table(l3d_stream *s, const char *display, l3d_record_fn fn,
                         void *ctx, const l3d_parts *parts, void *owner, int *chunks,
                         l3d_read_fn on_read, void *read_ctx, l3d_err *err)
{
    *chunks = 0;
    const char *path = l3d_stream_path(s);
    int64_t target = chunk_target();
    int fd = path && target > 0 && fast_parser_runs_here() ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    struct stat st;
    int64_t *cut = NULL, reported = 0;
    int n = 0;
    if (fd >= 0 && fstat(fd, &st) == 0 && plan_chunks(fd, st.st_size, target, &cut, &n) == 0) {
        job j = {.fd = fd, .display = display, .cut = cut, .n = n, .fn = fn, .parts = parts,
                 .owner = owner};
        j.part = calloc((size_t)n, sizeof *j.part);
        j.state = calloc((size_t)n, sizeof *j.state);
        atomic_init(&j.next, 0);
        atomic_init(&j.failed, 0);
        pthread_mutex_init(&j.mu, NULL);
        pthread_cond_init(&j.cv, NULL);
        int rc = j.part && j.state ? run_chunks(&j, on_read, read_ctx, err) : L3D_EINTERNAL;
        pthread_cond_destroy(&j.cv);
        pthread_mutex_destroy(&j.mu);
        free(j.part);
        free(j.state);
        if (rc == L3D_OK) {
            *chunks = n;
            if (on_read)   /* the bytes around the array's body */
                on_read(read_ctx, (size_t)(st.st_size - j.reported));
        } else {
            parts->undo(owner);
            reported = j.reported;
        }
    }
    free(cut);
    if (fd >= 0)
        close(fd);
    if (*chunks)
        return L3D_OK;
    read_credit credit = {on_read, read_ctx, reported};
    return l3d_json_parse_stream(s, display, fn, ctx, on_read ? credited : NULL, &credit, err);
}
