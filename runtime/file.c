/*
 * file.c: snnrt_write_atomic, the one way the runtime writes a file; and
 * snnrt_mem_open, bytes in memory read as a file.
 *
 * A reader must see either the old file or the whole new one, never a
 * prefix, even if the writer is killed or the machine loses power. So the
 * bytes go to a temporary file in the same folder (rename is atomic only
 * within one file system), which is flushed to disk with fsync before it is
 * renamed over the target; the folder is then fsynced so that the rename
 * itself is durable. The temporary name starts with '.' and ends in the
 * process id and a counter, and is created with O_EXCL so that two writers
 * never share one. On any failure the temporary file is removed; a writer
 * killed before it could remove it leaves it behind, and
 * snnrt_remove_stale_temps, knowing the name's form, removes it later once
 * its process is gone.
 *
 * This file is POSIX (open, fsync, rename, fmemopen), unlike the rest of
 * the runtime, which is ISO C.
 */
#define _POSIX_C_SOURCE 200809L

#include "snnrt.h"
#include "rtbuf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

FILE *snnrt_mem_open(const void *data, size_t size)
{
    static const char none[1];
    /* read-only: fmemopen does not write through a "rb" stream */
    return fmemopen((void *)(size ? data : none), size, "rb");
}

static int file_error(char *err, size_t errlen, const char *path,
                      const char *what, int errnum)
{
    if (errlen)
        snprintf(err, errlen, "%s: %s: %s", path, what, strerror(errnum));
    return -1;
}

/* Creates "DIR/.BASE.tmpPID.K" for the first free K; returns the fd and
   leaves the name in *tmp (malloc'd), or -1 with errno set. */
static int open_temp(const char *path, char **tmp)
{
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = path + dirlen;
    size_t size = strlen(path) + 64;
    int k;
    *tmp = (char *)malloc(size);
    if (!*tmp) {
        errno = ENOMEM;
        return -1;
    }
    for (k = 0; k < 1000; k++) {
        int fd;
        snprintf(*tmp, size, "%.*s.%s.tmp%ld.%d", (int)dirlen, path, base,
                 (long)getpid(), k);
        fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            errno = EIO;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Makes the rename durable; a folder that cannot be fsynced (some file
   systems refuse) is not an error, the data itself is already on disk. */
static void sync_folder(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int fd;
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (slash && n == 0)
        n = 1; /* "/name": the root */
    dir = (char *)malloc(n + 2);
    if (!dir)
        return;
    if (slash)
        memcpy(dir, path, n);
    else
        dir[n++] = '.';
    dir[n] = '\0';
    fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

/* Writes, flushes and closes fd (closed in every case); on failure *what
   says which step failed and errno why. */
static int fill_temp(int fd, const void *data, size_t len, const char **what)
{
    int rc = -1, e = 0;
    *what = "cannot write";
    if (write_all(fd, (const char *)data, len) == 0) {
        *what = "cannot flush to disk";
        if (fsync(fd) == 0)
            rc = 0;
    }
    e = errno;
    if (close(fd) != 0 && rc == 0) {
        *what = "cannot close";
        return -1;
    }
    errno = e;
    return rc;
}

int snnrt_write_atomic(const char *path, const void *data, size_t len,
                       char *err, size_t errlen)
{
    struct stat st;
    char *tmp = NULL;
    const char *what;
    int fd, e;
    if (!path || !*path || path[strlen(path) - 1] == '/')
        return file_error(err, errlen, path ? path : "(null)",
                          "not a file name", EINVAL);
    if (len > 0 && !data)
        return file_error(err, errlen, path, "no data", EINVAL);
    fd = open_temp(path, &tmp);
    if (fd < 0) {
        e = errno;
        free(tmp);
        return file_error(err, errlen, path,
                          "cannot create a temporary file beside it", e);
    }
    /* keep the permissions of the file being replaced */
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
        fchmod(fd, st.st_mode & 07777);
    if (fill_temp(fd, data, len, &what) == 0) {
        what = "cannot rename the temporary file over it";
        if (rename(tmp, path) == 0) {
            free(tmp);
            sync_folder(path);
            return 0;
        }
    }
    e = errno;
    unlink(tmp);
    free(tmp);
    return file_error(err, errlen, path, what, e);
}

int snnrt_temp_name_pid(const char *name, long *pid)
{
    /* ".BASE.tmpPID.K": the last ".tmp" is followed by digits, '.', digits */
    const char *t = NULL, *p, *q;
    long v = 0;
    if (name[0] != '.')
        return 0;
    for (p = strstr(name + 1, ".tmp"); p; p = strstr(p + 1, ".tmp"))
        t = p;
    if (!t || t == name + 1)
        return 0;
    for (p = t + 4; *p >= '0' && *p <= '9'; p++) {
        if (v > 99999999)
            return 0;
        v = v * 10 + (*p - '0');
    }
    if (p == t + 4 || *p != '.' || v <= 0)
        return 0;
    for (q = p + 1; *q >= '0' && *q <= '9'; q++)
        ;
    if (q == p + 1 || *q)
        return 0;
    *pid = v;
    return 1;
}

int snnrt_remove_stale_temps(const char *dir,
                             void (*removed)(const char *name, long pid,
                                             void *ctx),
                             void *ctx)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    if (!d)
        return -1;
    while ((de = readdir(d)) != NULL) {
        long pid;
        char *path;
        size_t size;
        if (!snnrt_temp_name_pid(de->d_name, &pid) || pid == (long)getpid())
            continue;
        /* only a process that does not exist: EPERM means it runs as
           another user, and its file is kept */
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        size = strlen(dir) + strlen(de->d_name) + 2;
        path = (char *)malloc(size);
        if (!path)
            break;
        snprintf(path, size, "%s/%s", dir, de->d_name);
        if (unlink(path) == 0) {
            n++;
            if (removed)
                removed(de->d_name, pid, ctx);
        }
        free(path);
    }
    closedir(d);
    return n;
}

void snnrt_buf_put(SnnrtBuf *b, const void *p, size_t n)
{
    if (b->failed || n == 0)
        return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        char *d;
        while (cap - b->len < n) {
            if (cap > (size_t)-1 / 2) {
                b->failed = 1;
                return;
            }
            cap *= 2;
        }
        d = (char *)realloc(b->data, cap);
        if (!d) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}
