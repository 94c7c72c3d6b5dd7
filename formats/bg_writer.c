#include "formats/bg_writer.h"

#include <fcntl.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct l3d_bg_writer {
    FILE *fp;
    const char *name;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *buf;           /* being written, or waiting to be (has_work) */
    size_t len, cap;
    int has_work, stop, failed, err_no;
    size_t since_sync;
};

static void *run(void *arg)
{
    l3d_bg_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->has_work && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->has_work)
            break;
        char *buf = w->buf;
        size_t len = w->len;
        int skip = w->failed;
        pthread_mutex_unlock(&w->mu);
        int bad = !skip && len && fwrite(buf, 1, len, w->fp) != len;
        int e = errno;
        /* Starts writing back every 32 MB: the final fsync of an atomic
         * output then waits for the last few MB, not for all 250 MB of a
         * Lyft index (0.15 s, with nothing else left to do). Advice only:
         * on a pipe it fails, harmlessly. */
        if (!bad && !skip) {
            w->since_sync += len;
            if (w->since_sync >= (32u << 20) && fflush(w->fp) == 0) {
                sync_file_range(fileno(w->fp), 0, 0, SYNC_FILE_RANGE_WRITE);
                w->since_sync = 0;
            }
        }
        pthread_mutex_lock(&w->mu);
        if (bad) {
            w->failed = 1;
            w->err_no = e;
        }
        w->has_work = 0;
        w->len = 0;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int l3d_bg_writer_start(l3d_bg_writer **out, FILE *fp, const char *name, l3d_err *err)
{
    *out = NULL;
    l3d_bg_writer *w = calloc(1, sizeof *w);
    if (!w)
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    w->fp = fp;
    w->name = name;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    int rc = pthread_create(&w->thread, NULL, run, w);
    if (rc) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return l3d_fail(err, L3D_EINTERNAL, "cannot start a writer thread: %s", strerror(rc));
    }
    *out = w;
    return L3D_OK;
}

static int write_error(const l3d_bg_writer *w, l3d_err *err)
{
    return l3d_fail(err, L3D_EIO, "cannot write to %s: %s (disk full?)", w->name,
                    strerror(w->err_no));
}

int l3d_bg_writer_put(l3d_bg_writer *w, char **buf, size_t *len, size_t *cap, l3d_err *err)
{
    pthread_mutex_lock(&w->mu);
    while (w->has_work)
        pthread_cond_wait(&w->cv, &w->mu);
    if (w->failed) {
        pthread_mutex_unlock(&w->mu);
        return write_error(w, err);
    }
    /* swap: the thread's spent buffer comes back to be filled */
    char *spare = w->buf;
    size_t spare_cap = w->cap;
    w->buf = *buf;
    w->len = *len;
    w->cap = *cap;
    w->has_work = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    *buf = spare;
    *cap = spare_cap;
    *len = 0;
    return L3D_OK;
}

int l3d_bg_writer_finish(l3d_bg_writer *w, int abandon, l3d_err *err)
{
    pthread_mutex_lock(&w->mu);
    if (abandon)
        w->failed = 1;   /* the thread skips what is queued */
    w->stop = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    int rc = !abandon && w->failed ? write_error(w, err) : L3D_OK;
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->buf);
    free(w);
    return rc;
}
