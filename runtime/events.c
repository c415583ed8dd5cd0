/*
 * events.c: event lists (x, y, polarity, t), the input of a network whose
 * input is `encode events(...)`, and their binning into T frames.
 *
 * An event file is a .npy table of integers (snnrt_npy_read_table): a
 * structured array with fields named x, y, p and t (any order, any integer
 * or bool types, other fields ignored), as the tonic library writes them,
 * or an [E, 4] array whose columns are x, y, p, t. The samples of a
 * dataset are consecutive runs of events, given by the offsets file beside
 * it (NAME.offsets.npy for NAME.npy, [N + 1] integers from 0 to E); without
 * it the file is one sample. The offsets are read first; the events are
 * then read row by row (snnrt_npy_scan_table), each checked against the
 * network's spec and kept compactly (17 bytes), so a file is never held
 * whole and binning itself cannot fail: each message names the file, the
 * sample, the event's index in the sample and its row in the file. docs/language.md ("Event input") is the reference.
 */
#include "snnrt.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The most samples and events one file may hold: far above any dataset,
   and low enough that every index fits an int and every size a size_t. */
#define EV_MAX_SAMPLES (1ll << 31)
#define EV_MAX_EVENTS (1ll << 34)

static int ev_fail(char *err, size_t errlen, const char *path, const char *what)
{
    if (errlen)
        snprintf(err, errlen, "%s: %s", path, what);
    return -1;
}

void snnrt_events_free(SnnrtEvents *e)
{
    if (!e)
        return;
    free(e->offsets);
    free(e->t);
    free(e->x);
    free(e->y);
    free(e->p);
    memset(e, 0, sizeof *e);
}

/* The columns of x, y, p, t in the table, or -1 after reporting. */
static int ev_columns(const SnnrtTable *tb, const char *path, int col[4],
                      char *err, size_t errlen)
{
    static const char *const names[4] = {"x", "y", "p", "t"};
    char m[300];
    int k, c;
    if (!tb->names[0][0]) {
        if (tb->cols != 4) {
            snprintf(m, sizeof m, "an event list is a structured array with fields x, y, p, t or an [E, 4] "
                     "integer array (columns x, y, p, t); this one has %d column%s", tb->cols,
                     tb->cols == 1 ? "" : "s");
            return ev_fail(err, errlen, path, m);
        }
        for (k = 0; k < 4; k++)
            col[k] = k;
        return 0;
    }
    for (k = 0; k < 4; k++) {
        col[k] = -1;
        for (c = 0; c < tb->cols; c++)
            if (!strcmp(tb->names[c], names[k]))
                col[k] = c;
        if (col[k] < 0) {
            snprintf(m, sizeof m, "the structured array has no field '%s' (an event list needs x, y, p and t)",
                     names[k]);
            return ev_fail(err, errlen, path, m);
        }
    }
    return 0;
}

/* The offsets of the samples, checked against the number of events. */
static int ev_offsets(SnnrtEvents *e, const SnnrtTable *ot, const char *opath,
                      char *err, size_t errlen)
{
    char m[300];
    long long i;
    if (!ot) {
        e->samples = 1;
        e->offsets = (long long *)malloc(2 * sizeof(long long));
        if (!e->offsets)
            return ev_fail(err, errlen, opath, "out of memory");
        e->offsets[0] = 0;
        e->offsets[1] = e->count;
        return 0;
    }
    if (ot->cols != 1 || ot->names[0][0] || ot->rows < 1) {
        snprintf(m, sizeof m, "the offsets of N samples are N + 1 integers ([N + 1]: 0, the end of each "
                 "sample); this file has %lld row%s of %d column%s", ot->rows, ot->rows == 1 ? "" : "s",
                 ot->cols, ot->cols == 1 ? "" : "s");
        return ev_fail(err, errlen, opath, m);
    }
    if (ot->rows - 1 > EV_MAX_SAMPLES) {
        snprintf(m, sizeof m, "%lld samples; at most %lld are supported", ot->rows - 1, EV_MAX_SAMPLES);
        return ev_fail(err, errlen, opath, m);
    }
    if (ot->data[0] != 0) {
        snprintf(m, sizeof m, "offset 0 is %lld; the first sample starts at event 0", ot->data[0]);
        return ev_fail(err, errlen, opath, m);
    }
    for (i = 1; i < ot->rows; i++)
        if (ot->data[i] < ot->data[i - 1]) {
            snprintf(m, sizeof m, "offset %lld is %lld, below offset %lld (%lld): offsets must not decrease",
                     i, ot->data[i], i - 1, ot->data[i - 1]);
            return ev_fail(err, errlen, opath, m);
        }
    if (ot->data[ot->rows - 1] != e->count) {
        snprintf(m, sizeof m, "the last offset is %lld but the event file has %lld events",
                 ot->data[ot->rows - 1], e->count);
        return ev_fail(err, errlen, opath, m);
    }
    e->samples = ot->rows - 1;
    e->offsets = (long long *)malloc((size_t)ot->rows * sizeof(long long));
    if (!e->offsets)
        return ev_fail(err, errlen, opath, "out of memory");
    memcpy(e->offsets, ot->data, (size_t)ot->rows * sizeof(long long));
    return 0;
}

