/*
 * rt_helper.c: a command-line face of the runtime library, for
 * numpy_reference.py, which makes files with NumPy (or by hand, for
 * safetensors), passes them through the library and checks what comes back.
 *
 *   rt_helper npy2npy IN OUT            read IN with snnrt, write OUT
 *   rt_helper st2st IN OUT              the same for safetensors, with
 *                                       its "__metadata__"
 *   rt_helper stload IN NAME OUT [D..]  load NAME of shape D.. with
 *                                       snnrt_st_load_tensors, write OUT.npy
 *   rt_helper fail npy|st IN            expect a read failure; print it
 *
 * Exit status 0 on success; 1 with the library's message on stderr.
 */
#include "snnrt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int npy2npy(const char *in, const char *out, char *err, size_t n)
{
    SnnrtTensor t;
    int rc = snnrt_npy_read(in, &t, err, n);
    if (rc == 0)
        rc = snnrt_npy_write(out, &t, err, n);
    snnrt_tensor_free(&t);
    return rc;
}

static int st2st(const char *in, const char *out, char *err, size_t n)
{
    SnnrtStFile f;
    const char **names;
    const SnnrtTensor **ts;
    int i, rc = snnrt_st_read(in, &f, err, n);
    if (rc)
        return rc;
    names = (const char **)calloc((size_t)f.n + 1, sizeof *names);
    ts = (const SnnrtTensor **)calloc((size_t)f.n + 1, sizeof *ts);
    /* reversed, so that the writer's sorting is exercised */
    for (i = 0; names && ts && i < f.n; i++) {
        names[i] = f.entries[f.n - 1 - i].name;
        ts[i] = &f.entries[f.n - 1 - i].t;
    }
    rc = names && ts ? snnrt_st_write_meta(out, f.n, names, ts, f.nmeta,
                                           (const char *const *)f.meta_keys,
                                           (const char *const *)f.meta_values,
                                           err, n)
                     : -1;
    free(names);
    free(ts);
    snnrt_st_free(&f);
    return rc;
}

static int stload(int argc, char **argv, char *err, size_t n)
{
    long long shape[SNNRT_MAX_DIMS];
    long lshape[SNNRT_MAX_DIMS];
    SnnrtTensor t;
    SnnrtStWant w;
    int i, rc, nd = argc - 5;
    if (nd < 0 || nd > SNNRT_MAX_DIMS) {
        snprintf(err, n, "stload: bad shape");
        return -1;
    }
    for (i = 0; i < nd; i++)
        lshape[i] = (long)(shape[i] = atoll(argv[5 + i]));
    if (snnrt_tensor_alloc(&t, nd, shape, err, n))
        return -1;
    w.name = argv[3];
    w.ndim = nd;
    w.shape = lshape;
    w.dst = t.data;
    rc = snnrt_st_load_tensors(argv[2], &w, 1, 0, NULL, err, n);
    if (rc == 0)
        rc = snnrt_npy_write(argv[4], &t, err, n);
    snnrt_tensor_free(&t);
    return rc;
}

static int expect_fail(const char *kind, const char *in, char *err, size_t n)
{
    int rc;
    if (!strcmp(kind, "npy")) {
        SnnrtTensor t;
        rc = snnrt_npy_read(in, &t, err, n);
        snnrt_tensor_free(&t);
    } else {
        SnnrtStFile f;
        rc = snnrt_st_read(in, &f, err, n);
        snnrt_st_free(&f);
    }
    if (rc == 0) {
        snprintf(err, n, "%s: read succeeded but should have failed", in);
        return -1;
    }
    printf("%s\n", err);
    return 0;
}

int main(int argc, char **argv)
{
    char err[1024] = "";
    int rc = -1;
    if (argc == 4 && !strcmp(argv[1], "npy2npy"))
        rc = npy2npy(argv[2], argv[3], err, sizeof err);
    else if (argc == 4 && !strcmp(argv[1], "st2st"))
        rc = st2st(argv[2], argv[3], err, sizeof err);
    else if (argc >= 5 && !strcmp(argv[1], "stload"))
        rc = stload(argc, argv, err, sizeof err);
    else if (argc == 4 && !strcmp(argv[1], "fail"))
        rc = expect_fail(argv[2], argv[3], err, sizeof err);
    else
        snprintf(err, sizeof err, "usage: see the top of rt_helper.c");
    if (rc) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    return 0;
}
