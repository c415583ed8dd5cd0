/*
 * testutil.h: the checking macros of the runtime's C unit tests. Each test
 * program includes it once; a failed check prints its file, line and
 * condition and is counted in `failures`, and the program goes on, so one
 * run reports every failure. test_main_end prints the verdict. Tests
 * that write files (compiled with _POSIX_C_SOURCE) also get a scratch
 * folder: scratch_dir and path_of.
 */
#ifndef SNNRT_TESTUTIL_H
#define SNNRT_TESTUTIL_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int failures;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            printf("%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                    \
        }                                                                  \
    } while (0)

/* A call that must succeed; on failure its message is printed. */
#define CHECK_OK(call, err)                                                \
    do {                                                                   \
        if ((call) != 0) {                                                 \
            printf("%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call,    \
                   err);                                                   \
            failures++;                                                    \
        }                                                                  \
    } while (0)

/* |got - want| <= tol * max(1, |want|) */
#define CHECK_NEAR(got, want, tol)                                         \
    do {                                                                   \
        double g_ = (got), w_ = (want);                                    \
        if (!(fabs(g_ - w_) <= (tol) * (fabs(w_) > 1 ? fabs(w_) : 1))) {   \
            printf("%s:%d: %s = %.17g, expected %.17g\n", __FILE__,        \
                   __LINE__, #got, g_, w_);                                \
            failures++;                                                    \
        }                                                                  \
    } while (0)

/* Whether s contains sub; says what it lacks when not. */
static inline int contains(const char *s, const char *sub)
{
    if (!strstr(s, sub)) {
        printf("  message \"%s\"\n  lacks \"%s\"\n", s, sub);
        return 0;
    }
    return 1;
}

static inline int test_main_end(const char *what)
{
    if (failures) {
        printf("%d checks failed\n", failures);
        return 1;
    }
    printf("all %s checks passed\n", what);
    return 0;
}

#ifdef _POSIX_C_SOURCE
#include <errno.h>
#include <sys/stat.h>

/* The scratch folder of a test that writes files, named by argv[1]. */
static const char *dir;

/* dir/name, in one of four rotating buffers. */
static inline char *path_of(const char *name)
{
    static char bufs[4][1024];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

/* Sets dir from the command line and creates it; 0, or the exit status. */
static inline int scratch_dir(int argc, char **argv)
{
    if (argc != 2) {
        printf("usage: %s FOLDER\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        printf("cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    return 0;
}
#endif

#endif /* SNNRT_TESTUTIL_H */