/* The scan of an event file: the offsets first (read before), then each
   row checked and kept compactly as it is read. */
typedef struct EvScan {
    SnnrtEvents *e;
    const SnnrtTable *ot; /* the offsets, or NULL: one sample */
    const char *path, *opath;
    const SnnrtEventSpec *spec;
    int col[4];
    long long sample; /* the sample of the current row */
    long long limit;  /* the samples to read (< 0: all) */
} EvScan;

static int ev_begin(void *ctx, const SnnrtTable *tb, char *err, size_t errlen)
{
    EvScan *sc = (EvScan *)ctx;
    SnnrtEvents *e = sc->e;
    char m[200];
    size_t n;
    if (ev_columns(tb, sc->path, sc->col, err, errlen))
        return -1;
    if (tb->rows > EV_MAX_EVENTS) {
        snprintf(m, sizeof m, "%lld events; at most %lld are supported", tb->rows, EV_MAX_EVENTS);
        return ev_fail(err, errlen, sc->path, m);
    }
    e->count = tb->rows;
    if (ev_offsets(e, sc->ot, sc->opath, err, errlen))
        return -1;
    e->file_samples = e->samples;
    if (sc->limit >= 0 && sc->limit < e->samples) { /* the events of the first samples alone */
        e->samples = sc->limit;
        e->count = e->offsets[e->samples];
    }
    n = (size_t)e->count;
    e->t = (long long *)malloc((n + 1) * sizeof(long long));
    e->x = (int *)malloc((n + 1) * sizeof(int));
    e->y = (int *)malloc((n + 1) * sizeof(int));
    e->p = (unsigned char *)malloc(n + 1);
    if (!e->t || !e->x || !e->y || !e->p)
        return ev_fail(err, errlen, sc->path, "out of memory for the events");
    return e->count ? 0 : SNNRT_SCAN_STOP;
}

static int ev_row(void *ctx, long long r, const long long *row, char *err, size_t errlen)
{
    EvScan *sc = (EvScan *)ctx;
    SnnrtEvents *e = sc->e;
    const SnnrtEventSpec *spec = sc->spec;
    long long x = row[sc->col[0]], y = row[sc->col[1]], p = row[sc->col[2]], t = row[sc->col[3]];
    long long s;
    char what[200], m[400];
    const char *why = NULL;
    /* offsets never decrease and the last is the count, so r < count
       finds its sample */
    while (r >= e->offsets[sc->sample + 1])
        sc->sample++;
    s = sc->sample;
    if (x < 0 || x >= spec->width) {
        snprintf(what, sizeof what, "x = %lld is outside the input's width %lld (0 to %lld)", x,
                 spec->width, spec->width - 1);
        why = what;
    } else if (y < 0 || y >= spec->height) {
        snprintf(what, sizeof what, "y = %lld is outside the input's height %lld (0 to %lld)", y,
                 spec->height, spec->height - 1);
        why = what;
    } else if (p != 0 && p != 1) {
        snprintf(what, sizeof what, "polarity p = %lld; it must be 0 (off) or 1 (on)", p);
        why = what;
    } else if (t < 0) {
        snprintf(what, sizeof what, "t = %lld is negative; a sample's times start at 0", t);
        why = what;
    } else if (t >= spec->window) {
        snprintf(what, sizeof what, "t = %lld is past the window: the network bins t from 0 to %lld",
                 t, spec->window - 1);
        why = what;
    } else if (r > e->offsets[s] && t < e->t[r - 1]) {
        snprintf(what, sizeof what, "t = %lld is before the previous event's t = %lld; events must "
                 "be sorted by t within a sample", t, e->t[r - 1]);
        why = what;
    }
    if (why) {
        snprintf(m, sizeof m, "sample %lld, event %lld (row %lld): %s", s, r - e->offsets[s], r, why);
        return ev_fail(err, errlen, sc->path, m);
    }
    e->x[r] = (int)x;
    e->y[r] = (int)y;
    e->p[r] = (unsigned char)p;
    e->t[r] = t;
    return r + 1 < e->count ? 0 : SNNRT_SCAN_STOP;
}

