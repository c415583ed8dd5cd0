/*
 * dist.h: the ranks of a data-parallel `snnc train` (dist.c).
 *
 * Started by mpirun, snnc train runs as N processes (ranks) that train one
 * model together; started alone, or built without MPI, it is the one rank
 * of a job of size 1 and every call here is a no-op. These calls are the
 * only MPI that snnc makes, so that train.c reads the same either way.
 * Every call that takes part in a collective operation must be made by
 * every rank, in the same order.
 */
#ifndef SNNC_DIST_H
#define SNNC_DIST_H

#include <stddef.h>

/* Joins the job that mpirun started, or makes a job of one; -1 after
   reporting when mpirun started several processes but snnc was built
   without MPI. */
int dist_init(void);
/* Leaves the job (MPI_Finalize); every rank calls it once. */
void dist_finish(void);
int dist_rank(void);
int dist_size(void);
/* The rank among the processes of the job on this machine (0 alone): which
   GPU a process takes. */
int dist_local_rank(void);
/* Makes v[0..n) on every rank the sum over the ranks of their v, added in
   rank order, ((v_0 + v_1) + v_2) + ..., whatever the timing: the same
   bits on every rank and in every run. */
void dist_sum(double *v, size_t n);
/* Copies rank 0's p[0..bytes) to every rank. */
void dist_bcast(void *p, size_t bytes);
/* 1 when ok is nonzero on every rank, else 0, on every rank: a rank that
   failed and reported it lets the others stop too instead of waiting. */
int dist_all(int ok);

#endif
