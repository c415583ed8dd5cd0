/*
 * svg.c: training curves as a self-contained SVG line chart, and spike
 * rasters (one mark per spike) on the same axes.
 *
 * The chart is built as text in memory and written with snnrt_write_atomic.
 * Its text depends only on the arguments (coordinates are printed with a
 * fixed number of decimals, nothing is dated), so the same run gives the
 * same file. The y axis spans the finite values of all series, widened to
 * "nice" tick steps (1, 2 or 5 times a power of ten); the x axis counts
 * points from 1 (epochs) with integer ticks. Points that are NaN,
 * infinite or beyond +-1e300 are left out of their polyline. Text from the caller (title,
 * names, axis label) is escaped for XML; bytes that are not valid UTF-8 or
 * are control characters become '?'.
 *
 * Numbers are printed with printf, so the C locale's decimal point is
 * assumed (a program that calls setlocale must keep LC_NUMERIC "C").
 */
#include "snnrt.h"
#include "rtbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SVG_MAX_SERIES 16
#define SVG_W 720
#define SVG_H 420
#define SVG_LEFT 76.0
#define SVG_TOP 40.0
#define SVG_RIGHT (SVG_W - 190.0)
#define SVG_BOTTOM (SVG_H - 56.0)
#define SVG_MARKERS 40 /* series this short also get a dot per point */

/* A point worth drawing: finite and small enough that differences of two
   stay finite. */
static int svg_ok(double v)
{
    return isfinite(v) && fabs(v) <= 1e300;
}

static const char *const svg_colors[8] = {
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
    "#9467bd", "#8c564b", "#e377c2", "#17becf"};

typedef SnnrtBuf SvgBuf;

static void svg_put(SvgBuf *b, const char *s, size_t n)
{
    snnrt_buf_put(b, s, n);
}

static void svg_printf(SvgBuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->failed = 1;
        return;
    }
    svg_put(b, tmp, (size_t)n);
}

/* Length (1..4) of the well-formed UTF-8 sequence at s, or 0. */
static size_t svg_utf8_len(const unsigned char *s)
{
    unsigned long cp;
    size_t n, i;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        n = 2;
        cp = s[0] & 0x1Fu;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        n = 3;
        cp = s[0] & 0x0Fu;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        n = 4;
        cp = s[0] & 0x07u;
    } else {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) /* also stops at the NUL */
            return 0;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* s as XML character data, at most 200 bytes of it. */
static void svg_text(SvgBuf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t used = 0;
    while (*p && used < 200) {
        size_t n = svg_utf8_len(p);
        if (*p == '&')
            svg_put(b, "&amp;", 5);
        else if (*p == '<')
            svg_put(b, "&lt;", 4);
        else if (*p == '>')
            svg_put(b, "&gt;", 4);
        else if (*p == '"')
            svg_put(b, "&quot;", 6);
        else if (n == 0 || *p < 0x20 || *p == 0x7f)
            svg_put(b, "?", 1);
        else
            svg_put(b, (const char *)p, n);
        p += n ? n : 1;
        used += n ? n : 1;
    }
    if (*p)
        svg_put(b, "...", 3);
}

/* ---- axes ---- */

typedef struct SvgAxis {
    double lo, hi, step; /* ticks at lo, lo + step, ... <= hi */
    int decimals;        /* for the tick labels */
} SvgAxis;

/* 1, 2 or 5 times a power of ten, at least raw. */
static double svg_nice(double raw)
{
    double p = pow(10.0, floor(log10(raw))), f = raw / p;
    return (f <= 1.0 ? 1.0 : f <= 2.0 ? 2.0 : f <= 5.0 ? 5.0 : 10.0) * p;
}

/* An axis over [lo, hi] with about five ticks, widened to whole steps. */
static void svg_axis(SvgAxis *a, double lo, double hi, int integer)
{
    double step;
    if (!(hi > lo)) {
        double pad = fabs(lo) > 0 ? fabs(lo) * 0.05 : 0.5;
        lo -= pad;
        hi += pad;
    }
    step = svg_nice((hi - lo) / 5.0);
    if (integer && step < 1.0)
        step = 1.0;
    if (!isfinite(step) || step <= 0.0 || !isfinite(floor(lo / step)) ||
        !isfinite(ceil(hi / step)) || (hi - lo) / step > 20.0) {
        /* beyond what nice steps can express: two ticks, the ends */
        a->lo = lo;
        a->hi = hi;
        a->step = hi - lo;
        a->decimals = -1;
        return;
    }
    a->lo = floor(lo / step) * step;
    a->hi = ceil(hi / step) * step;
    if (a->hi <= a->lo)
        a->hi = a->lo + step;
    a->step = step;
    /* fixed decimals read best; beyond 1e6 or below 1e-6, %g */
    a->decimals = step >= 1.0 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (step >= 1e6 || step < 1e-6)
        a->decimals = -1;
}

static void svg_tick_label(char *buf, size_t n, const SvgAxis *a, double v)
{
    if (a->decimals < 0)
        snprintf(buf, n, "%.4g", v);
    else
        snprintf(buf, n, "%.*f", a->decimals, fabs(v) < a->step * 1e-9 ? 0.0 : v);
}

