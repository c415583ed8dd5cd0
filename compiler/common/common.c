/*
 * common.c: arenas, string maps, buffers, files, checked arithmetic and
 * diagnostics.
 *
 * The source table keeps every file the compiler has read, so that a
 * diagnostic can quote the offending line long after lexing has moved on.
 */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- arenas ---- */

struct ArenaBlock {
    ArenaBlock *next;
    size_t used, size;
    max_align_t data[];
};

void *arena_alloc(Arena *a, size_t size) {
    size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (size == 0)
        size = sizeof(max_align_t);
    ArenaBlock *b = a->head;
    if (!b || b->size - b->used < size) {
        size_t cap = size > 65536 ? size : 65536;
        b = calloc(1, sizeof(ArenaBlock) + cap);
        if (!b) {
            fprintf(stderr, "snnc: out of memory\n");
            exit(2);
        }
        b->size = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n) {
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *arena_strdup(Arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

char *arena_printf(Arena *a, const char *fmt, ...) {
    va_list ap, aq;
    va_start(ap, fmt);
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, aq);
    va_end(aq);
    return p;
}

void arena_free(Arena *a) {
    while (a->head) {
        ArenaBlock *n = a->head->next;
        free(a->head);
        a->head = n;
    }
}

void vec_grow(Arena *a, void **items, int *cap, int need, size_t size) {
    if (need <= *cap)
        return;
    int ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    void *p = arena_alloc(a, (size_t)ncap * size);
    if (*items)
        memcpy(p, *items, (size_t)*cap * size);
    *items = p;
    *cap = ncap;
}

/* ---- string maps ---- */

static unsigned str_hash(const char *s) {
    unsigned h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

int *strmap_get(const StrMap *m, const char *key) {
    if (!m->cap)
        return NULL;
    for (unsigned i = str_hash(key) & (unsigned)(m->cap - 1);; i = (i + 1) & (unsigned)(m->cap - 1)) {
        if (!m->keys[i])
            return NULL;
        if (!strcmp(m->keys[i], key))
            return &m->vals[i];
    }
}

int *strmap_put(Arena *a, StrMap *m, const char *key) {
    int *v = strmap_get(m, key);
    if (v)
        return v;
    if ((m->len + 1) * 2 > m->cap) { /* keep it at most half full */
        StrMap n = {NULL, NULL, m->cap ? m->cap * 2 : 64, 0};
        n.keys = arena_alloc(a, (size_t)n.cap * sizeof *n.keys);
        n.vals = arena_alloc(a, (size_t)n.cap * sizeof *n.vals);
        for (int i = 0; i < m->cap; i++)
            if (m->keys[i])
                *strmap_put(a, &n, m->keys[i]) = m->vals[i];
        *m = n;
    }
    unsigned i = str_hash(key) & (unsigned)(m->cap - 1);
    while (m->keys[i])
        i = (i + 1) & (unsigned)(m->cap - 1);
    m->keys[i] = key;
    m->vals[i] = 0;
    m->len++;
    return &m->vals[i];
}

/* ---- checked arithmetic ---- */

int mul_checked(int64_t a, int64_t b, int64_t limit, int64_t *out) {
    if (a < 0 || b < 0)
        return 0;
    if (a != 0 && b > limit / a)
        return 0;
    *out = a * b;
    return *out <= limit;
}

/* ---- buffers ---- */

void buf_vprintf(Buf *b, const char *fmt, va_list ap) {
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    if (n < 0)
        return;
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) {
            fprintf(stderr, "snnc: out of memory\n");
            exit(2);
        }
        b->data = p;
        b->cap = cap;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void buf_printf(Buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void buf_puts(Buf *b, const char *s) { buf_printf(b, "%s", s); }

void buf_free(Buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- files ---- */

char *read_file(const char *path, size_t *len, size_t limit) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *p = malloc(cap);
    if (!p) {
        fclose(f);
        errno = ENOMEM;
        return NULL;
    }
    errno = 0;
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > limit) {
                free(p);
                fclose(f);
                errno = EFBIG;
                return NULL;
            }
            cap *= 2;
            char *q = realloc(p, cap);
            if (!q) {
                free(p);
                fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            p = q;
        }
        size_t got = fread(p + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    /* keep the reason of a read error (a folder gives EISDIR) */
    int bad = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (bad || n > limit) {
        free(p);
        errno = bad ? bad : EFBIG;
        return NULL;
    }
    p[n] = 0;
    if (len)
        *len = n;
    return p;
}

char *read_file_reported(const char *path, size_t *len, size_t limit) {
    char *bytes = read_file(path, len, limit);
    if (!bytes) {
        if (errno == EFBIG)
            error_plain("%s: larger than %zu bytes", path, limit);
        else
            error_plain("%s: %s", path, strerror(errno));
    }
    return bytes;
}

/* The temporary file is named as the runtime names its own (runtime/file.c):
   ".BASE.tmpPID.K" beside the target, so that a run killed while writing
   leaves a file that a later run knows as stale once PID is gone. */
int write_file_atomic(const char *path, const char *data, size_t len) {
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path) + 1 : 0;
    size_t size = strlen(path) + 64;
    char *tmp = malloc(size);
    if (!tmp)
        return -1;
    int fd = -1;
    for (int k = 0; k < 1000 && fd < 0; k++) {
        snprintf(tmp, size, "%.*s.%s.tmp%ld.%d", dirlen, path, path + dirlen, (long)getpid(), k);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        free(tmp);
        return -1;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        off += (size_t)w;
    }
    int ok = off == len && fsync(fd) == 0;
    ok = (close(fd) == 0) && ok;
    if (ok)
        (void)chmod(tmp, 0644);
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        errno = e;
        return -1;
    }
    free(tmp);
    return 0;
}

/* ---- sources and diagnostics ---- */

typedef struct Source {
    char *name;
    char *text;
    size_t len;
    int builtin; /* shipped with snnc (the neuron library), not the user's */
} Source;

static Source *sources;
static int nsources = 1; /* index 0 means "no location" */
static int cap_sources;
static int nerrors;
static Loc last_error;
static FILE *diag_stream;
static Loc use_site; /* diag_set_use: where errors in built-in sources go */
static const char *use_why, *use_note;

int src_add(const char *name, const char *text, size_t len) {
    if (nsources >= cap_sources) {
        cap_sources = cap_sources ? cap_sources * 2 : 8;
        sources = realloc(sources, (size_t)cap_sources * sizeof *sources);
        if (!sources)
            exit(2);
    }
    Source *s = &sources[nsources];
    s->name = strdup(name);
    s->text = malloc(len + 1);
    if (!s->name || !s->text)
        exit(2);
    memcpy(s->text, text, len);
    s->text[len] = 0;
    s->len = len;
    s->builtin = 0;
    return nsources++;
}

void src_mark_builtin(int file) {
    if (file > 0 && file < nsources)
        sources[file].builtin = 1;
}

static int src_builtin(int file) { return file > 0 && file < nsources && sources[file].builtin; }

void diag_set_use(Loc use, const char *why, const char *note) {
    use_site = use;
    use_why = why;
    use_note = note;
}

void diag_clear_use(void) { use_why = use_note = NULL; }

int src_mark(void) { return nsources; }

void src_release(int mark) {
    if (mark < 1)
        mark = 1;
    for (; nsources > mark; nsources--) {
        free(sources[nsources - 1].name);
        free(sources[nsources - 1].text);
    }
    if (nsources == 1) { /* nothing left: the table itself goes too */
        free(sources);
        sources = NULL;
        cap_sources = 0;
    }
}

const char *src_name(int file) {
    return file > 0 && file < nsources ? sources[file].name : "<unknown>";
}

const char *src_text(int file) {
    return file > 0 && file < nsources ? sources[file].text : "";
}

void diag_set_stream(FILE *f) { diag_stream = f; }
int diag_errors(void) { return nerrors; }
void diag_reset(void) {
    nerrors = 0;
    last_error = (Loc){0, 0, 0};
}
Loc diag_last_error(void) { return last_error; }

static const char *kind_name(int kind) {
    return kind == DIAG_ERROR ? "error" : kind == DIAG_WARNING ? "warning" : "note";
}

/* UTF-8 continuation bytes take no column on a terminal. */
static int is_cont(char c) { return ((unsigned char)c & 0xc0) == 0x80; }

/* Print the source line of loc and a caret under its column. Tabs are kept
   in the padding so the caret lines up in a terminal, and a character of
   several UTF-8 bytes takes one column. A long line (a generated file, a
   hostile one) is cut to a window around the column. */
#define SHOW_WIDTH 160
static void show_line(FILE *f, Loc loc) {
    if (loc.file <= 0 || loc.file >= nsources || loc.line <= 0 || !sources[loc.file].len)
        return; /* no line to show (an empty file) */
    const char *p = sources[loc.file].text, *end = p + sources[loc.file].len;
    for (int l = 1; l < loc.line && p < end; p++)
        if (*p == '\n')
            l++;
    if (p >= end && loc.line > 1)
        return;
    const char *e = p;
    while (e < end && *e != '\n')
        e++;
    if (e > p && e[-1] == '\r')
        e--;
    const char *at = p + (loc.col > 1 ? loc.col - 1 : 0);
    if (at > e)
        at = e;
    const char *from = p, *to = e;
    if (e - p > SHOW_WIDTH) {
        from = at - SHOW_WIDTH / 2 > p ? at - SHOW_WIDTH / 2 : p;
        if (from + SHOW_WIDTH > e)
            from = e - SHOW_WIDTH;
        while (from > p && is_cont(*from))
            from--;
        to = from + SHOW_WIDTH;
        while (to < e && is_cont(*to))
            to++;
    }
    const char *pre = from > p ? "..." : "", *post = to < e ? "..." : "";
    fprintf(f, "  %s%.*s%s\n  %s", pre, (int)(to - from), from, post, *pre ? "   " : "");
    for (const char *q = from; q < at; q++)
        if (!is_cont(*q))
            fputc(*q == '\t' ? '\t' : ' ', f);
    fputs("^\n", f);
}

/* After this many errors the rest are counted but not shown: a hostile
   file can hold millions, and each would print its line. */
#define DIAG_MAX_SHOWN 20

void diag_vat(int kind, Loc loc, const char *fmt, va_list ap) {
    FILE *f = diag_stream ? diag_stream : stderr;
    /* an error inside a built-in source while a use is set: reported at the
       user's line, the built-in place as a note */
    Loc at = loc;
    int moved = kind == DIAG_ERROR && use_why && src_builtin(loc.file) && use_site.file > 0 &&
                !src_builtin(use_site.file);
    if (moved)
        at = use_site;
    if (kind == DIAG_ERROR) {
        nerrors++;
        last_error = at;
        if (nerrors == DIAG_MAX_SHOWN + 1)
            fprintf(f, "snnc: note: too many errors; the rest are not shown\n");
    }
    if (nerrors > DIAG_MAX_SHOWN)
        return; /* notes of a hidden error go with it */
    if (at.file > 0)
        fprintf(f, "%s:%d:%d: %s: ", src_name(at.file), at.line, at.col, kind_name(kind));
    else
        fprintf(f, "snnc: %s: ", kind_name(kind));
    vfprintf(f, fmt, ap);
    if (moved)
        fprintf(f, " (%s)", use_why);
    fputc('\n', f);
    show_line(f, at);
    if (moved) {
        fprintf(f, "%s:%d:%d: note: %s\n", src_name(loc.file), loc.line, loc.col, use_note);
        show_line(f, loc);
    }
}

void diag_at(int kind, Loc loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag_vat(kind, loc, fmt, ap);
    va_end(ap);
}

void error_plain(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    Loc none = {0, 0, 0};
    diag_vat(DIAG_ERROR, none, fmt, ap);
    va_end(ap);
}

void internal_error(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "snnc: internal compiler error at %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

void format_float(char *out, size_t n, float f) {
    if (isnan(f)) {
        snprintf(out, n, "NAN");
        return;
    }
    if (isinf(f)) {
        snprintf(out, n, f > 0 ? "INFINITY" : "-INFINITY");
        return;
    }
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(out, n, "%.*g", prec, (double)f);
        if (strtof(out, NULL) == f)
            break;
    }
    /* make it a floating literal: 2 -> 2.0 */
    if (!strpbrk(out, ".eEn"))
        strncat(out, ".0", n - strlen(out) - 1);
}

float *floats_alloc(size_t n) {
    void *p = NULL;
    if (n == 0 || n > SIZE_MAX / sizeof(float) || posix_memalign(&p, 64, n * sizeof(float)) != 0)
        return NULL;
    memset(p, 0, n * sizeof(float));
    return p;
}
