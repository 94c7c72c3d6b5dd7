#include "formats/line_pool.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Enough slots that workers rarely wait for the caller and the reverse,
 * few enough that they stay small (a line is ~15 KB before its boxes).
 * The caller frees DRAIN_AT_ONCE slots each time the ring is full, so it
 * sleeps once per that many lines while the workers go on with the rest
 * of the ring: waking it for every line or two cost ~20 000 context
 * switches on the full train tables. */
enum { N_SLOTS = 128, DRAIN_AT_ONCE = 64, MAX_WORKERS = 8, BATCH = 8 };
#define NOT_WAITING UINT64_MAX

typedef enum { FREE, QUEUED, BUSY, DONE } slot_state;

typedef struct slot {
    uint32_t job;
    l3d_index_line line;
    char *text;
    size_t len, cap;
    int rc;
    l3d_err err;
    int state;   /* slot_state; DONE is stored and read atomically, without the lock */
} slot;

/* Line number k (counted from 0 in submission order) uses slot k % N_SLOTS;
 * drained <= claimed <= submitted <= staged. The caller stages jobs and
 * hands them to the workers BATCH at a time (one lock, one wake-up). */
struct l3d_line_pool {
    pthread_mutex_t mu;
    pthread_cond_t queued_cv, done_cv;
    slot slots[N_SLOTS];
    uint64_t submitted, claimed, drained;   /* under mu (drained: the caller's) */
    uint64_t staged;                        /* the caller's */
    int stop;
    uint64_t awaited;   /* the line the caller waits for (NOT_WAITING): only its worker
                           wakes the caller */
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
        uint64_t seq = p->claimed++;
        slot *s = &p->slots[seq % N_SLOTS];
        __atomic_store_n(&s->state, BUSY, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&p->mu);
        s->len = 0;
        int rc = p->build(p->ctx, s->job, &s->line, &s->err);
        if (rc == L3D_OK)
            rc = l3d_index_line_append(&s->text, &s->len, &s->cap, &s->line, &s->err);
        s->rc = rc;
        /* done, then wake the caller if it waits for this line: it marks
         * that before it looks, so one of the two sees the other */
        __atomic_store_n(&s->state, DONE, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&p->awaited, __ATOMIC_SEQ_CST) == seq) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
        pthread_mutex_lock(&p->mu);
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
    p->awaited = NOT_WAITING;
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

/* Hands the staged jobs to the workers. */
static void publish(l3d_line_pool *p)
{
    if (p->staged == p->submitted)
        return;
    pthread_mutex_lock(&p->mu);
    p->submitted = p->staged;
    pthread_cond_broadcast(&p->queued_cv);
    pthread_mutex_unlock(&p->mu);
}

static int is_done(const slot *s) { return __atomic_load_n(&s->state, __ATOMIC_SEQ_CST) == DONE; }

/* Sleeps until line `seq` (submitted) is done. */
static void wait_done(l3d_line_pool *p, uint64_t seq)
{
    slot *s = &p->slots[seq % N_SLOTS];
    if (is_done(s))
        return;
    pthread_mutex_lock(&p->mu);
    __atomic_store_n(&p->awaited, seq, __ATOMIC_SEQ_CST);
    while (!is_done(s))
        pthread_cond_wait(&p->done_cv, &p->mu);
    __atomic_store_n(&p->awaited, NOT_WAITING, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&p->mu);
}

/* Passes the next `n` submitted lines to the sink, in order. It first waits
 * for the last of them: those before it were claimed earlier, so they are
 * most likely done by then, and the caller sleeps once, not once per line. */
static int drain(l3d_line_pool *p, uint64_t n, l3d_err *err)
{
    publish(p);
    if (n > p->submitted - p->drained)
        n = p->submitted - p->drained;
    if (n == 0)
        return L3D_OK;
    uint64_t end = p->drained + n;
    wait_done(p, end - 1);
    for (; p->drained < end; p->drained++) {
        slot *s = &p->slots[p->drained % N_SLOTS];
        wait_done(p, p->drained);
        if (s->rc) {
            *err = s->err;
            return s->rc;
        }
        int rc = p->sink(p->ctx, &s->line, s->text, s->len, err);
        if (rc)
            return rc;
        s->state = FREE;   /* no worker looks at a slot the queue has passed */
    }
    return L3D_OK;
}

int l3d_line_pool_submit(l3d_line_pool *p, uint32_t job, l3d_err *err)
{
    if (p->staged - p->drained == N_SLOTS) {
        int rc = drain(p, DRAIN_AT_ONCE, err);
        if (rc)
            return rc;
    }
    slot *s = &p->slots[p->staged % N_SLOTS];   /* no worker looks at it before publish */
    s->job = job;
    s->state = QUEUED;
    p->staged++;
    if (p->staged - p->submitted >= BATCH)
        publish(p);
    return L3D_OK;
}

int l3d_line_pool_finish(l3d_line_pool *p, int discard, l3d_err *err)
{
    int rc = L3D_OK;
    if (!discard)
        publish(p);
    if (!discard)
        rc = drain(p, p->submitted - p->drained, err);
    stop_workers(p);
    free_pool(p);
    return rc;
}
