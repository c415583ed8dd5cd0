/*
 * cache.c: the shared objects that snnc run, train and grad build, kept
 * for the next run that builds the same code (docs/cli.md, "The build
 * cache").
 *
 * A build is the compiler's command and the generated files; its key is a
 * 128-bit hash of the command (paths inside the build's folder by their
 * names alone, since the folder is new at every run), the files' bytes,
 * the compiler's identity (its resolved path, size and modification time:
 * an upgrade is another compiler), the CPU's (its model name and flags,
 * for -march=native) and the environment variables that change what the
 * compilers read (CPATH, NVCC_APPEND_FLAGS, ...). The folder is $SNNC_CACHE_DIR, else
 * $XDG_CACHE_HOME/snnc, else $HOME/.cache/snnc; SNNC_CACHE_DIR set empty or
 * to 0 turns the cache off. An entry is <key>.so, written under a
 * temporary name and renamed, so that a reader never sees half of one and
 * two runs that build the same code at once both succeed; a hit copies it
 * into the build's folder (--keep-build keeps it) and renews its time.
 * Beyond SNNC_CACHE_MAX entries (64) the least recently used go. A
 * failure of the cache is never an error: the build runs as without it.
 *
 * What the compiler read besides the generated files, the headers of the
 * system and of the libraries (a header-only library such as SIMDe can
 * change without the compiler), is listed by the compiler itself (-MD) on
 * a build; the entry keeps each file's size and modification time in
 * <key>.dep, written before the object, and a run takes the object only
 * when every file is as it was. A compiler that does not list them (nvcc)
 * leaves an empty list.
 * Small answers (whether a compiler builds OpenMP code) are kept as
 * <key>.txt.
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "c.h"

#define CACHE_MAX 64

typedef struct Hash {
    uint64_t a, b;
} Hash;

/* Two FNV-1a hashes from different starts: 128 bits. */
static void mix(Hash *h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h->a = (h->a ^ p[i]) * 0x100000001b3ULL;
        h->b = (h->b ^ p[i]) * 0x100000001b3ULL + 0x9e3779b97f4a7c15ULL;
    }
}

static void mix_str(Hash *h, const char *s) { mix(h, s, strlen(s) + 1); }

/* Hashes the file's bytes: 0, or -1 when it cannot be read. */
static int mix_file(Hash *h, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        mix(h, buf, n);
    int bad = ferror(f);
    fclose(f);
    return bad ? -1 : 0;
}

const char *cbuild_which(Arena *a, const char *prog) {
    if (strchr(prog, '/'))
        return access(prog, X_OK) == 0 ? prog : NULL;
    const char *path = getenv("PATH");
    for (const char *s = path ? path : ""; *s;) {
        const char *end = strchr(s, ':');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        const char *c = arena_printf(a, "%.*s/%s", (int)n, n ? s : ".", prog);
        if (access(c, X_OK) == 0)
            return c;
        s += n + (end != NULL);
    }
    return NULL;
}

/* The compiler's identity: its resolved path, size and modification time. */
static int mix_program(Arena *a, Hash *h, const char *prog) {
    const char *p = cbuild_which(a, prog);
    char real[PATH_MAX];
    struct stat st;
    if (!p || !realpath(p, real) || stat(real, &st) != 0)
        return -1;
    mix_str(h, real);
    long long v[2] = {(long long)st.st_size, (long long)st.st_mtime};
    mix(h, v, sizeof v);
    return 0;
}

/* The CPU's model name and flags (the first of each in /proc/cpuinfo). */
static void mix_cpu(Hash *h) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[8192];
    int model = 0, flags = 0;
    while ((!model || !flags) && fgets(line, sizeof line, f)) {
        if (!model && !strncmp(line, "model name", 10)) {
            mix_str(h, line);
            model = 1;
        } else if (!flags && !strncmp(line, "flags", 5)) {
            mix_str(h, line);
            flags = 1;
        }
    }
    fclose(f);
}

/* The cache's folder, made if missing; NULL when the cache is off or cannot be made. */
static const char *cache_dir(Arena *a) {
    const char *env = getenv("SNNC_CACHE_DIR"), *dir;
    if (env)
        dir = *env && strcmp(env, "0") ? env : NULL;
    else if (getenv("XDG_CACHE_HOME") && *getenv("XDG_CACHE_HOME"))
        dir = arena_printf(a, "%s/snnc", getenv("XDG_CACHE_HOME"));
    else if (getenv("HOME") && *getenv("HOME"))
        dir = arena_printf(a, "%s/.cache/snnc", getenv("HOME"));
    else
        dir = NULL;
    if (!dir)
        return NULL;
    /* each missing folder of the path, as mkdir -p */
    char *p = arena_strdup(a, dir);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0700);
            *s = '/';
        }
    if (mkdir(p, 0700) != 0 && errno != EEXIST)
        return NULL;
    return p;
}

