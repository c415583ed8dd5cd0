/*
 * idx.c: reading IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed,
 * and finding a dataset's files in a folder.
 *
 * An IDX file is a 4-byte magic number (two zero bytes, an element type,
 * the number of dimensions), one big-endian 32-bit size per dimension, then
 * the elements in C order. Only unsigned bytes (type 0x08) are read: that
 * is what the image and label files hold. The header is read and checked
 * before anything is allocated from it; the data size is bounded by
 * SNNRT_IDX_MAX_BYTES and must match the rest of the file exactly.
 *
 * Compressed files go through zlib's inflate as one stream (concatenated
 * gzip members continue it, as for gunzip), read in 64 KiB chunks, so the
 * reader never holds more than the array and one chunk. A gzip bomb cannot
 * make it work harder than an honest file: the array is allocated only
 * after its size has been checked against what deflate could possibly have
 * expanded the file to (at most 1032 times), decompression stops at the
 * size the header gives, and the look past it for trailing data (needed
 * anyway, since the CRC is checked only at the end of the stream) is
 * bounded by 1 MiB.
 */
#include "snnrt.h"
#include "rtbuf.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_CHUNK 65536u
#define IDX_TRAIL_LOOK (1024u * 1024u)
/* deflate's best case: 258 bytes from one literal/length code of about two
   bits, which zlib's documentation rounds to 1032:1 */
#define IDX_MAX_RATIO 1032ull

typedef struct IdxReader {
    const char *path;
    char *err;
    size_t errlen;
    FILE *fp;
    unsigned long long size; /* of the file on disk */
    int gz;                  /* reading through inflate */
    int zinit;               /* zs needs inflateEnd */
    int zdone;               /* the last member ended with the file */
    z_stream zs;
    unsigned char *in;       /* IDX_CHUNK bytes of compressed input */
} IdxReader;

static int idx_fail(IdxReader *r, const char *what)
{
    if (r->errlen)
        snprintf(r->err, r->errlen, "%s: %s", r->path, what);
    return -1;
}

/* "60000x28x28" */
static void idx_shape_str(const long long *shape, int ndim, char *buf,
                          size_t size)
{
    size_t at = 0;
    int i;
    buf[0] = '\0';
    for (i = 0; i < ndim && at + 24 < size; i++)
        at += (size_t)snprintf(buf + at, size - at, i ? "x%lld" : "%lld",
                               shape[i]);
}

/* ---- the byte source: the file itself, or inflate over it ---- */

/* After the end of a gzip member: the file must end, or another member
   must follow. */
static int gz_next_member(IdxReader *r)
{
    z_stream *zs = &r->zs;
    char m[200];
    if (zs->avail_in < 2) {
        /* move what is left to the front and top the buffer up */
        size_t have = zs->avail_in, n;
        if (have)
            memmove(r->in, zs->next_in, have);
        n = fread(r->in + have, 1, IDX_CHUNK - have, r->fp);
        if (n == 0 && ferror(r->fp))
            return idx_fail(r, "read error");
        zs->next_in = r->in;
        zs->avail_in = (uInt)(have + n);
    }
    if (zs->avail_in == 0) {
        r->zdone = 1;
        return 0;
    }
    if (zs->avail_in >= 2 && zs->next_in[0] == 0x1f && zs->next_in[1] == 0x8b) {
        if (inflateReset(zs) != Z_OK)
            return idx_fail(r, "cannot restart the gzip decoder");
        return 0;
    }
    {
        long at = ftell(r->fp);
        unsigned long long rest = zs->avail_in;
        if (at >= 0 && (unsigned long long)at <= r->size)
            rest += r->size - (unsigned long long)at;
        snprintf(m, sizeof m, "%llu bytes of trailing garbage after the gzip stream", rest);
    }
    return idx_fail(r, m);
}

/* Up to want decompressed bytes into buf; *got < want only at the end of
   the stream. */
static int gz_get(IdxReader *r, unsigned char *buf, size_t want, size_t *got)
{
    z_stream *zs = &r->zs;
    char m[300];
    *got = 0;
    while (*got < want && !r->zdone) {
        size_t room = want - *got;
        int rc;
        if (zs->avail_in == 0) {
            size_t n = fread(r->in, 1, IDX_CHUNK, r->fp);
            if (n == 0)
                return idx_fail(r, ferror(r->fp) ? "read error"
                                                 : "truncated gzip stream (the file ends inside it)");
            zs->next_in = r->in;
            zs->avail_in = (uInt)n;
        }
        zs->next_out = buf + *got;
        zs->avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
        rc = inflate(zs, Z_NO_FLUSH);
        *got = (size_t)(zs->next_out - buf);
        if (rc == Z_STREAM_END) {
            if (gz_next_member(r))
                return -1;
        } else if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT) {
            snprintf(m, sizeof m, "corrupt gzip data (%s)",
                     zs->msg ? zs->msg : "no message from zlib");
            return idx_fail(r, m);
        } else if (rc == Z_MEM_ERROR) {
            return idx_fail(r, "out of memory in the gzip decoder");
        } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            return idx_fail(r, "gzip decoder failed");
        }
    }
    return 0;
}

