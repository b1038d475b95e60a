/* The one place where convx touches OpenMP.
 *
 * Every kernel includes this header instead of <omp.h>, so that a build without
 * OpenMP (no compiler support, or CONVX_NO_OPENMP=1) compiles the same sources
 * serially: the pragmas are ignored and these helpers report one thread.
 * Kernels receive their team size as an explicit `n_threads` argument (from
 * convx._kernels.threads) and never nest parallel regions.
 */
#ifndef CONVX_OMP_H
#define CONVX_OMP_H

#ifdef _OPENMP
#include <omp.h>
static inline int convx_thread_id(void) { return omp_get_thread_num(); }
static inline int convx_team_size(void) { return omp_get_num_threads(); }
static inline int convx_max_threads(void) { return omp_get_max_threads(); }
static inline void convx_set_max_threads(int n) { omp_set_num_threads(n); }
#define CONVX_HAVE_OPENMP 1
#else
static inline int convx_thread_id(void) { return 0; }
static inline int convx_team_size(void) { return 1; }
static inline int convx_max_threads(void) { return 1; }
static inline void convx_set_max_threads(int n) { (void)n; }
#define CONVX_HAVE_OPENMP 0
#endif

#endif