const char *bcache_key(Arena *a, char *const argv[], const char *dir, const char *const files[]) {
    if (!cache_dir(a))
        return NULL;
    Hash h = {0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL};
    mix_str(&h, "snnc " SNNC_VERSION);
    size_t nd = strlen(dir);
    for (int i = 0; argv[i]; i++) /* a path in the build's folder by its name alone */
        mix_str(&h, !strncmp(argv[i], dir, nd) && argv[i][nd] == '/' ? argv[i] + nd + 1 : argv[i]);
    for (int i = 0; files && files[i]; i++)
        if (mix_file(&h, files[i]) != 0)
            return NULL;
    if (mix_program(a, &h, argv[0]) != 0)
        return NULL;
    mix_cpu(&h);
    /* what else the compilers read: headers and libraries found elsewhere, flags added to nvcc's */
    static const char *const env[] = {"CPATH", "C_INCLUDE_PATH", "LIBRARY_PATH", "GCC_EXEC_PREFIX", "COMPILER_PATH",
                                      "NVCC_PREPEND_FLAGS", "NVCC_APPEND_FLAGS", "NVCC_CCBIN"};
    for (size_t i = 0; i < sizeof env / sizeof env[0]; i++) {
        const char *v = getenv(env[i]);
        mix_str(&h, v ? v : "");
    }
    return arena_printf(a, "%016llx%016llx", (unsigned long long)h.a, (unsigned long long)h.b);
}

/* Copies src to dst (created, or truncated): 0, or -1. */
static int copy_file(const char *src, const char *dst) {
    int in = open(src, O_RDONLY), out = in < 0 ? -1 : open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0700);
    char buf[65536];
    ssize_t n = 0;
    int rc = in < 0 || out < 0 ? -1 : 0;
    while (rc == 0 && (n = read(in, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        for (ssize_t done = 0; rc == 0 && n > 0 && done < n;) {
            ssize_t w = write(out, buf + done, (size_t)(n - done));
            if (w == 0 || (w < 0 && errno != EINTR))
                rc = -1;
            done += w > 0 ? w : 0;
        }
        rc = n < 0 ? -1 : rc;
    }
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0)
        rc = -1;
    return rc;
}

/* ---- the files a build read ---- */

#define DEPS_MAX (1 << 20) /* bytes of a dependency list, the compiler's or the entry's */

/* Reads the whole small file at path (at most DEPS_MAX bytes): its text
   (NUL-terminated), or NULL. */
static char *slurp(Arena *a, const char *path) {
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f)
        return NULL;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0 || st.st_size > DEPS_MAX) {
        fclose(f);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    char *text = arena_alloc(a, size + 2);
    size_t n = fread(text, 1, size + 1, f); /* one more: a file that grew is refused */
    int bad = ferror(f) || n != size;
    fclose(f);
    if (bad)
        return NULL;
    text[n] = 0;
    return text;
}

/* The next file name of a make rule's prerequisites (what -MD writes) from
   *s, unescaped ("\ " a space, "$$" a dollar, "\" NL a continuation), or
   NULL at the end. */
static char *next_dep(Arena *a, const char **s) {
    const char *p = *s;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || (*p == '\\' && (p[1] == '\n' || p[1] == '\r')))
        p++;
    if (!*p)
        return NULL;
    /* twice: to measure the name, then to copy it */
    char *out = NULL, *o = NULL;
    for (int pass = 0; pass < 2; pass++) {
        const char *q = p;
        size_t n = 0;
        while (*q && *q != ' ' && *q != '\t' && *q != '\n' && *q != '\r') {
            if ((*q == '\\' && (q[1] == ' ' || q[1] == '#' || q[1] == '\\')) || (*q == '$' && q[1] == '$'))
                q++;
            else if (*q == '\\' && (q[1] == '\n' || q[1] == '\r'))
                break;
            if (o)
                *o++ = *q;
            q++;
            n++;
        }
        if (!pass)
            out = o = arena_alloc(a, n + 1);
        else {
            *o = 0;
            *s = q;
        }
    }
    return out;
}

/* The entry's list: a line "size seconds nanoseconds path" for each file
   that the compiler's rule in depfile names outside the build's folder dir
   (depfile NULL: none). 0, or -1 when the rule cannot be read or a file
   cannot be listed. */
