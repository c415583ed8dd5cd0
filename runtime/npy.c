/*
 * npy.c: reading and writing NumPy .npy files.
 *
 * A .npy file is the magic "\x93NUMPY", a major and minor version byte, the
 * header length (2 bytes little-endian in version 1.0, 4 bytes in 2.0 and
 * 3.0), a header that is a Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * padded with spaces and a newline, then the array's bytes. The reader
 * parses exactly that dict (three keys, each once) with a small parser of
 * its own rather than anything that evaluates Python, bounds the header by
 * 1 MiB and the real file size, and insists that the data fill the rest of
 * the file exactly, so a lying header is caught before anything is
 * allocated from it. Element bytes are decoded as little-endian explicitly,
 * so the host's byte order does not matter; every supported element type is
 * converted to float32 (the list is in snnrt.h). The table reader (event
 * lists, runtime/events.c) reads integer arrays and one-dimensional
 * structured arrays of integer fields exactly, as 64-bit integers, whole
 * or row by row; only it accepts a structured descr (a list of fields).
 */
#include "snnrt.h"
#include "rtbuf.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPY_MAX_HEADER (1024u * 1024u)
#define NPY_MAX_DIM (1ull << 40)
#define NPY_FLT_MAX 3.40282346638528859812e+38

typedef enum NpyKind {
    NPY_FLOAT, /* IEEE binary32 or binary64 */
    NPY_INT,   /* two's complement */
    NPY_UINT,  /* unsigned */
    NPY_BOOL   /* one byte, nonzero is true */
} NpyKind;

typedef struct NpyType {
    const char *code; /* descr without its byte order mark */
    const char *name; /* the NumPy name, for messages */
    unsigned size;
    NpyKind kind;
} NpyType;

static const NpyType npy_types[] = {
    {"f4", "float32", 4, NPY_FLOAT}, {"f8", "float64", 8, NPY_FLOAT},
    {"i1", "int8", 1, NPY_INT},      {"i2", "int16", 2, NPY_INT},
    {"i4", "int32", 4, NPY_INT},     {"i8", "int64", 8, NPY_INT},
    {"u1", "uint8", 1, NPY_UINT},    {"u2", "uint16", 2, NPY_UINT},
    {"u4", "uint32", 4, NPY_UINT},   {"u8", "uint64", 8, NPY_UINT},
    {"b1", "bool", 1, NPY_BOOL},
};

/* The header being parsed and what it said so far. */
typedef struct NpyHeader {
    const char *path;
    char *err;
    size_t errlen;
    const char *text;
    size_t len, pos;
    const NpyType *type;
    int fortran;
    int ndim;
    long long shape[SNNRT_MAX_DIMS];
    int seen; /* bit 0 descr, bit 1 fortran_order, bit 2 shape */
    /* a structured dtype (allowed by the table reader only): its fields,
       packed in order; type is then NULL and itemsize their total */
    int allow_struct, nfields;
    char fname[SNNRT_TABLE_MAX_COLS][SNNRT_TABLE_NAME];
    const NpyType *ftype[SNNRT_TABLE_MAX_COLS];
    unsigned itemsize;
} NpyHeader;

static int npy_fail(char *err, size_t errlen, const char *path,
                    const char *what)
{
    if (errlen)
        snprintf(err, errlen, "%s: %s", path, what);
    return -1;
}

static int hdr_fail(NpyHeader *h, const char *what)
{
    return npy_fail(h->err, h->errlen, h->path, what);
}

/* ---- the header dict ---- */

static void hdr_ws(NpyHeader *h)
{
    while (h->pos < h->len &&
           (h->text[h->pos] == ' ' || h->text[h->pos] == '\t' ||
            h->text[h->pos] == '\n' || h->text[h->pos] == '\r'))
        h->pos++;
}

/* The next character after white space, or 0 at the end. */
static char hdr_peek(NpyHeader *h)
{
    hdr_ws(h);
    return h->pos < h->len ? h->text[h->pos] : '\0';
}

