/*
 * rtbuf.h: the growable byte buffer the runtime's writers build files in
 * (internal to the runtime). A failed growth sets `failed` and drops every
 * later write, so that a writer checks once, at the end.
 */
#ifndef SNNRT_RTBUF_H
#define SNNRT_RTBUF_H

#include <stddef.h>

typedef struct SnnrtBuf {
    char *data;
    size_t len, cap;
    int failed;
} SnnrtBuf;

void snnrt_buf_put(SnnrtBuf *b, const void *p, size_t n);

#endif