static double svg_px(const SvgAxis *x, double v)
{
    return SVG_LEFT + (v - x->lo) / (x->hi - x->lo) * (SVG_RIGHT - SVG_LEFT);
}

static double svg_py(const SvgAxis *y, double v)
{
    return SVG_BOTTOM - (v - y->lo) / (y->hi - y->lo) * (SVG_BOTTOM - SVG_TOP);
}

static void svg_axes(SvgBuf *b, const SvgAxis *x, const SvgAxis *y,
                     const char *xlabel)
{
    char label[64];
    int i, nx = (int)floor((x->hi - x->lo) / x->step + 1e-9),
           ny = (int)floor((y->hi - y->lo) / y->step + 1e-9);
    svg_printf(b, "<g stroke=\"#e0e0e0\" stroke-width=\"1\">\n");
    for (i = 0; i <= ny; i++)
        svg_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                   SVG_LEFT, svg_py(y, y->lo + i * y->step), SVG_RIGHT,
                   svg_py(y, y->lo + i * y->step));
    for (i = 0; i <= nx; i++)
        svg_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                   svg_px(x, x->lo + i * x->step), SVG_TOP,
                   svg_px(x, x->lo + i * x->step), SVG_BOTTOM);
    svg_printf(b, "</g>\n<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" stroke=\"#333333\"/>\n",
               SVG_LEFT, SVG_TOP, SVG_RIGHT - SVG_LEFT, SVG_BOTTOM - SVG_TOP);
    svg_printf(b, "<g stroke=\"#333333\">\n");
    for (i = 0; i <= ny; i++)
        svg_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                   SVG_LEFT - 5, svg_py(y, y->lo + i * y->step), SVG_LEFT,
                   svg_py(y, y->lo + i * y->step));
    for (i = 0; i <= nx; i++)
        svg_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                   svg_px(x, x->lo + i * x->step), SVG_BOTTOM,
                   svg_px(x, x->lo + i * x->step), SVG_BOTTOM + 5);
    svg_printf(b, "</g>\n<g fill=\"#333333\">\n");
    for (i = 0; i <= ny; i++) {
        svg_tick_label(label, sizeof label, y, y->lo + i * y->step);
        svg_printf(b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">%s</text>\n",
                   SVG_LEFT - 8, svg_py(y, y->lo + i * y->step) + 4, label);
    }
    for (i = 0; i <= nx; i++) {
        svg_tick_label(label, sizeof label, x, x->lo + i * x->step);
        svg_printf(b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%s</text>\n",
                   svg_px(x, x->lo + i * x->step), SVG_BOTTOM + 20, label);
    }
    svg_printf(b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">",
               (SVG_LEFT + SVG_RIGHT) / 2, SVG_BOTTOM + 44);
    svg_text(b, xlabel);
    svg_printf(b, "</text>\n</g>\n");
}

/* ---- series ---- */

static void svg_series(SvgBuf *b, int s, const char *name, const double *ys,
                       int len, const SvgAxis *x, const SvgAxis *y)
{
    const char *color = svg_colors[s % 8];
    const char *dash = s >= 8 ? " stroke-dasharray=\"6 3\"" : "";
    double ly = SVG_TOP + 10 + 20.0 * s;
    int j, first = 1;
    svg_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"",
               color, dash);
    for (j = 0; j < len; j++) {
        if (!svg_ok(ys[j]))
            continue;
        svg_printf(b, "%s%.2f,%.2f", first ? "" : " ", svg_px(x, j + 1.0),
                   svg_py(y, ys[j]));
        first = 0;
    }
    svg_printf(b, "\"/>\n");
    if (len <= SVG_MARKERS) {
        svg_printf(b, "<g fill=\"%s\">\n", color);
        for (j = 0; j < len; j++)
            if (svg_ok(ys[j]))
                svg_printf(b, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3\"/>\n",
                           svg_px(x, j + 1.0), svg_py(y, ys[j]));
        svg_printf(b, "</g>\n");
    }
    /* legend entry */
    svg_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" stroke-width=\"2\"%s/>\n",
               SVG_RIGHT + 16, ly, SVG_RIGHT + 40, ly, color, dash);
    svg_printf(b, "<text x=\"%.2f\" y=\"%.2f\">", SVG_RIGHT + 46, ly + 4);
    if (name)
        svg_text(b, name);
    else
        svg_printf(b, "series %d", s + 1);
    svg_printf(b, "</text>\n");
}

static int svg_fail(const char *path, char *err, size_t errlen,
                    const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, "%s: %s", path ? path : "(null)", what);
    return -1;
}

