/*
 * dist_nompi.c: dist.c as it is built without MPI (the one-process
 * fallback), whatever this build has: started as one of several processes
 * by mpirun (the launcher's variables set), dist_init refuses with a
 * message that says how to enable MPI; started alone, it is the one rank of
 * a job of one, and the collective calls leave their data as they are.
 *
 * Usage: dist_nompi (prints its checks; exit status 1 on a failure)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist.h"

static int failed, passed;

static void check(int ok, const char *what) {
    if (ok)
        passed++;
    else {
        failed++;
        printf("FAIL: %s\n", what);
    }
}

/* dist_init's result, and what it wrote on standard error into msg. */
static int init_said(char *msg, size_t cap) {
    FILE *t = tmpfile();
    fflush(stderr);
    int saved = dup(2);
    if (!t || saved < 0 || dup2(fileno(t), 2) < 0) {
        printf("FAIL: cannot capture standard error\n");
        exit(1);
    }
    int rc = dist_init();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(t);
    size_t n = fread(msg, 1, cap - 1, t);
    msg[n] = 0;
    fclose(t);
    fputs(msg, stdout);
    return rc;
}

int main(void) {
    char msg[2048];
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("PMI_SIZE");
    check(dist_init() == 0, "started alone: dist_init succeeds");
    check(dist_rank() == 0 && dist_size() == 1, "started alone: rank 0 of 1");
    check(dist_local_rank() == 0, "started alone: rank 0 on its machine");
    double v[3] = {1.5, -2.0, 1e300};
    dist_sum(v, 3);
    check(v[0] == 1.5 && v[1] == -2.0 && v[2] == 1e300, "the sum over one rank is the rank's vector");
    char b[4] = "abc";
    dist_bcast(b, sizeof b);
    check(!strcmp(b, "abc"), "a broadcast from rank 0 to itself changes nothing");
    check(dist_all(1) == 1 && dist_all(0) == 0 && dist_all(7) == 1, "dist_all of one rank is its own flag");
    dist_finish();
    setenv("OMPI_COMM_WORLD_SIZE", "1", 1);
    check(dist_init() == 0, "mpirun -np 1: one process, which a build without MPI runs");
    setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
    check(init_said(msg, sizeof msg) == -1, "mpirun -np 4 (Open MPI's variables): dist_init refuses");
    check(strstr(msg, "error: ") && strstr(msg, "built without MPI"), "the message says snnc was built without MPI");
    check(strstr(msg, "libopenmpi-dev") && strstr(msg, "-DSNNC_MPI=ON"), "the message says how to enable it");
    unsetenv("OMPI_COMM_WORLD_SIZE");
    setenv("PMI_SIZE", "2", 1);
    check(init_said(msg, sizeof msg) == -1, "an MPICH-style launcher of 2 (PMI_SIZE): dist_init refuses");
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