/* The error of a header that does not have what comes next: -1. */
static int hdr_expected(NpyHeader *h, const char *what)
{
    char m[200];
    if (!hdr_peek(h))
        snprintf(m, sizeof m, "unexpected end of header, expected %s", what);
    else
        snprintf(m, sizeof m, "malformed header at byte %zu: expected %s",
                 h->pos, what);
    return hdr_fail(h, m);
}

static int hdr_expect(NpyHeader *h, char c, const char *what)
{
    if (hdr_peek(h) != c)
        return hdr_expected(h, what);
    h->pos++;
    return 0;
}

/* A quoted Python string without escapes into out (size bytes). */
static int hdr_string(NpyHeader *h, char *out, size_t size)
{
    char q = hdr_peek(h);
    size_t n = 0;
    if (q != '\'' && q != '"')
        return hdr_expected(h, "a quoted string");
    for (h->pos++; h->pos < h->len && h->text[h->pos] != q; h->pos++) {
        char c = h->text[h->pos];
        if (c == '\\' || c == '\n' || c == '\0')
            return hdr_fail(h, "unsupported character in a header string");
        if (n + 1 >= size)
            return hdr_fail(h, "string too long in the header");
        out[n++] = c;
    }
    if (h->pos >= h->len)
        return hdr_fail(h, "unterminated string in the header");
    h->pos++;
    out[n] = '\0';
    return 0;
}

static int hdr_word(NpyHeader *h, const char *w)
{
    size_t n = strlen(w);
    if (hdr_peek(h) && h->len - h->pos >= n &&
        !memcmp(h->text + h->pos, w, n)) {
        h->pos += n;
        return 1;
    }
    return 0;
}

static int parse_fields(NpyHeader *h);

/* A type string such as '<f4' into *out. */
static int parse_type(NpyHeader *h, const NpyType **out)
{
    char d[64], m[300];
    size_t i;
    if (hdr_string(h, d, sizeof d))
        return -1;
    if (d[0] && strchr("<>|=", d[0]) && (d[1] == 'O' || d[1] == 'V')) {
        snprintf(m, sizeof m, "object and void arrays (descr '%s') cannot be loaded", d);
        return hdr_fail(h, m);
    }
    for (i = 0; d[0] && strchr("<>|=", d[0]) &&
                i < sizeof npy_types / sizeof npy_types[0]; i++) {
        const NpyType *t = &npy_types[i];
        if (strcmp(d + 1, t->code))
            continue;
        if (t->size > 1 && d[0] == '>') {
            snprintf(m, sizeof m, "big-endian data (descr '%s') is not supported; convert it with arr.astype('<%s')", d, t->code);
            return hdr_fail(h, m);
        }
        if (t->size > 1 && d[0] == '|') {
            snprintf(m, sizeof m, "descr '%s' gives no byte order for a %u-byte type", d, t->size);
            return hdr_fail(h, m);
        }
        *out = t;
        return 0;
    }
    snprintf(m, sizeof m, "unsupported dtype '%s' (supported: <f4 <f8 |i1 <i2 <i4 <i8 |u1 <u2 <u4 <u8 |b1)", d);
    return hdr_fail(h, m);
}

static int parse_descr(NpyHeader *h)
{
    if (hdr_peek(h) == '[') {
        if (!h->allow_struct)
            return hdr_fail(h, "structured dtypes (descr is a list) are not supported");
        return parse_fields(h);
    }
    if (parse_type(h, &h->type))
        return -1;
    h->itemsize = h->type->size;
    return 0;
}

/* A structured dtype: [('x', '<i8'), ('y', '<i8'), ...], each field once,
   none with a shape of its own (NumPy writes packed records this way). */