int snnrt_svg_curves(const char *path, const char *title, int nseries,
                     const char *const *names, const double *const *ys,
                     const int *lens, const char *xlabel, char *err,
                     size_t errlen)
{
    SvgBuf b = {0};
    SvgAxis x, y;
    double lo = INFINITY, hi = -INFINITY;
    int s, j, npoints = 1, rc;
    char m[200];
    if (!path)
        return svg_fail(path, err, errlen, "no file name");
    if (nseries < 0 || nseries > SVG_MAX_SERIES ||
        (nseries > 0 && (!ys || !lens))) {
        snprintf(m, sizeof m, "cannot plot %d series (0 to %d, each with its points and length)",
                 nseries, SVG_MAX_SERIES);
        return svg_fail(path, err, errlen, m);
    }
    for (s = 0; s < nseries; s++) {
        if (lens[s] < 0 || (lens[s] > 0 && !ys[s])) {
            snprintf(m, sizeof m, "series %d has no points or a negative length (%d)",
                     s + 1, lens[s]);
            return svg_fail(path, err, errlen, m);
        }
        if (lens[s] > npoints)
            npoints = lens[s];
        for (j = 0; j < lens[s]; j++) {
            if (!svg_ok(ys[s][j]))
                continue;
            lo = ys[s][j] < lo ? ys[s][j] : lo;
            hi = ys[s][j] > hi ? ys[s][j] : hi;
        }
    }
    if (lo > hi) { /* nothing finite to show */
        lo = 0.0;
        hi = 1.0;
    }
    svg_axis(&y, lo, hi, 0);
    svg_axis(&x, 1.0, npoints, 1);
    svg_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    svg_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
               SVG_W, SVG_H, SVG_W, SVG_H);
    svg_printf(&b, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n",
               SVG_W, SVG_H);
    svg_printf(&b, "<text x=\"%.2f\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">",
               (SVG_LEFT + SVG_RIGHT) / 2);
    svg_text(&b, title);
    svg_printf(&b, "</text>\n");
    svg_axes(&b, &x, &y, xlabel);
    for (s = 0; s < nseries; s++)
        svg_series(&b, s, names ? names[s] : NULL, ys[s], lens[s], &x, &y);
    svg_printf(&b, "</svg>\n");
    if (b.failed) {
        free(b.data);
        return svg_fail(path, err, errlen, "out of memory building the chart");
    }
    rc = snnrt_write_atomic(path, b.data, b.len, err, errlen);
    free(b.data);
    return rc;
}

/* ---- spike rasters ---- */

int snnrt_svg_raster(const char *path, const char *title, int steps,
                     long neurons, const float *spikes, long stride,
                     char *err, size_t errlen)
{
    SvgBuf b = {0};
    SvgAxis x, y;
    char m[200];
    long i, marks = 0;
    int t, rc;
    double w, h;
    if (!path)
        return svg_fail(path, err, errlen, "no file name");
    if (steps < 1 || neurons < 1 || !spikes || stride < neurons ||
        (double)steps * (double)neurons > SNNRT_SVG_MAX_CELLS) {
        snprintf(m, sizeof m, "cannot plot a raster of %d steps by %ld neurons (each at least 1, "
                 "%d cells at most, a step's row of at least that many values)",
                 steps, neurons, SNNRT_SVG_MAX_CELLS);
        return svg_fail(path, err, errlen, m);
    }
    /* step t (from 1) is the cell [t - 1, t]: time runs from 0 to steps;
       neuron i is the band [i, i + 1) */
    svg_axis(&x, 0.0, (double)steps, 1);
    svg_axis(&y, 0.0, (double)neurons, 1);
    w = svg_px(&x, 1.0) - svg_px(&x, 0.0);
    h = svg_py(&y, 0.0) - svg_py(&y, 1.0);
    svg_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    svg_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
               SVG_W, SVG_H, SVG_W, SVG_H);
    svg_printf(&b, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", SVG_W, SVG_H);
    svg_printf(&b, "<text x=\"%.2f\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">",
               (SVG_LEFT + SVG_RIGHT) / 2);
    svg_text(&b, title);
    svg_printf(&b, "</text>\n");
    svg_axes(&b, &x, &y, "step");
    svg_printf(&b, "<text transform=\"translate(%.2f %.2f) rotate(-90)\" text-anchor=\"middle\" fill=\"#333333\">neuron</text>\n",
               SVG_LEFT - 52, (SVG_TOP + SVG_BOTTOM) / 2);
    /* one mark per spike, and nothing else in this group */
    svg_printf(&b, "<g id=\"spikes\" fill=\"#111111\">\n");
    for (t = 0; t < steps; t++)
        for (i = 0; i < neurons; i++)
            if (spikes[(size_t)t * (size_t)stride + (size_t)i] != 0.0f) {
                svg_printf(&b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>\n",
                           svg_px(&x, t + 0.1), svg_py(&y, i + 1.0), w * 0.8, h);
                marks++;
            }
    svg_printf(&b, "</g>\n");
    svg_printf(&b, "<text x=\"%.2f\" y=\"%.2f\" fill=\"#333333\">%ld spike%s</text>\n",
               SVG_RIGHT + 16, SVG_TOP + 14, marks, marks == 1 ? "" : "s");
    svg_printf(&b, "</svg>\n");
    if (b.failed) {
        free(b.data);
        return svg_fail(path, err, errlen, "out of memory building the raster");
    }
    rc = snnrt_write_atomic(path, b.data, b.len, err, errlen);
    free(b.data);
    return rc;
}