static int idx_get(IdxReader *r, unsigned char *buf, size_t want,
                   size_t *got)
{
    if (r->gz)
        return gz_get(r, buf, want, got);
    *got = fread(buf, 1, want, r->fp);
    if (*got < want && ferror(r->fp))
        return idx_fail(r, "read error");
    return 0;
}

/* Opens the file, measures it and recognises gzip by its first bytes. */
static int idx_open(IdxReader *r)
{
    unsigned char b[2];
    long end;
    if (!r->fp)
        r->fp = fopen(r->path, "rb");
    if (!r->fp)
        return idx_fail(r, "cannot open for reading");
    if (fseek(r->fp, 0, SEEK_END) != 0 || (end = ftell(r->fp)) < 0 ||
        fseek(r->fp, 0, SEEK_SET) != 0)
        return idx_fail(r, "cannot determine the file size (not a regular file?)");
    r->size = (unsigned long long)end;
    if (r->size >= 2 && fread(b, 1, 2, r->fp) == 2 && b[0] == 0x1f &&
        b[1] == 0x8b)
        r->gz = 1;
    if (fseek(r->fp, 0, SEEK_SET) != 0)
        return idx_fail(r, "cannot seek (not a regular file?)");
    if (!r->gz)
        return 0;
    r->in = (unsigned char *)malloc(IDX_CHUNK);
    if (!r->in)
        return idx_fail(r, "out of memory for the gzip decoder");
    memset(&r->zs, 0, sizeof r->zs);
    if (inflateInit2(&r->zs, 16 + MAX_WBITS) != Z_OK)
        return idx_fail(r, "cannot start the gzip decoder");
    r->zinit = 1;
    return 0;
}

static void idx_close(IdxReader *r)
{
    if (r->zinit)
        inflateEnd(&r->zs);
    if (r->fp)
        fclose(r->fp);
    free(r->in);
}

/* ---- the header ---- */

static const char *idx_type_name(unsigned t)
{
    switch (t) {
    case 0x09: return "signed bytes";
    case 0x0B: return "16-bit integers";
    case 0x0C: return "32-bit integers";
    case 0x0D: return "32-bit floats";
    case 0x0E: return "64-bit floats";
    default: return "not an IDX type";
    }
}

static int idx_header(IdxReader *r, SnnrtIdx *out)
{
    unsigned char b[4 * SNNRT_IDX_MAX_DIMS];
    unsigned long long count = 1;
    char m[400], sh[120];
    size_t got;
    int i, zero = 0;
    if (idx_get(r, b, 4, &got))
        return -1;
    if (got < 4) {
        snprintf(m, sizeof m, "%s is %zu bytes, too short for an IDX file (the magic number needs 4)",
                 r->gz ? "the decompressed data" : "file", got);
        return idx_fail(r, m);
    }
    if (b[0] || b[1]) {
        snprintf(m, sizeof m, "not an IDX file (bad magic 0x%02x%02x%02x%02x; an IDX file starts with two zero bytes)",
                 b[0], b[1], b[2], b[3]);
        return idx_fail(r, m);
    }
    if (b[2] != 0x08) {
        snprintf(m, sizeof m, "element type 0x%02x (%s) is not supported; only unsigned bytes (0x08) are",
                 b[2], idx_type_name(b[2]));
        return idx_fail(r, m);
    }
    if (b[3] < 1 || b[3] > SNNRT_IDX_MAX_DIMS) {
        snprintf(m, sizeof m, "%u dimensions; only 1 to %d are supported",
                 b[3], SNNRT_IDX_MAX_DIMS);
        return idx_fail(r, m);
    }
    out->ndim = b[3];
    if (idx_get(r, b, 4 * (size_t)out->ndim, &got))
        return -1;
    if (got < 4 * (size_t)out->ndim) {
        snprintf(m, sizeof m, "truncated: the header needs %d bytes of sizes but only %zu follow",
                 4 * out->ndim, got);
        return idx_fail(r, m);
    }
    for (i = 0; i < out->ndim; i++) {
        out->shape[i] = (long long)((unsigned long)b[4 * i] << 24 |
                                    (unsigned long)b[4 * i + 1] << 16 |
                                    (unsigned long)b[4 * i + 2] << 8 |
                                    (unsigned long)b[4 * i + 3]);
        zero |= out->shape[i] == 0;
    }
    for (i = 0; i < out->ndim && !zero; i++) {
        unsigned long long d = (unsigned long long)out->shape[i];
        if (count > SNNRT_IDX_MAX_BYTES / d) {
            idx_shape_str(out->shape, out->ndim, sh, sizeof sh);
            snprintf(m, sizeof m, "shape %s holds more than %llu bytes (the limit)",
                     sh, SNNRT_IDX_MAX_BYTES);
            return idx_fail(r, m);
        }
        count *= d;
    }
    out->count = zero ? 0 : (size_t)count;
    return 0;
}