static int parse_fields(NpyHeader *h)
{
    char m[200];
    int i;
    h->pos++; /* '[' */
    while (hdr_peek(h) != ']') {
        if (h->nfields == SNNRT_TABLE_MAX_COLS) {
            snprintf(m, sizeof m, "more than %d fields in the structured dtype", SNNRT_TABLE_MAX_COLS);
            return hdr_fail(h, m);
        }
        if (hdr_expect(h, '(', "'(' of a field") ||
            hdr_string(h, h->fname[h->nfields], SNNRT_TABLE_NAME) ||
            hdr_expect(h, ',', "',' after a field's name") ||
            parse_type(h, &h->ftype[h->nfields]))
            return -1;
        if (hdr_peek(h) == ',')
            h->pos++;
        if (hdr_peek(h) != ')')
            return hdr_fail(h, "fields with a shape of their own are not supported");
        h->pos++;
        for (i = 0; i < h->nfields; i++)
            if (!strcmp(h->fname[i], h->fname[h->nfields])) {
                snprintf(m, sizeof m, "field '%s' appears twice in the dtype", h->fname[i]);
                return hdr_fail(h, m);
            }
        h->itemsize += h->ftype[h->nfields]->size;
        h->nfields++;
        if (hdr_peek(h) != ']' && hdr_expect(h, ',', "',' or ']' in the field list"))
            return -1;
    }
    h->pos++;
    if (!h->nfields)
        return hdr_fail(h, "the structured dtype has no fields");
    return 0;
}

static int parse_fortran(NpyHeader *h)
{
    if (hdr_word(h, "True"))
        h->fortran = 1;
    else if (hdr_word(h, "False"))
        h->fortran = 0;
    else
        return hdr_fail(h, "fortran_order must be True or False");
    return 0;
}

/* One dimension: a non-negative integer of at most 2^40, perhaps with
   the 'L' suffix that Python 2 wrote. */
static int parse_dim(NpyHeader *h, long long *out)
{
    unsigned long long v = 0;
    size_t start = h->pos;
    char m[200];
    if (h->text[h->pos] == '-')
        return hdr_fail(h, "negative dimension in shape");
    if (h->text[h->pos] < '0' || h->text[h->pos] > '9')
        return hdr_fail(h, "shape must be a tuple of integers");
    while (h->pos < h->len && h->text[h->pos] >= '0' &&
           h->text[h->pos] <= '9') {
        if (v <= NPY_MAX_DIM)
            v = v * 10 + (unsigned long long)(h->text[h->pos] - '0');
        h->pos++;
    }
    if (v > NPY_MAX_DIM) {
        snprintf(m, sizeof m, "dimension %.*s is too large (the limit is 2^40)",
                 (int)(h->pos - start > 40 ? 40 : h->pos - start),
                 h->text + start);
        return hdr_fail(h, m);
    }
    if (h->pos < h->len && h->text[h->pos] == 'L')
        h->pos++;
    if (h->pos < h->len && strchr(".eEjx", h->text[h->pos]))
        return hdr_fail(h, "shape must be a tuple of integers");
    *out = (long long)v;
    return 0;
}

/* "()", "(3,)", "(3, 4)", "(3, 4,)"; "(3)" is taken as (3,). */
static int parse_shape(NpyHeader *h)
{
    char m[100];
    h->ndim = 0;
    if (hdr_peek(h) != '(')
        return hdr_fail(h, "shape must be a tuple of integers");
    h->pos++;
    while (hdr_peek(h) != ')') {
        if (!hdr_peek(h))
            return hdr_expect(h, ')', "')'");
        if (h->ndim == SNNRT_MAX_DIMS) {
            snprintf(m, sizeof m, "more than %d dimensions", SNNRT_MAX_DIMS);
            return hdr_fail(h, m);
        }
        if (parse_dim(h, &h->shape[h->ndim]))
            return -1;
        h->ndim++;
        if (hdr_peek(h) != ')' && hdr_expect(h, ',', "',' or ')' in shape"))
            return -1;
    }
    h->pos++;
    return 0;
}

/* One "key: value" pair of the dict. */
static int parse_item(NpyHeader *h)
{
    static const char *const keys[3] = {"descr", "fortran_order", "shape"};
    char key[64], m[200];
    int k;
    if (hdr_string(h, key, sizeof key) || hdr_expect(h, ':', "':'"))
        return -1;
    for (k = 0; k < 3 && strcmp(key, keys[k]); k++)
        ;
    if (k == 3 || (h->seen & (1 << k))) {
        snprintf(m, sizeof m, "%s key '%s' in the header",
                 k == 3 ? "unknown" : "duplicate", key);
        return hdr_fail(h, m);
    }
    h->seen |= (1 << k);
    if (k == 0)
        return parse_descr(h);
    if (k == 1)
        return parse_fortran(h);
    return parse_shape(h);
}

