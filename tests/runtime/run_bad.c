/*
 * run_bad.c: the runner for the corpora of malformed files in tests/bad/npy,
 * tests/bad/safetensors and tests/bad/idx.
 *
 *   run_bad npy|safetensors|idx FOLDER MIN_FILES
 *
 * FOLDER/EXPECTED lists "file<TAB>expected substring" (blank lines and lines
 * starting with '#' are skipped). Each .npy and safetensors file is loaded
 * the way a model's weights are: read, then checked for NaN and Inf; each
 * IDX file (plain or gzip) is read as a dataset is. The load must fail, with
 * a message that starts with the file's path and contains the substring;
 * under the sanitizer build a crash or a leak fails the test too. Each
 * safetensors file also goes through snnrt_st_load_tensors (the .inc loader)
 * asking for "w" of shape [2, 3] with missing tensors allowed: whatever it
 * decides, it must not crash and its message must start with the path.
 * Each file is also read from memory (snnrt_npy_read_mem and the others,
 * what the fuzz targets call), which must fail with the same message.
 * Every file in FOLDER must be listed, and there must be at least MIN_FILES.
 */
#define _POSIX_C_SOURCE 200809L

#include "snnrt.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int load_npy(const char *path, char *err, size_t errlen)
{
    SnnrtTensor t;
    int rc = snnrt_npy_read(path, &t, err, errlen);
    if (rc == 0)
        rc = snnrt_tensor_check_finite(&t, path, err, errlen);
    snnrt_tensor_free(&t);
    return rc;
}

static int load_idx(const char *path, char *err, size_t errlen)
{
    SnnrtIdx x;
    int rc = snnrt_idx_read(path, &x, err, errlen);
    snnrt_idx_free(&x);
    return rc;
}

static int load_st(const char *path, char *err, size_t errlen)
{
    SnnrtStFile f;
    char what[1200];
    int i, rc = snnrt_st_read(path, &f, err, errlen);
    for (i = 0; rc == 0 && i < f.n; i++) {
        snprintf(what, sizeof what, "%s: tensor '%s'", path,
                 f.entries[i].name);
        rc = snnrt_tensor_check_finite(&f.entries[i].t, what, err, errlen);
    }
    snnrt_st_free(&f);
    return rc;
}

/* The reader's *_mem entry point (what the fuzz targets call) on the
   file's bytes, named by its path: the same message, byte for byte. */
static int probe_mem(const char *kind, const char *path, const char *msg)
{
    char err[1024] = "";
    unsigned char *data = NULL;
    size_t n = 0;
    long size;
    int rc = -2;
    FILE *f = fopen(path, "rb");
    if (f && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0 &&
        (data = (unsigned char *)malloc((size_t)size + 1)) != NULL)
        n = fread(data, 1, (size_t)size, f);
    if (f)
        fclose(f);
    if (data && !strcmp(kind, "npy")) {
        SnnrtTensor t;
        rc = snnrt_npy_read_mem(data, n, path, &t, err, sizeof err);
        if (rc == 0)
            rc = snnrt_tensor_check_finite(&t, path, err, sizeof err);
        snnrt_tensor_free(&t);
    } else if (data && !strcmp(kind, "idx")) {
        SnnrtIdx x;
        rc = snnrt_idx_read_mem(data, n, path, &x, err, sizeof err);
        snnrt_idx_free(&x);
    } else if (data) {
        SnnrtStFile st;
        char what[1200];
        int i;
        rc = snnrt_st_read_mem(data, n, path, &st, err, sizeof err);
        for (i = 0; rc == 0 && i < st.n; i++) {
            snprintf(what, sizeof what, "%s: tensor '%s'", path,
                     st.entries[i].name);
            rc = snnrt_tensor_check_finite(&st.entries[i].t, what, err,
                                           sizeof err);
        }
        snnrt_st_free(&st);
    }
    free(data);
    if (rc != -1 || strcmp(err, msg)) {
        printf("FAIL %s: read from memory: \"%s\", from the file: \"%s\"\n",
               path, rc == -2 ? "(cannot read the file)" : err, msg);
        return 1;
    }
    return 0;
}