/* The events of path (the bytes data[0..size) when data is not NULL),
   after the offsets ot. */
static int ev_scan(const void *data, size_t size, const char *path, const SnnrtTable *ot,
                   const char *opath, const SnnrtEventSpec *spec, long long limit, SnnrtEvents *out,
                   char *err, size_t errlen)
{
    EvScan sc;
    SnnrtTableScan scan;
    int rc;
    memset(out, 0, sizeof *out);
    memset(&sc, 0, sizeof sc);
    sc.e = out;
    sc.ot = ot;
    sc.path = path;
    sc.opath = opath;
    sc.spec = spec;
    sc.limit = limit;
    scan.begin = ev_begin;
    scan.row = ev_row;
    scan.ctx = &sc;
    rc = data ? snnrt_npy_scan_table_mem(data, size, path, &scan, err, errlen)
              : snnrt_npy_scan_table(path, &scan, err, errlen);
    if (rc)
        snnrt_events_free(out);
    return rc;
}

int snnrt_events_read(const char *path, const SnnrtEventSpec *spec,
                      SnnrtEvents *out, char *err, size_t errlen)
{
    return snnrt_events_read_first(path, spec, -1, out, err, errlen);
}

int snnrt_events_read_first(const char *path, const SnnrtEventSpec *spec, long long samples,
                            SnnrtEvents *out, char *err, size_t errlen)
{
    SnnrtTable ot;
    size_t n = strlen(path);
    char *opath;
    FILE *fp;
    int rc = -1, has_offsets = 0;
    if (!err)
        errlen = 0;
    memset(out, 0, sizeof *out);
    memset(&ot, 0, sizeof ot);
    opath = (char *)malloc(n + 16);
    if (!opath)
        return ev_fail(err, errlen, path, "out of memory");
    if (n >= 4 && !strcmp(path + n - 4, ".npy"))
        n -= 4;
    memcpy(opath, path, n);
    strcpy(opath + n, ".offsets.npy");
    fp = fopen(opath, "rb");
    if (fp) {
        fclose(fp);
        has_offsets = 1;
    }
    if (!has_offsets || snnrt_npy_read_table(opath, &ot, err, errlen) == 0)
        rc = ev_scan(NULL, 0, path, has_offsets ? &ot : NULL, opath, spec, samples, out, err, errlen);
    snnrt_table_free(&ot);
    free(opath);
    return rc;
}

int snnrt_events_read_mem(const void *events, size_t size,
                          const void *offsets, size_t osize,
                          const char *name, const SnnrtEventSpec *spec,
                          SnnrtEvents *out, char *err, size_t errlen)
{
    SnnrtTable ot;
    int rc = -1;
    if (!err)
        errlen = 0;
    memset(out, 0, sizeof *out);
    memset(&ot, 0, sizeof ot);
    if (!offsets || snnrt_npy_read_table_mem(offsets, osize, name, &ot, err, errlen) == 0)
        rc = ev_scan(events, size, name, offsets ? &ot : NULL, name, spec, -1, out, err, errlen);
    snnrt_table_free(&ot);
    return rc;
}

void snnrt_events_bin(const SnnrtEvents *e, const SnnrtEventSpec *spec,
                      long long i, float *dst, size_t stride)
{
    size_t frame = (size_t)spec->channels * (size_t)spec->height * (size_t)spec->width;
    long long r;
    int k;
    for (k = 0; k < spec->steps; k++)
        memset(dst + (size_t)k * stride, 0, frame * sizeof(float));
    for (r = e->offsets[i]; r < e->offsets[i + 1]; r++) {
        /* t < window <= 2^40 and T <= 10^6 < 2^20: the product fits */
        long long bin = e->t[r] * spec->steps / spec->window;
        size_t c = spec->channels == 2 ? e->p[r] : 0;
        float *v = dst + (size_t)bin * stride +
                   (c * (size_t)spec->height + (size_t)e->y[r]) * (size_t)spec->width + (size_t)e->x[r];
        *v = spec->binary ? 1.0f : *v + 1.0f;
    }
}
