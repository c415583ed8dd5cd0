/*
 * snnrt.h: the public interface of the snnc runtime library: float32
 * tensors, the .npy and safetensors file formats, and an atomic file writer.
 *
 * Every file this library reads may be hostile: readers bound every length
 * by the real file size and by fixed limits, check every product for
 * overflow, and never trust a size that a header states. Every function
 * returns 0 on success or -1 on failure; on failure it writes a one-line
 * message to err (errlen bytes, always NUL-terminated when errlen > 0; err
 * may be NULL when errlen is 0) that starts with the file's path:
 * "PATH: what is wrong". Nothing is printed. Writers never leave a partial
 * file behind: they build the bytes in memory and hand them to
 * snnrt_write_atomic.
 *
 * The header is C99 and C++ clean so that generated code and C++ callers can
 * include it.
 */
#ifndef SNNRT_H
#define SNNRT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SNNRT_MAX_DIMS 8

/* A dense float32 tensor in C (row-major) order. */
typedef struct SnnrtTensor {
    int ndim;                        /* 0..SNNRT_MAX_DIMS; 0 is a scalar */
    long long shape[SNNRT_MAX_DIMS]; /* shape[0..ndim), each >= 0 */
    size_t count;                    /* product of shape (1 for ndim 0) */
    float *data;                     /* malloc'd, count floats; readers
                                        never leave it NULL, even when
                                        count is 0 */
} SnnrtTensor;

/* Allocates t->data for the given shape (zero-filled) and sets the other
   fields; err names the tensor as "tensor". Returns 0 or -1. */
int snnrt_tensor_alloc(SnnrtTensor *t, int ndim, const long long *shape,
                       char *err, size_t errlen);

/* Checks that t is fit to write: ndim in range, no negative dimension,
   count equal to the product of shape, data set when count > 0; the message
   starts with `what`. */
int snnrt_tensor_validate(const SnnrtTensor *t, const char *what,
                          char *err, size_t errlen);

/* Frees t->data and zeroes *t; t may be NULL. */
void snnrt_tensor_free(SnnrtTensor *t);

/* Fails on the first NaN or infinity in t with "WHAT: element [i, j]
   (flat index k) is NaN"; `what` stands where a path would (for instance
   "model.safetensors: tensor 'w1'"). */
int snnrt_tensor_check_finite(const SnnrtTensor *t, const char *what,
                              char *err, size_t errlen);

/* ---- .npy ---- */

/* Reads a .npy file (format versions 1.0, 2.0 and 3.0) into *out, which is
   overwritten (not freed) and left zeroed on failure.
   Accepted element types, all converted to float32:
     <f4 (also =f4), <f8 (also =f8): rounded to nearest; float64 values
       beyond the float32 range become +-Inf;
     |u1 |i1 <i2 <u2 <i4 <u4 <i8 <u8: integer value rounded to nearest
       float32 (exact up to 2^24);
     |b1: 0.0 or 1.0 (any nonzero byte is true).
   "=" is read as little-endian; "|" is accepted only for one-byte types and
   any byte order mark is accepted there. Rejected with a message: big-endian
   data, fortran_order True for arrays of 2 or more dimensions, object,
   structured, string and complex dtypes, more than SNNRT_MAX_DIMS
   dimensions, negative dimensions or dimensions above 2^40, shapes whose
   element count overflows, headers over 1 MiB, data shorter than the header
   says, and bytes after the array. */
int snnrt_npy_read(const char *path, SnnrtTensor *out, char *err,
                   size_t errlen);

/* Writes t as a version 1.0 .npy file of <f4 whose data starts at a
   multiple of 64 bytes, atomically (see snnrt_write_atomic). */
int snnrt_npy_write(const char *path, const SnnrtTensor *t, char *err,
                    size_t errlen);

/* ---- safetensors ---- */

typedef struct SnnrtStEntry {
    char *name; /* malloc'd, valid UTF-8, no NUL inside */
    SnnrtTensor t;
} SnnrtStEntry;

typedef struct SnnrtStFile {
    int n;
    SnnrtStEntry *entries; /* sorted by name (strcmp order) */
} SnnrtStFile;

/* Reads every tensor of a safetensors file into *out (overwritten, zeroed on
   failure). Accepted dtypes: F32; F64 (rounded to nearest, beyond the
   float32 range becomes +-Inf), F16 and BF16 (exact), all converted to
   float32. Any other dtype is an error naming the tensor. The header is
   checked in full: JSON syntax (errors give the byte offset in the file),
   nesting depth <= 64, header length <= 100 MiB, duplicate names, unknown
   fields, shapes whose size overflows, data_offsets that disagree with
   shape and dtype, offsets out of range, overlaps and gaps between tensors,
   and data after the last tensor. "__metadata__" must map strings to
   strings; it is checked and dropped. NaN and Inf are not rejected here:
   call snnrt_tensor_check_finite. */
int snnrt_st_read(const char *path, SnnrtStFile *out, char *err,
                  size_t errlen);

/* The entry called name, or NULL. */
const SnnrtStEntry *snnrt_st_find(const SnnrtStFile *f, const char *name);

/* Frees everything *f owns and zeroes it; f may be NULL. */
void snnrt_st_free(SnnrtStFile *f);

/* Writes n tensors as a safetensors file of F32, atomically. Names must be
   distinct, valid UTF-8 and not "__metadata__"; they are written in strcmp
   order and the header is padded with spaces to a multiple of 8 bytes so
   that the data is 8-byte aligned. */
int snnrt_st_write(const char *path, int n, const char *const *names,
                   const SnnrtTensor *const *tensors, char *err,
                   size_t errlen);

/* One tensor the caller wants from a safetensors file: shape[0..ndim) must
   match the file exactly and dst must hold the product of shape floats. */
typedef struct SnnrtStWant {
    const char *name;
    int ndim;
    const long *shape;
    float *dst;
} SnnrtStWant;

/* The loader that generated code uses (snnrt_st_load in snnrt_stload.inc),
   offered to library callers: loads want[0..n) into their dst buffers. found[i]
   (found may be NULL) is set to 1 for each tensor loaded; a wanted tensor
   that is absent is an error unless allow_missing is nonzero. Tensors in
   the file that are not wanted are ignored. A shape mismatch, or NaN or Inf
   in a loaded tensor, is an error naming the tensor. */
int snnrt_st_load_tensors(const char *path, const SnnrtStWant *want, int n,
                          int allow_missing, unsigned char *found,
                          char *err, size_t errlen);

/* ---- files ---- */

/* Writes len bytes to path atomically: a temporary file in the same folder,
   fsync, rename over path (keeping the permissions of a file that was
   there), fsync of the folder. On failure nothing is left behind and an
   existing file at path is untouched. */
int snnrt_write_atomic(const char *path, const void *data, size_t len,
                       char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* SNNRT_H */
