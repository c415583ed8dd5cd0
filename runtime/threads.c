/*
 * threads.c: the number of threads the training support (losses,
 * optimizers, gradient clipping) runs on, so that callers need not include
 * omp.h or know whether the library was built with OpenMP.
 *
 * The count is OpenMP's own (nthreads-var): OMP_NUM_THREADS or the number
 * of cores unless set here. Without OpenMP everything runs on the calling
 * thread and both functions return 1. The results of every function of the
 * library are the same bits for any thread count.
 */
#include "snnrt.h"

#ifdef _OPENMP
#include <omp.h>
#endif

int snnrt_threads_set(int n)
{
#ifdef _OPENMP
    if (n > 0)
        omp_set_num_threads(n);
    return omp_get_max_threads();
#else
    (void)n;
    return 1;
#endif
}

int snnrt_threads_max(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
