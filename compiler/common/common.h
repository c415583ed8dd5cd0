/*
 * common.h: what every stage of snnc shares: arenas, growable arrays,
 * strings, source locations and diagnostics.
 *
 * Memory in the compiler comes from arenas and is released all at once when
 * the compilation ends; nothing is freed piecemeal. Diagnostics are printed
 * as they are raised (file:line:col: error: message, the source line and a
 * caret) and counted (past 20 errors, only counted); a stage checks
 * diag_errors() to decide whether the next may run.
 */
#ifndef SNNC_COMMON_H
#define SNNC_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SNNC_VERSION "0.1.0"

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define NORETURN __attribute__((noreturn))
#else
#define PRINTF_LIKE(f, a)
#define NORETURN
#endif

/* ---- arenas ---- */

typedef struct ArenaBlock ArenaBlock;
typedef struct Arena {
    ArenaBlock *head; /* newest block first */
} Arena;

void *arena_alloc(Arena *a, size_t size); /* zeroed, aligned for any type */
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) PRINTF_LIKE(2, 3);
void arena_free(Arena *a);

/* Growable array in an arena: items/len/cap fields of any struct. */
#define VEC(T) struct { T *items; int len, cap; }
#define vec_push(arena, v, x) \
    (vec_grow((arena), (void **)&(v)->items, &(v)->cap, (v)->len + 1, \
              sizeof *(v)->items), \
     (v)->items[(v)->len++] = (x))
void vec_grow(Arena *a, void **items, int *cap, int need, size_t size);

/* String keys (not copied) to ints, hashed, in an arena: lookups by name
   stay fast in a file of many thousands of layers. */
typedef struct StrMap {
    const char **keys;
    int *vals;
    int cap, len; /* cap is 0 or a power of two */
} StrMap;

int *strmap_get(const StrMap *m, const char *key); /* the value, or NULL when absent */
int *strmap_put(Arena *a, StrMap *m, const char *key); /* the value; 0 when new */

/* ---- checked arithmetic ---- */

/* a*b into *out; returns 0 on overflow (or when the result exceeds limit). */
int mul_checked(int64_t a, int64_t b, int64_t limit, int64_t *out);

/* ---- text buffers ---- */

typedef struct Buf {
    char *data;
    size_t len, cap;
} Buf;

void buf_printf(Buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
void buf_vprintf(Buf *b, const char *fmt, va_list ap);
void buf_puts(Buf *b, const char *s);
void buf_free(Buf *b);

/* ---- files ---- */

/* Whole file into malloc'd memory, NUL-terminated; NULL with errno set. */
char *read_file(const char *path, size_t *len, size_t limit);
/* The same, reporting a failure ("PATH: larger than LIMIT bytes", or
   errno's message) before returning NULL: for a model file given on the
   command line. */
char *read_file_reported(const char *path, size_t *len, size_t limit);
/* n floats, zeroed, at an address aligned to 64 bytes (a cache line, an
   AVX-512 register): generated code's workspaces, whose loops compilers
   would otherwise start with scalar steps up to the next aligned element.
   Free with free(); NULL when out of memory. */
float *floats_alloc(size_t n);
/* Write atomically (temp file in the same folder, fsync, rename). */
int write_file_atomic(const char *path, const char *data, size_t len);

/* ---- source locations and diagnostics ---- */

typedef struct Loc {
    int file; /* index into the source table; 0 = no location */
    int line, col;
} Loc;

int src_add(const char *name, const char *text, size_t len);
/* Marks a source as shipped with snnc (the neuron library): see diag_set_use. */
void src_mark_builtin(int file);
/* The sources read so far, and forgetting those read after such a mark: a
   process that compiles many inputs (the fuzz targets) keeps its table, and
   its memory, from growing with each. */
int src_mark(void);
void src_release(int mark);
const char *src_name(int file);
const char *src_text(int file);

enum { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE };

void diag_at(int kind, Loc loc, const char *fmt, ...) PRINTF_LIKE(3, 4);
void diag_vat(int kind, Loc loc, const char *fmt, va_list ap);
#define error_at(loc, ...) diag_at(DIAG_ERROR, (loc), __VA_ARGS__)
#define note_at(loc, ...) diag_at(DIAG_NOTE, (loc), __VA_ARGS__)
#define warn_at(loc, ...) diag_at(DIAG_WARNING, (loc), __VA_ARGS__)
/* An error with no source location: "snnc: error: ..." */
void error_plain(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* While a use is set, an error located in a built-in source (a neuron
   model of the library, instantiated with the user's arguments) is
   reported at the use, the user's own line, with " (WHY)" after its
   message, then the built-in place as a note saying NOTE. */
void diag_set_use(Loc use, const char *why, const char *note);
void diag_clear_use(void);
int diag_errors(void);
Loc diag_last_error(void); /* where the latest error was reported */
void diag_reset(void); /* no errors counted, no last error */
void diag_set_stream(FILE *f);

/* Internal compiler errors say so and name the compiler's own source line. */
NORETURN void internal_error(const char *file, int line, const char *fmt, ...)
    PRINTF_LIKE(3, 4);
#define ICE(...) internal_error(__FILE__, __LINE__, __VA_ARGS__)
#define ASSERT(c) ((c) ? (void)0 : ICE("assertion failed: %s", #c))

/* Shortest decimal text that reads back as the same float (for C literals). */
void format_float(char *out, size_t n, float f);

#endif
