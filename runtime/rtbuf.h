/*
 * rtbuf.h: the growable byte buffer the runtime's writers build files in
 * (internal to the runtime). A failed growth sets `failed` and drops every
 * later write, so that a writer checks once, at the end. Also the other
 * way round: bytes in memory opened as a file, for the readers' *_mem
 * entry points.
 */
#ifndef SNNRT_RTBUF_H
#define SNNRT_RTBUF_H

#include <stddef.h>
#include <stdio.h>

typedef struct SnnrtBuf {
    char *data;
    size_t len, cap;
    int failed;
} SnnrtBuf;

void snnrt_buf_put(SnnrtBuf *b, const void *p, size_t n);

/* data[0..size) as a file open for reading (POSIX fmemopen, in file.c),
   which the caller closes; NULL on failure. The bytes are not copied. */
FILE *snnrt_mem_open(const void *data, size_t size);

#endif
