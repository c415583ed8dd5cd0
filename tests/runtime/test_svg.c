/*
 * test_svg.c: tests of snnrt_svg_curves and snnrt_svg_raster: the file is
 * well-formed enough to read (one XML declaration, one <svg> element closed
 * at the end, as many polylines as series, each with its finite points
 * only; a raster's marks), names are escaped, the text is the same for the
 * same arguments, and bad arguments or a missing folder fail with the path
 * first and leave no file behind. Files go to the folder named by argv[1];
 * a chart of two training curves is left there (curves.svg) for a person
 * to look at.
 */
#define _POSIX_C_SOURCE 200809L

#include "snnrt.h"
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

/* The whole file, NUL-terminated and malloc'd, or NULL. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *s;
    long n;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    s = (char *)malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = '\0';
    fclose(f);
    return s;
}

static int count_of(const char *s, const char *sub)
{
    int n = 0;
    for (s = strstr(s, sub); s; s = strstr(s + 1, sub))
        n++;
    return n;
}

/* The number of points in the k-th polyline of s. */
static int polyline_points(const char *s, int k)
{
    const char *p = s, *end;
    int n = 0;
    while (k-- >= 0 && p) {
        p = strstr(p, "<polyline");
        if (p)
            p++;
    }
    if (!p || !(p = strstr(p, "points=\"")))
        return -1;
    p += 8;
    end = strchr(p, '"');
    for (; p < end; p++)
        n += *p == ',';
    return n;
}