static int parse_header(NpyHeader *h)
{
    static const char *const keys[3] = {"descr", "fortran_order", "shape"};
    char m[100];
    int k;
    if (hdr_expect(h, '{', "'{'"))
        return -1;
    while (hdr_peek(h) != '}') {
        if (parse_item(h))
            return -1;
        if (hdr_peek(h) != '}' && hdr_expect(h, ',', "',' or '}'"))
            return -1;
    }
    h->pos++;
    if (hdr_peek(h))
        return hdr_fail(h, "unexpected text after the header dict");
    for (k = 0; k < 3; k++) {
        if (!(h->seen & (1 << k))) {
            snprintf(m, sizeof m, "header has no '%s'", keys[k]);
            return hdr_fail(h, m);
        }
    }
    if (h->fortran && h->ndim > 1)
        return hdr_fail(h, "fortran_order True is not supported; save a C-order array (np.ascontiguousarray)");
    return 0;
}

/* ---- the file ---- */

/* "3x4"; "scalar" for no dimensions. */
static void shape_str(const long long *shape, int ndim, char *buf,
                      size_t size)
{
    size_t at = 0;
    int i;
    snprintf(buf, size, "scalar");
    for (i = 0; i < ndim && at + 24 < size; i++)
        at += (size_t)snprintf(buf + at, size - at, i ? "x%lld" : "%lld",
                               shape[i]);
}

/* Reads the fixed prefix; sets the header's offset and length. */
static int read_prefix(FILE *fp, unsigned long long size, const char *path,
                       size_t *hoff, size_t *hlen, char *err, size_t errlen)
{
    unsigned char b[12];
    char m[200];
    if (size < 10 || fread(b, 1, 10, fp) != 10)
        return npy_fail(err, errlen, path, "too short for a .npy file");
    if (memcmp(b, "\x93NUMPY", 6) != 0)
        return npy_fail(err, errlen, path, "not a .npy file (bad magic)");
    if (b[6] < 1 || b[6] > 3 || b[7] != 0) {
        snprintf(m, sizeof m, "unsupported .npy version %u.%u", b[6], b[7]);
        return npy_fail(err, errlen, path, m);
    }
    *hoff = b[6] == 1 ? 10 : 12;
    if (b[6] > 1 && (size < 12 || fread(b + 10, 1, 2, fp) != 2))
        return npy_fail(err, errlen, path, "too short for a .npy file");
    *hlen = b[8] | (size_t)b[9] << 8;
    if (b[6] > 1)
        *hlen |= (size_t)b[10] << 16 | (size_t)b[11] << 24;
    if (*hlen > NPY_MAX_HEADER) {
        snprintf(m, sizeof m, "header length %zu exceeds the 1 MiB limit", *hlen);
        return npy_fail(err, errlen, path, m);
    }
    if (*hoff + *hlen > size) {
        snprintf(m, sizeof m, "truncated: header length is %zu but only %llu bytes follow",
                 *hlen, size - *hoff);
        return npy_fail(err, errlen, path, m);
    }
    return 0;
}

/* count = product of shape, checked so that count * size fits. */
static int count_elements(NpyHeader *h, unsigned long long *count)
{
    char m[300], sh[200];
    int i, zero = 0;
    *count = 1;
    for (i = 0; i < h->ndim; i++)
        zero |= h->shape[i] == 0;
    for (i = 0; i < h->ndim && !zero; i++) {
        unsigned long long d = (unsigned long long)h->shape[i];
        if (*count > ULLONG_MAX / h->itemsize / d ||
            *count * d > (unsigned long long)((size_t)-1 / sizeof(float))) {
            shape_str(h->shape, h->ndim, sh, sizeof sh);
            snprintf(m, sizeof m, "shape %s overflows the element count", sh);
            return hdr_fail(h, m);
        }
        *count *= d;
    }
    if (zero)
        *count = 0;
    return 0;
}

