/* Thread count of the CPU kernels: see threads.h. */
#include "kernels/cpu/threads.h"

#include <cblas.h>
#include <pthread.h>

/* OpenBLAS's own start-up choice (OPENBLAS_NUM_THREADS, GOTO_NUM_THREADS or
 * OMP_NUM_THREADS, else the cores), remembered before the first change so that
 * n <= 0 can return to it. */
static int initial_threads;

void l3d_set_threads(int n)
{
    if (initial_threads == 0)
        initial_threads = openblas_get_num_threads();
    openblas_set_num_threads(n >= 1 ? n : initial_threads);
}

int l3d_get_threads(void)
{
    return openblas_get_num_threads();
}

typedef struct range_job {
    l3d_range_fn fn;
    void *ctx;
    int64_t begin, end;
} range_job;

static void *run_range(void *arg)
{
    range_job *j = arg;
    j->fn(j->ctx, j->begin, j->end);
    return NULL;
}

void l3d_parallel_ranges(int64_t n, int64_t min_per_thread, l3d_range_fn fn, void *ctx)
{
    int t = l3d_get_threads();
    if (t > 16)
        t = 16;
    if (min_per_thread < 1)
        min_per_thread = 1;
    if (t > n / min_per_thread)
        t = (int)(n / min_per_thread);
    if (t <= 1) {
        fn(ctx, 0, n);
        return;
    }
    range_job jobs[16];
    pthread_t tid[16];
    int started[16] = {0};
    for (int i = 0; i < t; i++)
        jobs[i] = (range_job){fn, ctx, n * i / t, n * (i + 1) / t};
    for (int i = 1; i < t; i++)
        started[i] = pthread_create(&tid[i], NULL, run_range, &jobs[i]) == 0;
    run_range(&jobs[0]);
    for (int i = 1; i < t; i++) {
        if (started[i])
            pthread_join(tid[i], NULL);
        else
            run_range(&jobs[i]);   /* could not start a thread: do it here */
    }
}
