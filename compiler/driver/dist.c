/*
 * dist.c: the ranks of a data-parallel `snnc train` over MPI, or a job of
 * one process where snnc is built without MPI (SNNC_MPI=OFF, or no MPI
 * found) or started without mpirun.
 *
 * The sum is deterministic by construction: rank 0 receives the ranks'
 * vectors one after the other, from rank 1 to rank N-1, adds each in that
 * order, and broadcasts the result. MPI_Allreduce would be faster on many
 * ranks, but the MPI standard lets it add in any order (Open MPI picks its
 * algorithm by message size and rank count), so its result could change
 * from one run or one N to the next. Rank 0 adds (N-1) x n values per
 * call, which for the few ranks of one machine costs less than the
 * backward pass that made them. Vectors go in pieces of DIST_CHUNK doubles
 * (MPI counts are ints, and rank 0 holds one piece from another rank at a
 * time).
 *
 * A rank that dies (killed, or crashed) ends the job: mpirun kills the
 * others and says which rank died and how (Open MPI's default error
 * handler, MPI_ERRORS_ARE_FATAL, which is kept).
 *
 * Not a thread's business: only the main thread of each rank calls MPI
 * (MPI_THREAD_FUNNELED); OpenMP threads inside a rank never do.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "dist.h"

/* The size of the job that mpirun (Open MPI's, or an MPICH-style one
   through PMI) says it started this process in; 0 when not started so. */
static long launched_size(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && atol(v) > 0)
            return atol(v);
    }
    return 0;
}

#ifdef SNNC_HAVE_MPI
#include <mpi.h>

#define DIST_CHUNK (1 << 20)

static int rank, size = 1, local, joined;

int dist_init(void) {
    /* without a launcher, a job of one without MPI at all: Open MPI's
       singleton start would spawn its daemon for nothing */
    if (!launched_size())
        return 0;
    int provided;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm node; /* the ranks on this machine */
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &local);
    MPI_Comm_free(&node);
    joined = 1;
    return 0;
}

void dist_finish(void) {
    if (joined)
        MPI_Finalize();
    joined = 0;
}

int dist_rank(void) {
    return rank;
}

int dist_size(void) {
    return size;
}

int dist_local_rank(void) {
    return local;
}

void dist_sum(double *v, size_t n) {
    if (size == 1)
        return;
    double *piece = rank == 0 && n ? malloc(sizeof(double) * (n < DIST_CHUNK ? n : DIST_CHUNK)) : NULL;
    if (rank == 0 && n && !piece) {
        fprintf(stderr, "snnc: error: out of memory for the sum over ranks\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (size_t at = 0; at < n; at += DIST_CHUNK) {
        int len = (int)(n - at < DIST_CHUNK ? n - at : DIST_CHUNK);
        if (rank == 0) {
            for (int r = 1; r < size; r++) {
                MPI_Recv(piece, len, MPI_DOUBLE, r, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                for (int i = 0; i < len; i++)
                    v[at + (size_t)i] += piece[i];
            }
        } else {
            MPI_Send(v + at, len, MPI_DOUBLE, 0, 0, MPI_COMM_WORLD);
        }
        MPI_Bcast(v + at, len, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    }
    free(piece);
}

void dist_bcast(void *p, size_t bytes) {
    for (size_t at = 0; size > 1 && at < bytes; at += DIST_CHUNK) {
        int len = (int)(bytes - at < DIST_CHUNK ? bytes - at : DIST_CHUNK);
        MPI_Bcast((char *)p + at, len, MPI_BYTE, 0, MPI_COMM_WORLD);
    }
}

int dist_all(int ok) {
    int all = ok != 0;
    if (size > 1)
        MPI_Allreduce(MPI_IN_PLACE, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    return all;
}

#else /* a job of one */

int dist_init(void) {
    /* every process says it: mpirun ends the job when the first exits,
       which may be before a chosen one has spoken */
    if (launched_size() > 1) {
        error_plain("mpirun started several snnc processes, but this snnc was built without MPI: each would "
                    "train alone; install Open MPI (Debian: libopenmpi-dev openmpi-bin) and rebuild with "
                    "cmake -DSNNC_MPI=ON (docs/training.md, \"Data-parallel training\")");
        return -1;
    }
    return 0;
}

void dist_finish(void) {}

int dist_rank(void) {
    return 0;
}

int dist_size(void) {
    return 1;
}

int dist_local_rank(void) {
    return 0;
}

void dist_sum(double *v, size_t n) {
    (void)v;
    (void)n;
}

void dist_bcast(void *p, size_t bytes) {
    (void)p;
    (void)bytes;
}

int dist_all(int ok) {
    return ok != 0;
}

#endif