/* ---- the data ---- */

/* A plain file's data must fill the rest of it exactly; checked before
   allocating. */
static int plain_check_size(IdxReader *r, const SnnrtIdx *x)
{
    unsigned long long head = 4 + 4 * (unsigned long long)x->ndim,
                       avail = r->size - head, need = x->count;
    char m[400], sh[120];
    if (avail == need)
        return 0;
    idx_shape_str(x->shape, x->ndim, sh, sizeof sh);
    if (avail < need)
        snprintf(m, sizeof m, "truncated: header says %s (%llu bytes) but only %llu bytes of data follow",
                 sh, need, avail);
    else
        snprintf(m, sizeof m, "%llu bytes of trailing data after the %s array (%llu bytes)",
                 avail - need, sh, need);
    return idx_fail(r, m);
}

/* A compressed file cannot expand beyond deflate's best ratio: a header
   that asks for more is refused before the array is allocated. */
static int gz_check_size(IdxReader *r, const SnnrtIdx *x)
{
    char m[400], sh[120];
    if (x->count / IDX_MAX_RATIO <= r->size)
        return 0;
    idx_shape_str(x->shape, x->ndim, sh, sizeof sh);
    snprintf(m, sizeof m, "truncated: header says %s (%llu bytes) but a gzip file of %llu bytes cannot hold that much",
             sh, (unsigned long long)x->count, r->size);
    return idx_fail(r, m);
}

/* After the array, the stream must end: decompresses on (into a scratch
   buffer, at most IDX_TRAIL_LOOK bytes) to reach the end of every member,
   where zlib checks the CRC and length. */
static int gz_check_end(IdxReader *r, const SnnrtIdx *x)
{
    unsigned char *scratch;
    unsigned long long extra = 0;
    char m[400], sh[120];
    int rc = 0;
    if (r->zdone)
        return 0;
    scratch = (unsigned char *)malloc(IDX_CHUNK);
    if (!scratch)
        return idx_fail(r, "out of memory");
    while (!r->zdone && extra <= IDX_TRAIL_LOOK) {
        size_t got;
        if (gz_get(r, scratch, IDX_CHUNK, &got)) {
            rc = -1;
            break;
        }
        extra += got;
    }
    free(scratch);
    if (rc || extra == 0)
        return rc;
    idx_shape_str(x->shape, x->ndim, sh, sizeof sh);
    if (extra > IDX_TRAIL_LOOK)
        snprintf(m, sizeof m, "more than %u bytes of trailing data after the %s array (%llu bytes) in the decompressed stream",
                 IDX_TRAIL_LOOK, sh, (unsigned long long)x->count);
    else
        snprintf(m, sizeof m, "%llu bytes of trailing data after the %s array (%llu bytes) in the decompressed stream",
                 extra, sh, (unsigned long long)x->count);
    return idx_fail(r, m);
}

/* The data, or its first `rows` rows (rows < 0: all) where the file holds
   more: the size checks are the whole file's. */
static int idx_read_data(IdxReader *r, SnnrtIdx *x, long long rows)
{
    char m[400], sh[120];
    size_t got;
    int part = rows >= 0 && rows < x->shape[0];
    x->file_rows = x->shape[0];
    if (r->gz ? gz_check_size(r, x) : plain_check_size(r, x))
        return -1;
    if (part) { /* a row is count / shape[0] bytes: no overflow, at most count */
        x->count = x->count / (size_t)x->shape[0] * (size_t)rows;
        x->shape[0] = rows;
    }
    x->data = (unsigned char *)malloc(x->count ? x->count : 1);
    if (!x->data) {
        snprintf(m, sizeof m, "out of memory for %zu bytes of data", x->count);
        return idx_fail(r, m);
    }
    if (idx_get(r, x->data, x->count, &got))
        return -1;
    if (got < x->count) {
        idx_shape_str(x->shape, x->ndim, sh, sizeof sh);
        if (r->gz)
            snprintf(m, sizeof m, "truncated: header says %s (%zu bytes) but the decompressed data holds only %zu",
                     sh, x->count, got);
        else
            snprintf(m, sizeof m, "unexpected end of file after %zu of %zu bytes of data (did the file change?)",
                     got, x->count);
        return idx_fail(r, m);
    }
    return r->gz && !part ? gz_check_end(r, x) : 0;
}

