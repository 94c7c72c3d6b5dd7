/* Thread count of the CPU kernels: see threads.h. */
#include "kernels/cpu/threads.h"

#include <cblas.h>

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