/* The data must fill the rest of the file exactly. */
static int check_data_size(NpyHeader *h, unsigned long long count,
                           unsigned long long avail)
{
    unsigned long long need = count * h->itemsize;
    const char *tn = h->type ? h->type->name : "record";
    char m[400], sh[200];
    if (need == avail)
        return 0;
    shape_str(h->shape, h->ndim, sh, sizeof sh);
    if (avail < need)
        snprintf(m, sizeof m, "truncated: header says %s %s (%llu bytes) but only %llu bytes of data follow",
                 sh, tn, need, avail);
    else
        snprintf(m, sizeof m, "%llu bytes of trailing data after the %s %s array (%llu bytes)",
                 avail - need, sh, tn, need);
    return hdr_fail(h, m);
}

static float npy_double(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof d);
    /* beyond the float range the cast is undefined; IEEE would round to
       an infinity, and so do we */
    if (d > NPY_FLT_MAX)
        return (float)INFINITY;
    if (d < -NPY_FLT_MAX)
        return -(float)INFINITY;
    return (float)d;
}

/* One little-endian element of type t at s, as float. */
static float npy_element(const unsigned char *s, const NpyType *t)
{
    uint64_t v = 0;
    uint32_t u;
    float f;
    int j;
    for (j = (int)t->size - 1; j >= 0; j--)
        v = v << 8 | s[j];
    switch (t->kind) {
    case NPY_FLOAT:
        if (t->size == 8)
            return npy_double(v);
        u = (uint32_t)v;
        memcpy(&f, &u, sizeof f);
        return f;
    case NPY_INT:
        if (t->size < 8 && (v >> (8 * t->size - 1)))
            return (float)((long long)v - (1ll << (8 * t->size)));
        return (float)(int64_t)v;
    case NPY_UINT:
        return (float)v;
    default:
        return v ? 1.0f : 0.0f;
    }
}

static int read_data(FILE *fp, NpyHeader *h, float *dst,
                     unsigned long long count)
{
    unsigned char buf[4096]; /* a multiple of every element size */
    size_t per = sizeof buf / h->type->size;
    while (count > 0) {
        size_t k = count < per ? (size_t)count : per, i;
        if (fread(buf, h->type->size, k, fp) != k)
            return hdr_fail(h, "unexpected end of file in the data (did the file change?)");
        for (i = 0; i < k; i++)
            dst[i] = npy_element(buf + i * h->type->size, h->type);
        dst += k;
        count -= k;
    }
    return 0;
}

/* Everything after opening up to the data: prefix, header, sizes. The
   header's text is freed before returning; h keeps what it said. */
static int npy_open_header(FILE *fp, const char *path, int allow_struct,
                           NpyHeader *h, unsigned long long *count,
                           char *err, size_t errlen)
{
    unsigned long long size;
    size_t hoff, hlen;
    char *text;
    long end;
    int rc;
    if (fseek(fp, 0, SEEK_END) != 0 || (end = ftell(fp)) < 0 ||
        fseek(fp, 0, SEEK_SET) != 0)
        return npy_fail(err, errlen, path, "cannot determine the file size (not a regular file?)");
    size = (unsigned long long)end;
    if (read_prefix(fp, size, path, &hoff, &hlen, err, errlen))
        return -1;
    text = (char *)malloc(hlen + 1);
    if (!text)
        return npy_fail(err, errlen, path, "out of memory for the header");
    memset(h, 0, sizeof *h);
    h->path = path;
    h->err = err;
    h->errlen = errlen;
    h->text = text;
    h->len = hlen;
    h->allow_struct = allow_struct;
    rc = fread(text, 1, hlen, fp) == hlen ? 0 : hdr_fail(h, "read error in the header");
    text[hlen] = '\0';
    if (rc == 0)
        rc = parse_header(h);
    free(text);
    h->text = NULL;
    if (rc || count_elements(h, count) ||
        check_data_size(h, *count, size - hoff - hlen))
        return -1;
    return 0;
}

/* Everything after opening: prefix, header, sizes, data; of the data only
   the first `rows` entries of the first dimension when rows >= 0 and the
   file holds more (*file_rows, when not NULL, gets the header's count). */
