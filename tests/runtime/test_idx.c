/*
 * test_idx.c: tests of the IDX reader (snnrt_idx_read) and of
 * snnrt_idx_dataset_files.
 *
 * The files are written here byte by byte, plain and gzip-compressed with
 * zlib's deflate (one member, several concatenated members, a large file
 * that spans many of the reader's 64 KiB input chunks), into the folder
 * named by argv[1], and read back; the malformed files are the corpus in
 * tests/bad/idx (run by run_bad). Here: round trips of 1 to 4 dimensions,
 * empty arrays, the first rows of a file (snnrt_idx_read_first), a missing
 * file, a folder, and the dataset file finder with
 * each spelling, a missing split and a path too long for its buffer.
 */
#define _POSIX_C_SOURCE 200809L

#include "snnrt.h"
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <zlib.h>

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) {
        printf("cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

/* An IDX file of unsigned bytes: magic, big-endian sizes, data; malloc'd. */
static unsigned char *make_idx(int ndim, const unsigned *shape,
                               const unsigned char *data, size_t count,
                               size_t *len)
{
    unsigned char *b = (unsigned char *)malloc(4 + 4 * (size_t)ndim + count + 1);
    int i;
    b[0] = 0;
    b[1] = 0;
    b[2] = 0x08;
    b[3] = (unsigned char)ndim;
    for (i = 0; i < ndim; i++) {
        b[4 + 4 * i] = (unsigned char)(shape[i] >> 24);
        b[5 + 4 * i] = (unsigned char)(shape[i] >> 16);
        b[6 + 4 * i] = (unsigned char)(shape[i] >> 8);
        b[7 + 4 * i] = (unsigned char)shape[i];
    }
    if (count)
        memcpy(b + 4 + 4 * ndim, data, count);
    *len = 4 + 4 * (size_t)ndim + count;
    return b;
}

/* Appends p[0..n) as one gzip member to the file f. */
static void gzip_member(FILE *f, const unsigned char *p, size_t n)
{
    static unsigned char out[1 << 16];
    z_stream zs;
    int rc;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        printf("deflateInit2 failed\n");
        exit(1);
    }
    zs.next_in = (unsigned char *)p;
    zs.avail_in = (uInt)n;
    do {
        zs.next_out = out;
        zs.avail_out = sizeof out;
        rc = deflate(&zs, Z_FINISH);
        fwrite(out, 1, sizeof out - zs.avail_out, f);
    } while (rc == Z_OK);
    CHECK(rc == Z_STREAM_END);
    deflateEnd(&zs);
}

/* Writes b[0..n) gzip-compressed, split into members at the given cuts. */
static void write_gz(const char *path, const unsigned char *b, size_t n,
                     const size_t *cuts, int ncuts)
{
    FILE *f = fopen(path, "wb");
    size_t at = 0;
    int i;
    if (!f) {
        printf("cannot write %s\n", path);
        exit(1);
    }
    for (i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        gzip_member(f, b + at, end - at);
        at = end;
    }
    fclose(f);
}

static void expect_idx(const char *path, int ndim, const unsigned *shape,
                       const unsigned char *data, size_t count)
{
    SnnrtIdx x;
    char err[512];
    int i;
    CHECK_OK(snnrt_idx_read(path, &x, err, sizeof err), err);
    CHECK(x.ndim == ndim && x.count == count && x.data != NULL);
    for (i = 0; i < ndim && i < x.ndim; i++)
        CHECK(x.shape[i] == (long long)shape[i]);
    if (x.count == count && count)
        CHECK(!memcmp(x.data, data, count));
    snnrt_idx_free(&x);
    CHECK(x.data == NULL && x.count == 0 && x.ndim == 0);
}

static void test_roundtrips(void)
{
    static const unsigned shapes[4][4] = {
        {7}, {3, 5}, {2, 3, 4}, {2, 1, 3, 2}};
    unsigned char data[64];
    size_t len, cut[2];
    int nd, i;
    for (i = 0; i < 64; i++)
        data[i] = (unsigned char)(i * 37 + 11);
    for (nd = 1; nd <= 4; nd++) {
        size_t count = 1;
        unsigned char *b;
        for (i = 0; i < nd; i++)
            count *= shapes[nd - 1][i];
        b = make_idx(nd, shapes[nd - 1], data, count, &len);
        write_bytes(path_of("rt.idx"), b, len);
        expect_idx(path_of("rt.idx"), nd, shapes[nd - 1], data, count);
        write_gz(path_of("rt.idx.gz"), b, len, NULL, 0);
        expect_idx(path_of("rt.idx.gz"), nd, shapes[nd - 1], data, count);
        /* members split inside the magic and inside the data */
        cut[0] = 2;
        cut[1] = len - 3;
        write_gz(path_of("multi.idx.gz"), b, len, cut, 2);
        expect_idx(path_of("multi.idx.gz"), nd, shapes[nd - 1], data, count);
        free(b);
    }
}

static void test_empty_and_large(void)
{
    static const unsigned empty[3] = {0, 28, 28}, big[3] = {1000, 28, 28};
    size_t len, count = 1000 * 28 * 28, i, cut[1];
    unsigned char *data = (unsigned char *)malloc(count), *b;
    unsigned seed = 12345;
    b = make_idx(3, empty, NULL, 0, &len);
    write_bytes(path_of("empty.idx"), b, len);
    expect_idx(path_of("empty.idx"), 3, empty, NULL, 0);
    write_gz(path_of("empty.idx.gz"), b, len, NULL, 0);
    expect_idx(path_of("empty.idx.gz"), 3, empty, NULL, 0);
    free(b);
    /* random bytes compress badly, so the file spans many input chunks */
    for (i = 0; i < count; i++) {
        seed = seed * 1103515245u + 12345u;
        data[i] = (unsigned char)(seed >> 16);
    }
    b = make_idx(3, big, data, count, &len);
    write_bytes(path_of("big.idx"), b, len);
    expect_idx(path_of("big.idx"), 3, big, data, count);
    write_gz(path_of("big.idx.gz"), b, len, NULL, 0);
    expect_idx(path_of("big.idx.gz"), 3, big, data, count);
    cut[0] = len / 2 + 7;
    write_gz(path_of("big2.idx.gz"), b, len, cut, 1);
    expect_idx(path_of("big2.idx.gz"), 3, big, data, count);
    free(b);
    free(data);
}

/* snnrt_idx_read_first: the first rows of big.idx (plain) and big2.idx.gz
   (two gzip members, cut in the middle of the data) are the full array's
   first rows; asking for more rows than the file has reads them all; a
   file shorter than its header says fails even where the rows asked for
   are there (the sizes are checked whole). */
static void test_first_rows(void)
{
    static const unsigned longer[3] = {1001, 28, 28};
    const char *names[2] = {"big.idx", "big2.idx.gz"};
    SnnrtIdx all, x;
    char err[512];
    size_t len;
    int f;
    for (f = 0; f < 2; f++) {
        CHECK_OK(snnrt_idx_read(path_of(names[f]), &all, err, sizeof err), err);
        CHECK_OK(snnrt_idx_read_first(path_of(names[f]), 10, &x, err, sizeof err), err);
        CHECK(x.ndim == 3 && x.shape[0] == 10 && x.shape[1] == 28 && x.file_rows == 1000 && x.count == 10 * 784);
        CHECK(x.count == 10 * 784 && !memcmp(x.data, all.data, x.count));
        snnrt_idx_free(&x);
        CHECK_OK(snnrt_idx_read_first(path_of(names[f]), 0, &x, err, sizeof err), err);
        CHECK(x.shape[0] == 0 && x.count == 0 && x.data != NULL && x.file_rows == 1000);
        snnrt_idx_free(&x);
        CHECK_OK(snnrt_idx_read_first(path_of(names[f]), 5000, &x, err, sizeof err), err);
        CHECK(x.shape[0] == 1000 && x.file_rows == 1000 && x.count == all.count &&
              !memcmp(x.data, all.data, all.count));
        snnrt_idx_free(&x);
        snnrt_idx_free(&all);
    }
    /* a header of 1001 rows over the data of 1000: refused, 10 rows asked or not */
    {
        size_t count = 1000 * 784;
        unsigned char *data = (unsigned char *)calloc(count, 1), *b = make_idx(3, longer, data, count, &len);
        write_bytes(path_of("short.idx"), b, len);
        CHECK(snnrt_idx_read_first(path_of("short.idx"), 10, &x, err, sizeof err) == -1 && strstr(err, "truncated"));
        free(b);
        free(data);
    }
}

static void test_errors(void)
{
    SnnrtIdx x;
    char err[512], want[1100];
    memset(&x, 0x5a, sizeof x);
    CHECK(snnrt_idx_read(path_of("missing.idx"), &x, err, sizeof err) == -1);
    snprintf(want, sizeof want, "%s: cannot open for reading",
             path_of("missing.idx"));
    CHECK(contains(err, want));
    CHECK(x.data == NULL && x.count == 0 && x.ndim == 0);
    /* a folder is not a file */
    CHECK(snnrt_idx_read(dir, &x, err, sizeof err) == -1);
    CHECK(!strncmp(err, dir, strlen(dir)));
    CHECK(x.data == NULL);
    /* no err buffer at all */
    CHECK(snnrt_idx_read(path_of("missing.idx"), &x, NULL, 0) == -1);
    snnrt_idx_free(NULL);
}

static void touch(const char *name)
{
    write_bytes(path_of(name), "", 0);
}

static void test_dataset_files(void)
{
    char images[1024], labels[1024], want[1100], sub[512];
    static const char *const made[6] = {
        "ds/train-images-idx3-ubyte.gz", "ds/train-labels-idx1-ubyte.gz",
        "ds/train-images-idx3-ubyte", "ds/t10k-images.idx3-ubyte",
        "ds/t10k-labels.idx1-ubyte.gz", "ds/t10k-labels-idx1-ubyte"};
    int i;
    snprintf(sub, sizeof sub, "%s/ds", dir);
    if (mkdir(sub, 0777) != 0 && errno != EEXIST)
        printf("cannot create %s\n", sub);
    for (i = 0; i < 6; i++) /* from an earlier run */
        remove(path_of(made[i]));
    /* the Debian (and original) spelling, compressed */
    touch("ds/train-images-idx3-ubyte.gz");
    touch("ds/train-labels-idx1-ubyte.gz");
    CHECK(snnrt_idx_dataset_files(sub, 1, images, labels, sizeof images) == 0);
    snprintf(want, sizeof want, "%s/train-images-idx3-ubyte.gz", sub);
    CHECK(!strcmp(images, want));
    snprintf(want, sizeof want, "%s/train-labels-idx1-ubyte.gz", sub);
    CHECK(!strcmp(labels, want));
    /* the uncompressed name wins; a trailing slash is not doubled */
    touch("ds/train-images-idx3-ubyte");
    snprintf(want, sizeof want, "%s/", sub);
    CHECK(snnrt_idx_dataset_files(want, 1, images, labels, sizeof images) == 0);
    snprintf(want, sizeof want, "%s/train-images-idx3-ubyte", sub);
    CHECK(!strcmp(images, want));
    /* the test split is missing */
    CHECK(snnrt_idx_dataset_files(sub, 0, images, labels, sizeof images) == -1);
    snprintf(want, sizeof want, "%s: no test images (looked for t10k-images-idx3-ubyte[.gz], t10k-images.idx3-ubyte[.gz])",
             sub);
    CHECK(contains(images, want));
    CHECK(labels[0] == '\0');
    /* the dotted spelling of some mirrors; labels missing */
    touch("ds/t10k-images.idx3-ubyte");
    CHECK(snnrt_idx_dataset_files(sub, 0, images, labels, sizeof images) == -1);
    CHECK(contains(images, "no test labels (looked for t10k-labels-idx1-ubyte[.gz]"));
    touch("ds/t10k-labels.idx1-ubyte.gz");
    CHECK(snnrt_idx_dataset_files(sub, 0, images, labels, sizeof images) == 0);
    snprintf(want, sizeof want, "%s/t10k-images.idx3-ubyte", sub);
    CHECK(!strcmp(images, want));
    snprintf(want, sizeof want, "%s/t10k-labels.idx1-ubyte.gz", sub);
    CHECK(!strcmp(labels, want));
    /* a buffer too small for the path */
    CHECK(snnrt_idx_dataset_files(sub, 1, images, labels, strlen(sub) + 8) == -1);
    CHECK(labels[0] == '\0');
    CHECK(snnrt_idx_dataset_files("", 1, images, labels, sizeof images) == -1);
    CHECK(contains(images, "no dataset folder"));
}

int main(int argc, char **argv)
{
    int rc = scratch_dir(argc, argv);
    if (rc)
        return rc;
    test_roundtrips();
    test_empty_and_large();
    test_first_rows();
    test_errors();
    test_dataset_files();
    return test_main_end("IDX");
}
