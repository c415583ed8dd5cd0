/*
 * tensor.c: allocating, freeing and checking SnnrtTensor values.
 *
 * The finiteness check is separate from the readers because a NaN in a
 * file is legal data; it is the model that cannot use it, so the caller
 * decides where to check and what to call the tensor in the message.
 */
#include "snnrt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int snnrt_tensor_alloc(SnnrtTensor *t, int ndim, const long long *shape,
                       char *err, size_t errlen)
{
    size_t count = 1;
    int i;
    memset(t, 0, sizeof *t);
    if (ndim < 0 || ndim > SNNRT_MAX_DIMS || (ndim > 0 && !shape)) {
        if (errlen)
            snprintf(err, errlen, "tensor: %d dimensions (at most %d)",
                     ndim, SNNRT_MAX_DIMS);
        return -1;
    }
    for (i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && count > (size_t)-1 /
                                 sizeof(float) / (unsigned long long)shape[i])) {
            if (errlen)
                snprintf(err, errlen, "tensor: dimension %d (%lld) is "
                         "negative or too large", i, shape[i]);
            return -1;
        }
        count *= (size_t)shape[i];
    }
    t->data = (float *)calloc(count ? count : 1, sizeof(float));
    if (!t->data) {
        if (errlen)
            snprintf(err, errlen, "tensor: out of memory for %zu floats",
                     count);
        return -1;
    }
    t->ndim = ndim;
    for (i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->count = count;
    return 0;
}

int snnrt_tensor_validate(const SnnrtTensor *t, const char *what,
                          char *err, size_t errlen)
{
    size_t count = 1;
    int i;
    if (!what)
        what = "tensor";
    if (!t || t->ndim < 0 || t->ndim > SNNRT_MAX_DIMS) {
        if (errlen)
            snprintf(err, errlen, "%s: tensor is missing or has %d "
                     "dimensions (at most %d)", what, t ? t->ndim : 0,
                     SNNRT_MAX_DIMS);
        return -1;
    }
    for (i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0 || (t->shape[i] > 0 && count > (size_t)-1 /
                                    sizeof(float) / (unsigned long long)t->shape[i])) {
            if (errlen)
                snprintf(err, errlen, "%s: dimension %d (%lld) is negative "
                         "or too large", what, i, t->shape[i]);
            return -1;
        }
        count *= (size_t)t->shape[i];
    }
    if (count != t->count || (count && !t->data)) {
        if (errlen)
            snprintf(err, errlen, "%s: count %zu and data disagree with a "
                     "shape of %zu elements", what, t->count, count);
        return -1;
    }
    return 0;
}

void snnrt_tensor_free(SnnrtTensor *t)
{
    if (!t)
        return;
    free(t->data);
    memset(t, 0, sizeof *t);
}

/* "[1, 2]": the position of flat index k in t's shape. */
static void index_str(const SnnrtTensor *t, size_t k, char *buf, size_t n)
{
    long long pos[SNNRT_MAX_DIMS];
    size_t at = 0;
    int i;
    for (i = t->ndim - 1; i >= 0; i--) {
        long long d = t->shape[i] > 0 ? t->shape[i] : 1;
        pos[i] = (long long)(k % (size_t)d);
        k /= (size_t)d;
    }
    buf[at++] = '[';
    for (i = 0; i < t->ndim && at + 24 < n; i++)
        at += (size_t)snprintf(buf + at, n - at, i ? ", %lld" : "%lld",
                               pos[i]);
    snprintf(buf + at, n - at, "]");
}

int snnrt_tensor_check_finite(const SnnrtTensor *t, const char *what,
                              char *err, size_t errlen)
{
    size_t k;
    char where[256];
    for (k = 0; t && t->data && k < t->count; k++) {
        if (isfinite(t->data[k]))
            continue;
        index_str(t, k, where, sizeof where);
        if (errlen)
            snprintf(err, errlen, "%s: element %s (flat index %zu) is %s",
                     what ? what : "tensor", where, k,
                     isnan(t->data[k]) ? "NaN"
                     : t->data[k] > 0  ? "+Inf"
                                       : "-Inf");
        return -1;
    }
    return 0;
}