static int npy_read_open(FILE *fp, const char *path, long long rows, SnnrtTensor *out,
                         long long *file_rows, char *err, size_t errlen)
{
    NpyHeader h;
    unsigned long long count;
    int i;
    if (npy_open_header(fp, path, 0, &h, &count, err, errlen))
        return -1;
    if (file_rows)
        *file_rows = h.ndim ? h.shape[0] : 1;
    if (rows >= 0 && h.ndim >= 1 && rows < h.shape[0]) {
        /* count / shape[0] is exact; a file of no elements keeps count 0 */
        count = count / (unsigned long long)h.shape[0] * (unsigned long long)rows;
        h.shape[0] = rows;
    }
    out->data = (float *)malloc(count ? (size_t)count * sizeof(float) : sizeof(float));
    if (!out->data)
        return hdr_fail(&h, "out of memory for the data");
    out->ndim = h.ndim;
    for (i = 0; i < h.ndim; i++)
        out->shape[i] = h.shape[i];
    out->count = (size_t)count;
    return read_data(fp, &h, out->data, count);
}

/* ---- integer tables ---- */

/* One little-endian integer or bool of type t at s into *out; -1 when it
   does not fit a signed 64-bit integer. */
static int npy_integer(const unsigned char *s, const NpyType *t, long long *out)
{
    uint64_t v = 0;
    int j;
    for (j = (int)t->size - 1; j >= 0; j--)
        v = v << 8 | s[j];
    if (t->kind == NPY_BOOL) {
        *out = v != 0;
        return 0;
    }
    if (t->kind == NPY_INT) {
        if (t->size < 8 && (v >> (8 * t->size - 1)))
            *out = (long long)v - (1ll << (8 * t->size));
        else if (t->size == 8 && (v >> 63))
            *out = -(long long)(~v) - 1; /* two's complement, without overflow */
        else
            *out = (long long)v;
        return 0;
    }
    if (v > (uint64_t)LLONG_MAX)
        return -1;
    *out = (long long)v;
    return 0;
}

/* The table's header, then its rows one at a time through scan, so that
   a reader keeps only what it converts them to. */
static int table_scan_open(FILE *fp, const char *path, const SnnrtTableScan *scan,
                           char *err, size_t errlen)
{
    NpyHeader h;
    SnnrtTable shape;
    unsigned long long count, rows, cols, r;
    unsigned char buf[8];
    long long vals[SNNRT_TABLE_MAX_COLS];
    char m[400];
    int c;
    if (npy_open_header(fp, path, 1, &h, &count, err, errlen))
        return -1;
    memset(&shape, 0, sizeof shape);
    if (h.nfields) {
        if (h.ndim != 1)
            return hdr_fail(&h, "a structured array must have one dimension");
        cols = (unsigned long long)h.nfields;
        for (c = 0; c < h.nfields; c++)
            memcpy(shape.names[c], h.fname[c], SNNRT_TABLE_NAME);
    } else {
        h.nfields = 1;
        h.ftype[0] = h.type;
        if (h.ndim == 1)
            cols = 1;
        else if (h.ndim == 2 && h.shape[1] >= 1 && h.shape[1] <= SNNRT_TABLE_MAX_COLS)
            cols = (unsigned long long)h.shape[1];
        else {
            char sh[64];
            shape_str(h.shape, h.ndim, sh, sizeof sh);
            snprintf(m, sizeof m, "expected a table of integers: [N], [N, C] with C from 1 to %d, or a "
                     "structured array of integer fields; got %d dimensions (%s)", SNNRT_TABLE_MAX_COLS,
                     h.ndim, sh);
            return hdr_fail(&h, m);
        }
    }
    for (c = 0; c < h.nfields; c++)
        if (h.ftype[c]->kind == NPY_FLOAT) {
            if (h.fname[c][0])
                snprintf(m, sizeof m, "field '%s' is %s; it must be an integer type", h.fname[c], h.ftype[c]->name);
            else
                snprintf(m, sizeof m, "the data are %s; they must be an integer type", h.ftype[c]->name);
            return hdr_fail(&h, m);
        }
    rows = count ? (unsigned long long)h.shape[0] : 0;
    if (rows > (unsigned long long)((size_t)-1 / sizeof(long long)) / cols)
        return hdr_fail(&h, "the table is too large for this machine");
    shape.rows = (long long)rows;
    shape.cols = (int)cols;
    if (scan->begin && (c = scan->begin(scan->ctx, &shape, err, errlen)) != 0)
        return c == SNNRT_SCAN_STOP ? 0 : -1;
    for (r = 0; r < rows; r++) {
        /* one row: the record, or the C integers of a plain row */
        unsigned k;
        for (k = 0; k < cols; k++) {
            const NpyType *t = h.type ? h.type : h.ftype[k];
            if (fread(buf, t->size, 1, fp) != 1)
                return hdr_fail(&h, "unexpected end of file in the data (did the file change?)");
            if (npy_integer(buf, t, &vals[k]) != 0) {
                snprintf(m, sizeof m, "row %llu: %s value above 2^63 - 1", r,
                         h.fname[k][0] ? h.fname[k] : "a");
                return hdr_fail(&h, m);
            }
        }
        if ((c = scan->row(scan->ctx, (long long)r, vals, err, errlen)) != 0)
            return c == SNNRT_SCAN_STOP ? 0 : -1;
    }
    return 0;
}