/* The .inc loader on the same file: no crash, a well-formed message. */
static int probe_loader(const char *path)
{
    static const long shape[2] = {2, 3};
    float dst[6];
    unsigned char found;
    char err[1024];
    SnnrtStWant w;
    w.name = "w";
    w.ndim = 2;
    w.shape = shape;
    w.dst = dst;
    if (snnrt_st_load_tensors(path, &w, 1, 1, &found, err, sizeof err) == 0)
        return 0;
    if (strncmp(err, path, strlen(path)) != 0) {
        printf("FAIL %s: loader message does not start with the path: %s\n",
               path, err);
        return 1;
    }
    return 0;
}

static int check_file(const char *kind, const char *path, const char *want)
{
    char err[1024] = "";
    size_t plen = strlen(path);
    int rc = !strcmp(kind, "npy")   ? load_npy(path, err, sizeof err)
             : !strcmp(kind, "idx") ? load_idx(path, err, sizeof err)
                                    : load_st(path, err, sizeof err);
    if (rc != -1) {
        printf("FAIL %s: accepted, expected an error containing \"%s\"\n",
               path, want);
        return 1;
    }
    if (strncmp(err, path, plen) || strncmp(err + plen, ": ", 2)) {
        printf("FAIL %s: message does not start with the path: %s\n", path,
               err);
        return 1;
    }
    if (!strstr(err, want)) {
        printf("FAIL %s: message \"%s\" lacks \"%s\"\n", path, err, want);
        return 1;
    }
    printf("ok   %s\n", err);
    if (probe_mem(kind, path, err))
        return 1;
    return !strcmp(kind, "safetensors") ? probe_loader(path) : 0;
}

/* Files in folder, other than EXPECTED, that the manifest does not list. */
static int unlisted(const char *folder, char *const *listed, int n)
{
    DIR *d = opendir(folder);
    struct dirent *e;
    int bad = 0, i;
    if (!d) {
        printf("FAIL cannot list %s\n", folder);
        return 1;
    }
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "EXPECTED"))
            continue;
        for (i = 0; i < n && strcmp(listed[i], e->d_name); i++)
            ;
        if (i == n) {
            printf("FAIL %s/%s is not listed in EXPECTED\n", folder, e->d_name);
            bad++;
        }
    }
    closedir(d);
    return bad;
}

int main(int argc, char **argv)
{
    char line[1024], path[2048], *names[512];
    int n = 0, bad = 0, i, min;
    FILE *f;
    if (argc != 4 || (strcmp(argv[1], "npy") && strcmp(argv[1], "safetensors") &&
                      strcmp(argv[1], "idx"))) {
        printf("usage: %s npy|safetensors|idx FOLDER MIN_FILES\n", argv[0]);
        return 2;
    }
    min = atoi(argv[3]);
    snprintf(path, sizeof path, "%s/EXPECTED", argv[2]);
    f = fopen(path, "r");
    if (!f) {
        printf("FAIL cannot open %s\n", path);
        return 1;
    }
    while (fgets(line, sizeof line, f) && n < 512) {
        char *tab = strchr(line, '\t'), *end = line + strcspn(line, "\r\n");
        *end = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        if (!tab || !tab[1]) {
            printf("FAIL malformed EXPECTED line: %s\n", line);
            bad++;
            continue;
        }
        *tab = '\0';
        names[n++] = strcpy((char *)malloc(strlen(line) + 1), line);
        snprintf(path, sizeof path, "%s/%s", argv[2], line);
        bad += check_file(argv[1], path, tab + 1);
    }
    fclose(f);
    bad += unlisted(argv[2], names, n);
    if (n < min) {
        printf("FAIL only %d files listed, at least %d expected\n", n, min);
        bad++;
    }
    for (i = 0; i < n; i++)
        free(names[i]);
    printf("%d files, %d failures\n", n, bad);
    return bad ? 1 : 0;
}