static int write_deps(Arena *a, const char *path, const char *depfile, const char *dir) {
    const char *rule = depfile ? slurp(a, depfile) : "";
    if (!rule)
        return -1;
    const char *colon = depfile ? strstr(rule, ": ") : rule;
    if (!colon)
        return -1;
    const char *s = depfile ? colon + 2 : rule;
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    size_t nd = strlen(dir);
    int rc = 0;
    for (char *dep; rc == 0 && (dep = next_dep(a, &s));) {
        struct stat st;
        if (!strncmp(dep, dir, nd) && dep[nd] == '/') /* a generated file: hashed in the key */
            continue;
        if (strchr(dep, '\n') || stat(dep, &st) != 0)
            rc = -1;
        else
            fprintf(f, "%lld %lld %ld %s\n", (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                    (long)st.st_mtim.tv_nsec, dep);
    }
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

/* Whether every file of the entry's list at path is as it was. */
static int deps_unchanged(Arena *a, const char *path) {
    char *text = slurp(a, path);
    if (!text)
        return 0;
    for (char *line = text, *end; *line; line = end + 1) {
        if (!(end = strchr(line, '\n')))
            return 0;
        *end = 0;
        long long size, sec;
        long nsec;
        int at = 0;
        struct stat st;
        if (sscanf(line, "%lld %lld %ld %n", &size, &sec, &nsec, &at) != 3 || !at || stat(line + at, &st) != 0 ||
            (long long)st.st_size != size || (long long)st.st_mtim.tv_sec != sec || (long)st.st_mtim.tv_nsec != nsec)
            return 0;
    }
    return 1;
}

int bcache_get(Arena *a, const char *key, const char *dest) {
    const char *dir = cache_dir(a);
    if (!dir || !key)
        return -1;
    const char *path = arena_printf(a, "%s/%s.so", dir, key);
    if (access(path, R_OK) != 0 || !deps_unchanged(a, arena_printf(a, "%s/%s.dep", dir, key)) ||
        copy_file(path, dest) != 0)
        return -1;
    utimensat(AT_FDCWD, path, NULL, 0); /* recently used */
    return 0;
}

void bcache_drop(Arena *a, const char *key) {
    const char *dir = cache_dir(a);
    if (dir && key) {
        unlink(arena_printf(a, "%s/%s.so", dir, key));
        unlink(arena_printf(a, "%s/%s.dep", dir, key));
    }
}

/* Removes the least recently used entries beyond SNNC_CACHE_MAX. */
static void prune(Arena *a, const char *dir) {
    const char *env = getenv("SNNC_CACHE_MAX");
    long max = env && *env ? strtol(env, NULL, 10) : CACHE_MAX;
    DIR *d = opendir(dir);
    if (!d || max < 1) {
        if (d)
            closedir(d);
        return;
    }
    typedef struct Entry {
        const char *path;
        struct timespec t;
    } Entry;
    VEC(Entry) all = {0};
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        struct stat st;
        const char *path = arena_printf(a, "%s/%s", dir, de->d_name);
        if (n == 35 && !strcmp(de->d_name + 32, ".so") && stat(path, &st) == 0) {
            Entry e = {path, st.st_mtim};
            vec_push(a, &all, e);
        }
    }
    closedir(d);
    while (all.len > max) { /* the oldest out, one at a time: a few more than max at most */
        int old = 0;
        for (int i = 1; i < all.len; i++)
            if (all.items[i].t.tv_sec < all.items[old].t.tv_sec ||
                (all.items[i].t.tv_sec == all.items[old].t.tv_sec && all.items[i].t.tv_nsec < all.items[old].t.tv_nsec))
                old = i;
        unlink(all.items[old].path);
        char *dep = arena_strdup(a, all.items[old].path); /* <key>.so: its <key>.dep */
        strcpy(dep + strlen(dep) - 3, ".dep");
        unlink(dep);
        all.items[old] = all.items[--all.len];
    }
}

void bcache_put(Arena *a, const char *key, const char *src, const char *depfile, const char *build_dir) {
    const char *dir = cache_dir(a);
    if (!dir || !key)
        return;
    const char *tmp = arena_printf(a, "%s/.%s.%ld.tmp", dir, key, (long)getpid());
    const char *path = arena_printf(a, "%s/%s.so", dir, key);
    /* the list first: an object is never seen without it */
    if (write_deps(a, tmp, depfile, build_dir) != 0 || rename(tmp, arena_printf(a, "%s/%s.dep", dir, key)) != 0 ||
        copy_file(src, tmp) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return;
    }
    prune(a, dir);
}

int bcache_answer(Arena *a, const char *key) {
    const char *dir = cache_dir(a);
    if (!dir || !key)
        return -1;
    FILE *f = fopen(arena_printf(a, "%s/%s.txt", dir, key), "r");
    int v = -1;
    if (f) {
        if (fscanf(f, "%d", &v) != 1 || (v != 0 && v != 1))
            v = -1;
        fclose(f);
    }
    return v;
}

void bcache_keep_answer(Arena *a, const char *key, int answer) {
    const char *dir = cache_dir(a);
    if (!dir || !key)
        return;
    const char *tmp = arena_printf(a, "%s/.%s.%ld.tmp", dir, key, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f, "%d\n", answer);
    if (fclose(f) != 0 || rename(tmp, arena_printf(a, "%s/%s.txt", dir, key)) != 0)
        unlink(tmp);
}