/* snnrt_npy_read_table's callbacks: the whole table in memory. */
typedef struct TableRead {
    SnnrtTable *t;
    const char *path;
} TableRead;

static int table_begin(void *ctx, const SnnrtTable *shape, char *err, size_t errlen)
{
    TableRead *tr = (TableRead *)ctx;
    size_t n = (size_t)shape->rows * (size_t)shape->cols; /* checked by the scan */
    *tr->t = *shape;
    tr->t->data = (long long *)malloc(n ? n * sizeof(long long) : sizeof(long long));
    if (!tr->t->data)
        return npy_fail(err, errlen, tr->path, "out of memory for the data");
    return 0;
}

static int table_row(void *ctx, long long r, const long long *vals, char *err, size_t errlen)
{
    SnnrtTable *t = ((TableRead *)ctx)->t;
    (void)err;
    (void)errlen;
    memcpy(t->data + (size_t)r * (size_t)t->cols, vals, (size_t)t->cols * sizeof(long long));
    return 0;
}

static int table_read_open(FILE *fp, const char *path, SnnrtTable *out,
                           char *err, size_t errlen)
{
    SnnrtTableScan scan;
    TableRead tr;
    tr.t = out;
    tr.path = path;
    scan.begin = table_begin;
    scan.row = table_row;
    scan.ctx = &tr;
    return table_scan_open(fp, path, &scan, err, errlen);
}

/* The public readers take a file's path, or bytes in memory (mem != NULL)
   and the name their messages give them; each opens a stream and hands it
   to its reader above. */
typedef struct {
    const char *name;       /* the path, or the name of the bytes */
    const void *mem;
    size_t size;
} Source;

static FILE *source_open(const Source *src, char *err, size_t errlen)
{
    FILE *fp = src->mem ? snnrt_mem_open(src->mem, src->size) : fopen(src->name, "rb");
    if (!fp)
        npy_fail(err, errlen, src->name, src->mem ? "cannot open the bytes in memory as a file"
                                                  : "cannot open for reading");
    return fp;
}

static int read_tensor(const Source *src, long long rows, SnnrtTensor *out, long long *file_rows,
                       char *err, size_t errlen)
{
    FILE *fp;
    int rc;
    if (!err)
        errlen = 0;
    memset(out, 0, sizeof *out);
    if (!(fp = source_open(src, err, errlen)))
        return -1;
    rc = npy_read_open(fp, src->name, rows, out, file_rows, err, errlen);
    fclose(fp);
    if (rc)
        snnrt_tensor_free(out);
    return rc;
}

static int read_table(const Source *src, SnnrtTable *out, char *err, size_t errlen)
{
    FILE *fp;
    int rc;
    if (!err)
        errlen = 0;
    memset(out, 0, sizeof *out);
    if (!(fp = source_open(src, err, errlen)))
        return -1;
    rc = table_read_open(fp, src->name, out, err, errlen);
    fclose(fp);
    if (rc)
        snnrt_table_free(out);
    return rc;
}

