#include "formats/line_pool.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Enough slots that workers rarely wait for the caller and the reverse,
 * few enough that they stay small (a line is ~15 KB before its boxes). */
enum { N_SLOTS = 64, MAX_WORKERS = 8 };

typedef enum { FREE, QUEUED, BUSY, DONE } slot_state;

typedef struct slot {
    uint32_t job;
    l3d_index_line line;
    char *text;
    size_t len, cap;
    int rc;
    l3d_err err;
    slot_state state;
} slot;

/* Line number k (counted from 0 in submission order) uses slot k % N_SLOTS;
 * drained <= formatted <= submitted. */
struct l3d_line_pool {
    pthread_mutex_t mu;
    pthread_cond_t queued_cv, done_cv;
    slot slots[N_SLOTS];
    uint64_t submitted, claimed, drained;
    int stop;
    int caller_waits;   /* workers wake the caller only while it waits */
    int n_workers;
    pthread_t workers[MAX_WORKERS];
    l3d_line_build build;
    l3d_line_sink sink;
    void *ctx;
};

static void *work(void *arg)
{
    l3d_line_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->claimed == p->submitted && !p->stop)
            pthread_cond_wait(&p->queued_cv, &p->mu);
        if (p->claimed == p->submitted)
            break;
        slot *s = &p->slots[p->claimed++ % N_SLOTS];
        s->state = BUSY;
        pthread_mutex_unlock(&p->mu);
        s->len = 0;
        int rc = p->build(p->ctx, s->job, &s->line, &s->err);
        if (rc == L3D_OK)
            rc = l3d_index_line_append(&s->text, &s->len, &s->cap, &s->line, &s->err);
        pthread_mutex_lock(&p->mu);
        s->rc = rc;
        s->state = DONE;
        if (p->caller_waits)
            pthread_cond_signal(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void stop_workers(l3d_line_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->queued_cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_workers; i++)
        pthread_join(p->workers[i], NULL);
    p->n_workers = 0;
}

static void free_pool(l3d_line_pool *p)
{
    for (int i = 0; i < N_SLOTS; i++) {
        l3d_index_line_free(&p->slots[i].line);
        free(p->slots[i].text);
    }
    pthread_cond_destroy(&p->done_cv);
    pthread_cond_destroy(&p->queued_cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int l3d_line_pool_start(l3d_line_pool **out, int n_workers, l3d_line_build build,
                        l3d_line_sink sink, void *ctx, l3d_err *err)
{
    *out = NULL;
    if (n_workers <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_workers = n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : (int)n;
    }
    if (n_workers > MAX_WORKERS)
        n_workers = MAX_WORKERS;
    l3d_line_pool *p = calloc(1, sizeof *p);
    if (!p)
        return l3d_fail(err, L3D_EINTERNAL, "out of memory");
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->queued_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    for (int i = 0; i < N_SLOTS; i++)
        l3d_index_line_init(&p->slots[i].line);
    p->build = build;
    p->sink = sink;
    p->ctx = ctx;
    for (int i = 0; i < n_workers; i++) {
        if (pthread_create(&p->workers[i], NULL, work, p) != 0) {
            if (i > 0)
                break;   /* fewer workers will do */
            free_pool(p);
            return l3d_fail(err, L3D_EINTERNAL, "cannot start a formatting thread");
        }
        p->n_workers++;
    }
    *out = p;
    return L3D_OK;
}

/* Waits for the oldest submitted line and passes its text on. */
static int drain_one(l3d_line_pool *p, l3d_err *err)
{
    slot *s = &p->slots[p->drained % N_SLOTS];
    pthread_mutex_lock(&p->mu);
    while (s->state != DONE) {
        p->caller_waits = 1;
        pthread_cond_wait(&p->done_cv, &p->mu);
    }
    p->caller_waits = 0;
    pthread_mutex_unlock(&p->mu);
    if (s->rc) {
        *err = s->err;
        return s->rc;
    }
    int rc = p->sink(p->ctx, &s->line, s->text, s->len, err);
    if (rc)
        return rc;
    s->state = FREE;   /* no worker looks at a slot the queue has passed */
    p->drained++;
    return L3D_OK;
}

int l3d_line_pool_submit(l3d_line_pool *p, uint32_t job, l3d_err *err)
{
    if (p->submitted - p->drained == N_SLOTS) {
        int rc = drain_one(p, err);
        if (rc)
            return rc;
    }
    pthread_mutex_lock(&p->mu);
    slot *s = &p->slots[p->submitted % N_SLOTS];
    s->job = job;
    s->state = QUEUED;
    p->submitted++;
    pthread_cond_signal(&p->queued_cv);
    pthread_mutex_unlock(&p->mu);
    return L3D_OK;
}

int l3d_line_pool_finish(l3d_line_pool *p, int discard, l3d_err *err)
{
    int rc = L3D_OK;
    while (!discard && !rc && p->drained < p->submitted)
        rc = drain_one(p, err);
    stop_workers(p);
    free_pool(p);
    return rc;
}