static void test_curves(void)
{
    static const double loss[5] = {2.3, 1.1, NAN, 0.62, 0.48};
    static const double acc[4] = {0.41, 0.73, 0.82, INFINITY};
    const double *ys[2] = {loss, acc};
    const char *names[2] = {"loss <train> & \"test\"", "acc\x01uracy \xc3\xa9\xff"};
    const int lens[2] = {5, 4};
    char err[512];
    char *a, *b;
    CHECK_OK(snnrt_svg_curves(path_of("curves.svg"), "Fashion-MNIST, T = 8",
                              2, names, ys, lens, "epoch", err, sizeof err),
             err);
    a = slurp(path_of("curves.svg"));
    CHECK(a != NULL);
    if (!a)
        return;
    CHECK(!strncmp(a, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg ", 44));
    CHECK(count_of(a, "<svg") == 1 && count_of(a, "</svg>\n") == 1);
    CHECK(!strcmp(a + strlen(a) - 7, "</svg>\n"));
    CHECK(count_of(a, "<polyline") == 2);
    CHECK(polyline_points(a, 0) == 4); /* the NaN is skipped */
    CHECK(polyline_points(a, 1) == 3); /* and the infinity */
    CHECK(count_of(a, "<circle") == 7);
    CHECK(strstr(a, "loss &lt;train&gt; &amp; &quot;test&quot;") != NULL);
    CHECK(strstr(a, "acc?uracy \xc3\xa9?") != NULL);
    CHECK(strstr(a, ">Fashion-MNIST, T = 8</text>") != NULL);
    CHECK(strstr(a, ">epoch</text>") != NULL);
    CHECK(strstr(a, "nan") == NULL && strstr(a, "inf") == NULL);
    /* the same arguments give the same text */
    CHECK_OK(snnrt_svg_curves(path_of("again.svg"), "Fashion-MNIST, T = 8",
                              2, names, ys, lens, "epoch", err, sizeof err),
             err);
    b = slurp(path_of("again.svg"));
    CHECK(b && !strcmp(a, b));
    free(a);
    free(b);
}

static void test_degenerate(void)
{
    static const double one[1] = {0.5}, flat[3] = {1, 1, 1},
                        none[2] = {NAN, NAN};
    const double *ys[3] = {one, flat, none};
    const int lens[3] = {1, 3, 2};
    char err[512];
    char *s;
    /* one point, a flat line, nothing finite, no names, no title */
    CHECK_OK(snnrt_svg_curves(path_of("flat.svg"), NULL, 3, NULL, ys, lens,
                              NULL, err, sizeof err),
             err);
    s = slurp(path_of("flat.svg"));
    CHECK(s && count_of(s, "<polyline") == 3 && strstr(s, "series 3"));
    CHECK(s && polyline_points(s, 2) == 0);
    free(s);
    /* no series at all: just the axes */
    CHECK_OK(snnrt_svg_curves(path_of("empty.svg"), "empty", 0, NULL, NULL,
                              NULL, "epoch", err, sizeof err),
             err);
    s = slurp(path_of("empty.svg"));
    CHECK(s && count_of(s, "<polyline") == 0 && strstr(s, "</svg>"));
    free(s);
}

static void test_errors(void)
{
    static const double y[2] = {1, 2};
    const double *ys[17];
    int lens[17], i;
    char err[512], want[1100];
    for (i = 0; i < 17; i++) {
        ys[i] = y;
        lens[i] = 2;
    }
    CHECK(snnrt_svg_curves(path_of("bad.svg"), "t", 17, NULL, ys, lens, "x",
                           err, sizeof err) == -1);
    snprintf(want, sizeof want, "%s: cannot plot 17 series", path_of("bad.svg"));
    CHECK(contains(err, want));
    lens[1] = -1;
    CHECK(snnrt_svg_curves(path_of("bad.svg"), "t", 2, NULL, ys, lens, "x",
                           err, sizeof err) == -1);
    CHECK(contains(err, "series 2 has no points or a negative length (-1)"));
    CHECK(slurp(path_of("bad.svg")) == NULL);
    lens[1] = 2;
    CHECK(snnrt_svg_curves(path_of("no/such/folder.svg"), "t", 2, NULL, ys,
                           lens, "x", err, sizeof err) == -1);
    CHECK(!strncmp(err, path_of("no/such/folder.svg"),
                   strlen(path_of("no/such/folder.svg"))));
}

/* snnrt_svg_raster: one <rect> per nonzero value of the steps x neurons
   block (read with its stride), in the group of spikes and nowhere else;
   a raster too large, or without cells, is refused and leaves no file. */
static void test_raster(void)
{
    /* 3 steps of 4 neurons, in rows of 5 (a second sample's value last) */
    static const float s[15] = {1, 0, 0, 1, 9,
                                0, 0, 0, 0, 9,
                                0, 1, 2.5f, 1, 9};
    char err[512], *a, *g;
    CHECK_OK(snnrt_svg_raster(path_of("raster.svg"), "h <1>", 3, 4, s, 5, err, sizeof err), err);
    a = slurp(path_of("raster.svg"));
    CHECK(a != NULL);
    if (!a)
        return;
    CHECK(count_of(a, "<svg") == 1 && !strcmp(a + strlen(a) - 7, "</svg>\n"));
    g = strstr(a, "<g id=\"spikes\"");
    CHECK(g != NULL);
    if (g) {
        const char *end = strstr(g, "</g>");
        int n = 0;
        for (const char *r = strstr(g, "<rect"); r && end && r < end; r = strstr(r + 1, "<rect"))
            n++;
        CHECK(n == 5);
    }
    CHECK(strstr(a, ">5 spikes</text>") != NULL);
    CHECK(strstr(a, ">h &lt;1&gt;</text>") != NULL);
    free(a);
    CHECK(snnrt_svg_raster(path_of("bad.svg"), "t", 0, 4, s, 5, err, sizeof err) == -1);
    CHECK(contains(err, "cannot plot a raster of 0 steps by 4 neurons"));
    CHECK(snnrt_svg_raster(path_of("bad.svg"), "t", 3, 6, s, 5, err, sizeof err) == -1);
    CHECK(snnrt_svg_raster(path_of("bad.svg"), "t", 4000, 4000, s, 4000, err, sizeof err) == -1);
    CHECK(slurp(path_of("bad.svg")) == NULL);
}

int main(int argc, char **argv)
{
    int rc = scratch_dir(argc, argv);
    if (rc)
        return rc;
    test_curves();
    test_degenerate();
    test_errors();
    test_raster();
    return test_main_end("SVG");
}