static int scan_table(const Source *src, const SnnrtTableScan *scan, char *err, size_t errlen)
{
    FILE *fp;
    int rc;
    if (!err)
        errlen = 0;
    if (!(fp = source_open(src, err, errlen)))
        return -1;
    rc = table_scan_open(fp, src->name, scan, err, errlen);
    fclose(fp);
    return rc;
}

int snnrt_npy_read(const char *path, SnnrtTensor *out, char *err,
                   size_t errlen)
{
    Source src = {path, NULL, 0};
    return read_tensor(&src, -1, out, NULL, err, errlen);
}

int snnrt_npy_read_first(const char *path, long long rows, SnnrtTensor *out, long long *file_rows, char *err,
                         size_t errlen)
{
    Source src = {path, NULL, 0};
    return read_tensor(&src, rows, out, file_rows, err, errlen);
}

int snnrt_npy_read_mem(const void *data, size_t size, const char *name,
                       SnnrtTensor *out, char *err, size_t errlen)
{
    Source src = {name, data ? data : "", size};
    return read_tensor(&src, -1, out, NULL, err, errlen);
}

int snnrt_npy_read_table(const char *path, SnnrtTable *out, char *err,
                         size_t errlen)
{
    Source src = {path, NULL, 0};
    return read_table(&src, out, err, errlen);
}

int snnrt_npy_read_table_mem(const void *data, size_t size, const char *name,
                             SnnrtTable *out, char *err, size_t errlen)
{
    Source src = {name, data ? data : "", size};
    return read_table(&src, out, err, errlen);
}

int snnrt_npy_scan_table(const char *path, const SnnrtTableScan *scan,
                         char *err, size_t errlen)
{
    Source src = {path, NULL, 0};
    return scan_table(&src, scan, err, errlen);
}

int snnrt_npy_scan_table_mem(const void *data, size_t size, const char *name,
                             const SnnrtTableScan *scan, char *err,
                             size_t errlen)
{
    Source src = {name, data ? data : "", size};
    return scan_table(&src, scan, err, errlen);
}

void snnrt_table_free(SnnrtTable *t)
{
    if (!t)
        return;
    free(t->data);
    memset(t, 0, sizeof *t);
}

/* ---- writing ---- */

int snnrt_npy_write(const char *path, const SnnrtTensor *t, char *err,
                    size_t errlen)
{
    char dict[512], dims[300] = "";
    unsigned char *file;
    size_t at = 0, dlen, hlen, total, i;
    int d, rc;
    if (!err)
        errlen = 0;
    if (snnrt_tensor_validate(t, path, err, errlen))
        return -1;
    /* NumPy's own spelling: (), (3,), (3, 4) */
    for (d = 0; d < t->ndim; d++)
        at += (size_t)snprintf(dims + at, sizeof dims - at,
                               d ? ", %lld" : "%lld", t->shape[d]);
    dlen = (size_t)snprintf(dict, sizeof dict,
                            "{'descr': '<f4', 'fortran_order': False, "
                            "'shape': (%s%s), }",
                            dims, t->ndim == 1 ? "," : "");
    /* padding so that the data starts at a multiple of 64 */
    hlen = dlen + 1 + (64 - (10 + dlen + 1) % 64) % 64;
    if (t->count > ((size_t)-1 - 10 - hlen) / 4)
        return npy_fail(err, errlen, path, "tensor too large to write");
    total = 10 + hlen + t->count * 4;
    file = (unsigned char *)malloc(total);
    if (!file)
        return npy_fail(err, errlen, path, "out of memory");
    memcpy(file, "\x93NUMPY\x01\x00", 8);
    file[8] = (unsigned char)(hlen & 0xFF);
    file[9] = (unsigned char)(hlen >> 8);
    memcpy(file + 10, dict, dlen);
    memset(file + 10 + dlen, ' ', hlen - dlen - 1);
    file[10 + hlen - 1] = '\n';
    for (i = 0; i < t->count; i++) {
        uint32_t u;
        memcpy(&u, &t->data[i], 4);
        for (d = 0; d < 4; d++)
            file[10 + hlen + 4 * i + (size_t)d] = (unsigned char)(u >> (8 * d));
    }
    rc = snnrt_write_atomic(path, file, total, err, errlen);
    free(file);
    return rc;
}