/* snnrt_idx_read_first of fp (NULL: open path), which is closed here. */
static int idx_read_file(FILE *fp, const char *path, long long rows, SnnrtIdx *out,
                         char *err, size_t errlen)
{
    IdxReader r;
    int rc;
    memset(out, 0, sizeof *out);
    memset(&r, 0, sizeof r);
    r.path = path ? path : "(null)";
    r.err = err;
    r.errlen = err ? errlen : 0;
    r.fp = fp;
    if (!path) {
        idx_close(&r);
        return idx_fail(&r, "no file name");
    }
    rc = idx_open(&r);
    if (rc == 0)
        rc = idx_header(&r, out);
    if (rc == 0)
        rc = idx_read_data(&r, out, rows);
    idx_close(&r);
    if (rc)
        snnrt_idx_free(out);
    return rc;
}

int snnrt_idx_read(const char *path, SnnrtIdx *out, char *err,
                   size_t errlen)
{
    return idx_read_file(NULL, path, -1, out, err, errlen);
}

int snnrt_idx_read_first(const char *path, long long rows, SnnrtIdx *out, char *err, size_t errlen)
{
    return idx_read_file(NULL, path, rows, out, err, errlen);
}

int snnrt_idx_read_mem(const void *data, size_t size, const char *name,
                       SnnrtIdx *out, char *err, size_t errlen)
{
    FILE *fp = snnrt_mem_open(data, size);
    if (!fp) {
        memset(out, 0, sizeof *out);
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot open the bytes in memory as a file", name);
        return -1;
    }
    return idx_read_file(fp, name, -1, out, err, errlen);
}

void snnrt_idx_free(SnnrtIdx *x)
{
    if (!x)
        return;
    free(x->data);
    memset(x, 0, sizeof *x);
}

/* ---- finding a dataset's files ---- */

/* The spellings tried, for prefix "train" or "t10k" and kind "images"
   (idx3) or "labels" (idx1): the names of the original distribution, then
   the dotted names of some mirrors, each uncompressed first. */
static const char *const idx_spellings[4] = {
    "%s-%s-%s-ubyte", "%s-%s-%s-ubyte.gz", "%s-%s.%s-ubyte",
    "%s-%s.%s-ubyte.gz"};

static int idx_file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    fclose(f);
    return 1;
}

/* The first spelling of one file that exists, into out (n bytes); 0, or -1
   with the message in msg (msgn bytes). */
static int idx_find(const char *dir, const char *prefix, const char *kind,
                    const char *idxn, char *out, size_t n, char *msg,
                    size_t msgn)
{
    const char *sep = dir[strlen(dir) - 1] == '/' ? "" : "/";
    char name[64];
    size_t at = 0;
    int i, len;
    for (i = 0; i < 4; i++) {
        snprintf(name, sizeof name, idx_spellings[i], prefix, kind, idxn);
        len = snprintf(out, n, "%s%s%s", dir, sep, name);
        if (len < 0 || (size_t)len >= n) {
            if (msgn)
                snprintf(msg, msgn, "%s: the path of %s does not fit in %zu bytes",
                         dir, name, n);
            return -1;
        }
        if (idx_file_exists(out))
            return 0;
    }
    if (msgn) {
        at = (size_t)snprintf(msg, msgn, "%s: no %s %s (looked for", dir,
                              !strcmp(prefix, "train") ? "training" : "test",
                              kind);
        for (i = 0; i < 4 && at < msgn; i += 2) {
            snprintf(name, sizeof name, idx_spellings[i], prefix, kind, idxn);
            at += (size_t)snprintf(msg + at, msgn - at, "%s %s[.gz]",
                                   i ? "," : "", name);
        }
        if (at < msgn)
            snprintf(msg + at, msgn - at, ")");
    }
    return -1;
}

int snnrt_idx_dataset_files(const char *dir, int train, char *images,
                            char *labels, size_t n)
{
    const char *prefix = train ? "train" : "t10k";
    char msg[1024];
    if (!images || !labels || n == 0)
        return -1;
    labels[0] = '\0';
    if (!dir || !*dir) {
        snprintf(images, n, "(no folder): no dataset folder given");
        return -1;
    }
    if (idx_find(dir, prefix, "images", "idx3", images, n, msg, sizeof msg) ||
        idx_find(dir, prefix, "labels", "idx1", labels, n, msg, sizeof msg)) {
        snprintf(images, n, "%s", msg);
        labels[0] = '\0';
        return -1;
    }
    return 0;
}
