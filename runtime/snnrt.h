/*
 * snnrt.h: the public interface of the snnc runtime library: float32
 * tensors, the .npy, safetensors and IDX file formats, an atomic file
 * writer, and what `snnc train` needs around generated code: losses over the
 * outputs of every step, optimizers and learning-rate schedules (PyTorch's
 * semantics), and SVG charts: training curves and spike rasters.
 *
 * Every file this library reads may be hostile: readers bound every length
 * by the real file size and by fixed limits, check every product for
 * overflow, and never trust a size that a header states. Every function
 * that can fail returns 0 on success or -1 on failure (the numeric
 * functions of losses, optimizers and schedules cannot fail and say what
 * they return); on failure it writes a one-line
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

/* The same, reading only the first `rows` entries of the first dimension
   where the file holds more (rows < 0: all): the header and the file's size
   are checked whole, the data after those rows is not read; shape[0] is
   then rows, and *file_rows (when file_rows is not NULL) the header's
   count. What --train-limit and --test-limit read. */
int snnrt_npy_read_first(const char *path, long long rows, SnnrtTensor *out,
                         long long *file_rows, char *err, size_t errlen);

/* The same for the bytes data[0..size) of such a file, which messages call
   name (fuzz/ feeds the reader this way, without files). */
int snnrt_npy_read_mem(const void *data, size_t size, const char *name,
                       SnnrtTensor *out, char *err, size_t errlen);

/* Writes t as a version 1.0 .npy file of <f4 whose data starts at a
   multiple of 64 bytes, atomically (see snnrt_write_atomic). */
int snnrt_npy_write(const char *path, const SnnrtTensor *t, char *err,
                    size_t errlen);

/* ---- integer tables (.npy) ---- */

#define SNNRT_TABLE_MAX_COLS 16
#define SNNRT_TABLE_NAME 32

/* A table of integers read exactly (not through float32): event lists. */
typedef struct SnnrtTable {
    long long rows;
    int cols;
    /* a structured array's field names, in order; "" for a plain array */
    char names[SNNRT_TABLE_MAX_COLS][SNNRT_TABLE_NAME];
    long long *data; /* rows x cols, row-major; malloc'd, never NULL after
                        a successful read */
} SnnrtTable;

/* Reads a .npy file of integers (any of |i1 <i2 <i4 <i8 |u1 <u2 <u4 <u8,
   and |b1 as 0 or 1) as a table: [N] is one column, [N, C] C columns (C
   from 1 to SNNRT_TABLE_MAX_COLS), and a one-dimensional structured array
   (descr a list of ('name', 'type') fields, packed, as NumPy writes them)
   one column per field. Float types and uint64 values above 2^63 - 1 are
   refused; everything else as snnrt_npy_read. *out is left zeroed on
   failure. */
int snnrt_npy_read_table(const char *path, SnnrtTable *out, char *err,
                         size_t errlen);
int snnrt_npy_read_table_mem(const void *data, size_t size, const char *name,
                             SnnrtTable *out, char *err, size_t errlen);
void snnrt_table_free(SnnrtTable *t);

/* The same table row by row, without holding it: begin (may be NULL) gets
   its rows, cols and names (data NULL) before any row, row each row's cols
   integers. A callback returns 0 to go on, SNNRT_SCAN_STOP to end the scan
   there as a success (the rows after it are not read), and anything else
   to end it as a failure with the message it wrote into err. */
#define SNNRT_SCAN_STOP 1
typedef struct SnnrtTableScan {
    int (*begin)(void *ctx, const SnnrtTable *shape, char *err, size_t errlen);
    int (*row)(void *ctx, long long r, const long long *vals, char *err,
               size_t errlen);
    void *ctx;
} SnnrtTableScan;
int snnrt_npy_scan_table(const char *path, const SnnrtTableScan *scan,
                         char *err, size_t errlen);
int snnrt_npy_scan_table_mem(const void *data, size_t size, const char *name,
                             const SnnrtTableScan *scan, char *err,
                             size_t errlen);

/* ---- event lists (events.c) ---- */

/* How a network's `encode events(...)` input bins events into frames
   (docs/language.md, "Event input"). */
typedef struct SnnrtEventSpec {
    int channels;       /* 1 (polarities merged) or 2 (p = 0, p = 1) */
    long long height, width;
    int steps;          /* T bins */
    long long window;   /* t in [0, window); bin = t * T / window */
    int binary;         /* a bin holds 1 when any event fell in it, else the count */
} SnnrtEventSpec;

/* The samples of an event file, checked against a spec. */
typedef struct SnnrtEvents {
    long long samples;
    long long file_samples; /* the offsets file's count: more than samples after
                               snnrt_events_read_first */
    long long *offsets;  /* samples + 1: sample i is events offsets[i] .. offsets[i+1] - 1 */
    long long count;     /* events */
    long long *t;        /* per event */
    int *x, *y;
    unsigned char *p;
} SnnrtEvents;

/* Reads the events of `path` and, when the file exists, the samples'
   offsets from the file beside it whose name ends in ".offsets.npy"
   instead of ".npy" (without it the file is one sample), checking every
   event against spec; errors name the file, the sample and the event. */
int snnrt_events_read(const char *path, const SnnrtEventSpec *spec,
                      SnnrtEvents *out, char *err, size_t errlen);
/* The same, reading only the events of the first `samples` samples where
   the file holds more (samples < 0: all): the offsets are read and checked
   whole, and the event file's header against them, but the events after
   those samples are neither read nor checked. What --train-limit and
   --test-limit read. */
int snnrt_events_read_first(const char *path, const SnnrtEventSpec *spec, long long samples,
                            SnnrtEvents *out, char *err, size_t errlen);
/* The same from bytes in memory; offsets may be NULL (one sample). */
int snnrt_events_read_mem(const void *events, size_t size,
                          const void *offsets, size_t osize,
                          const char *name, const SnnrtEventSpec *spec,
                          SnnrtEvents *out, char *err, size_t errlen);
void snnrt_events_free(SnnrtEvents *e);
/* Bins sample i into T frames of channels x height x width floats, frame
   k at dst + k * stride (zeroed here first). */
void snnrt_events_bin(const SnnrtEvents *e, const SnnrtEventSpec *spec,
                      long long i, float *dst, size_t stride);

/* ---- safetensors ---- */

typedef struct SnnrtStEntry {
    char *name; /* malloc'd, valid UTF-8, no NUL inside */
    SnnrtTensor t;
} SnnrtStEntry;

typedef struct SnnrtStFile {
    int n;
    SnnrtStEntry *entries; /* sorted by name (strcmp order) */
    int nmeta;             /* "__metadata__" pairs, sorted by key */
    char **meta_keys;      /* malloc'd, nmeta strings (NULL when 0) */
    char **meta_values;    /* malloc'd, nmeta strings (NULL when 0) */
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
   strings; its pairs are kept in meta_keys and meta_values (keys must be
   distinct, and neither may contain a NUL character). NaN and Inf are not
   rejected here: call snnrt_tensor_check_finite. */
int snnrt_st_read(const char *path, SnnrtStFile *out, char *err,
                  size_t errlen);

/* The same for the bytes data[0..size) of such a file, called name. */
int snnrt_st_read_mem(const void *data, size_t size, const char *name,
                      SnnrtStFile *out, char *err, size_t errlen);

/* The entry called name, or NULL. */
const SnnrtStEntry *snnrt_st_find(const SnnrtStFile *f, const char *name);

/* The "__metadata__" value stored under key, or NULL. */
const char *snnrt_st_meta(const SnnrtStFile *f, const char *key);

/* Frees everything *f owns and zeroes it; f may be NULL. */
void snnrt_st_free(SnnrtStFile *f);

/* Writes n tensors as a safetensors file of F32, atomically. Names must be
   distinct, valid UTF-8 and not "__metadata__"; they are written in strcmp
   order and the header is padded with spaces to a multiple of 8 bytes so
   that the data is 8-byte aligned. */
int snnrt_st_write(const char *path, int n, const char *const *names,
                   const SnnrtTensor *const *tensors, char *err,
                   size_t errlen);

/* snnrt_st_write with a "__metadata__" object of nmeta string pairs
   (keys[i] -> values[i]), written first in the header with its keys in
   strcmp order; keys must be distinct, and keys and values valid UTF-8.
   With nmeta 0 the file is exactly what snnrt_st_write makes. */
int snnrt_st_write_meta(const char *path, int n, const char *const *names,
                        const SnnrtTensor *const *tensors, int nmeta,
                        const char *const *keys, const char *const *values,
                        char *err, size_t errlen);

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

/* The temporary name snnrt_write_atomic uses for a file BASE, ".BASE.tmpPID.K":
   nonzero when name (a file name, no folder) has that form, with the
   writer's process id in *pid. */
int snnrt_temp_name_pid(const char *name, long *pid);

/* Removes from folder dir the temporary files that writers which no longer
   run left behind (killed while writing): names of the form above whose
   process does not exist (kill(pid, 0) fails with ESRCH). A live process's
   file, or one whose process cannot be told (another user's), is kept.
   removed (may be NULL) is called with each file's name and process id.
   Returns how many were removed, or -1 when dir cannot be read. */
int snnrt_remove_stale_temps(const char *dir,
                             void (*removed)(const char *name, long pid,
                                             void *ctx),
                             void *ctx);

/* ---- IDX (MNIST, Fashion-MNIST) ---- */

/* Where Debian's dataset-fashion-mnist package installs the four files. */
#define SNNRT_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

#define SNNRT_IDX_MAX_DIMS 4
/* The most data bytes an IDX file may hold (2^31; MNIST's training images
   are 47,040,000). */
#define SNNRT_IDX_MAX_BYTES (1ull << 31)

/* An IDX array of unsigned bytes in C (row-major) order. */
typedef struct SnnrtIdx {
    int ndim;            /* 1..SNNRT_IDX_MAX_DIMS */
    long long shape[4];  /* shape[0..ndim) */
    size_t count;        /* product of shape */
    unsigned char *data; /* malloc'd, count bytes; never NULL after a
                            successful read, even when count is 0 */
    long long file_rows; /* shape[0] as the file's header gives it: more
                            than shape[0] after snnrt_idx_read_first */
} SnnrtIdx;

/* Reads an IDX file into *out (overwritten, not freed; zeroed on failure).
   The file may be plain or gzip-compressed (recognised by its first two
   bytes, 1f 8b; several concatenated gzip members are one stream, as for
   gunzip). Only unsigned-byte data (type 0x08) with 1 to 4 dimensions is
   accepted; sizes are big-endian. Rejected with a message: a bad magic
   number, other element types, 0 or more than 4 dimensions, a shape whose
   data exceeds SNNRT_IDX_MAX_BYTES, a file (or decompressed stream) shorter
   or longer than its header says, corrupt or truncated gzip data, and bytes
   after the gzip stream. Decompression stops at what the header allows
   (plus a bounded look past it to report trailing data), so a gzip bomb
   costs no more than an honest file. */
int snnrt_idx_read(const char *path, SnnrtIdx *out, char *err,
                   size_t errlen);

/* The same, reading only the first `rows` entries of the first dimension
   where the file holds more (rows < 0: all): every check of the header
   and of the file's size is made, but the data after those rows is not
   read, nor (compressed) decompressed, nor checked; shape[0] is then rows
   and file_rows the header's count. What --train-limit and --test-limit
   read. */
int snnrt_idx_read_first(const char *path, long long rows, SnnrtIdx *out, char *err, size_t errlen);

/* The same for the bytes data[0..size) of such a file, called name. */
int snnrt_idx_read_mem(const void *data, size_t size, const char *name,
                       SnnrtIdx *out, char *err, size_t errlen);

/* Frees x->data and zeroes *x; x may be NULL. */
void snnrt_idx_free(SnnrtIdx *x);

/* Finds the image and label files of the training split (train != 0) or
   the test split (train == 0) in folder dir, trying for the prefix P =
   "train" or "t10k" the names P-images-idx3-ubyte, P-images.idx3-ubyte and
   each with ".gz" (and P-labels-idx1-ubyte, P-labels.idx1-ubyte for the
   labels), the uncompressed name first. On success the paths are in images
   and labels (n bytes each) and 0 is returned. On failure -1 is returned,
   labels is "" and images holds the message ("DIR: no training images
   (looked for train-images-idx3-ubyte[.gz], ...)"), since this function has
   no separate err buffer. */
int snnrt_idx_dataset_files(const char *dir, int train, char *images,
                            char *labels, size_t n);

/* ---- losses ---- */

/* How the outputs of the T steps become one logit per class; the same
   order as the compiler's Readout (compiler/ir/ir.h). */
typedef enum SnnrtReadout {
    SNNRT_RO_STEPS, /* every step's output; as logits: mean over steps */
    SNNRT_RO_COUNT, /* sum over steps */
    SNNRT_RO_RATE,  /* mean over steps */
    SNNRT_RO_MEAN,  /* mean over steps */
    SNNRT_RO_LAST,  /* the last step */
    SNNRT_RO_MAX    /* maximum over steps; the gradient goes to the first
                       step that attains it */
} SnnrtReadout;

typedef enum SnnrtLossKind {
    SNNRT_LOSS_CE,       /* cross-entropy of the readout logits */
    SNNRT_LOSS_TET,      /* (1 - lambda) * mean over t of CE(y[t]) +
                            lambda * mean of (y - phi)^2 */
    SNNRT_LOSS_MSE_COUNT /* snnTorch's mse_count_loss on spike counts */
} SnnrtLossKind;

typedef struct SnnrtLoss {
    SnnrtLossKind kind;
    int readout;           /* an SnnrtReadout: the logits of CE and the
                              prediction of CE and TET */
    double lambda, phi;    /* TET: weight and target of the MSE term */
    double correct_rate;   /* MSE_COUNT: the label's target count is
                              (int)(T * correct_rate), as snnTorch
                              truncates it */
    double incorrect_rate; /* and the other classes' (int)(T * this) */
} SnnrtLoss;

/* The batch-mean loss of the outputs y[T][B][K] (every step, float) for
   labels[B] in [0, K). When dy is not NULL it receives dL/dy, [T][B][K].
   When ncorrect is not NULL, the number of samples whose prediction equals
   the label is added to it: the argmax (the first on ties) of the readout
   logits for CE and TET, of the spike counts (sum over t) for MSE_COUNT.
     CE: PyTorch's cross_entropy (mean over the batch) of the logits.
     TET: per-step cross-entropy averaged over t, weighted (1 - lambda),
       plus lambda times the mean over t, b, k of (y - phi)^2.
     MSE_COUNT: mean over b, k of (count - target)^2, divided by T, where
       count is the sum over t and target is (int)(T * correct_rate) for
       the label and (int)(T * incorrect_rate) for the other classes.
   Computed in double with log-sum-exp. Returns NaN (dy zeroed, ncorrect
   unchanged) if T, B or K is not positive, the kind or readout is unknown,
   or a label is out of range. */
double snnrt_loss(const SnnrtLoss *l, int T, int B, int K, const float *y,
                  const int *labels, float *dy, int *ncorrect);

/* ---- optimizers and learning-rate schedules ---- */

typedef enum SnnrtOptKind {
    SNNRT_SGD,  /* torch.optim.SGD: momentum, nesterov, weight decay
                   (dampening 0) */
    SNNRT_ADAM, /* torch.optim.Adam: weight decay added to the gradient */
    SNNRT_ADAMW /* torch.optim.AdamW: decoupled weight decay */
} SnnrtOptKind;

/* One optimizer over n floats of parameters, which the caller may update in
   several ranges per step (one per tensor). m holds SGD's momentum buffer
   or Adam's first moment, v Adam's second moment. */
typedef struct SnnrtOptim {
    SnnrtOptKind kind;
    double lr, momentum, weight_decay, beta1, beta2, eps;
    int nesterov;
    long long step; /* steps begun; the first step is 1 */
    size_t n;
    float *m, *v;   /* malloc'd, n floats each */
} SnnrtOptim;

/* Allocates m and v (2n floats, zeroed) and sets n and step = 0; kind and
   the hyperparameters are left as they are, for the caller to set before
   or after. err names the optimizer as "optimizer". */
int snnrt_optim_init(SnnrtOptim *o, size_t n, char *err, size_t errlen);

/* Frees m and v and zeroes the state (n, step, m, v); o may be NULL. */
void snnrt_optim_free(SnnrtOptim *o);

/* Begins a step: step += 1. Call once per step, before its updates. */
void snnrt_optim_begin_step(SnnrtOptim *o);

/* Updates p[0..count) with gradients g[0..count), using the state at
   [off, off + count) of m and v, exactly as PyTorch 1.13's single-tensor
   optimizers do in float32 (the same operations in the same order, fused
   multiply-adds where PyTorch's CPU kernels fuse), with learning rate lr
   (which overrides o->lr, for schedules). SGD's momentum buffer starts as
   the first step's gradient, as PyTorch's does. A range outside [0, n) is
   ignored. */
void snnrt_optim_update(SnnrtOptim *o, size_t off, float *p, const float *g,
                        size_t count, double lr);

/* Whether one of v[0..n) is NaN or infinite (its exponent bits all set):
   every value is read, without branching, in the widest vectors the CPU
   has. */
int snnrt_any_nonfinite(const float *v, size_t n);

/* torch.nn.utils.clip_grad_norm_ with norm type 2 over the ranges
   g[off[i] .. off[i] + count[i]), i < nranges: the total 2-norm of all of
   them; when max_norm / (norm + 1e-6) is below 1, every range is scaled by
   that factor. Returns the total norm before clipping (a NaN or infinite
   norm scales the gradients as PyTorch does: to NaN, or to 0 and NaN). */
double snnrt_clip_grad_norm(float *g, const size_t *off, const size_t *count,
                            int nranges, double max_norm);

/* How clip_grad_norm adds the squares: in double, in blocks of
   SNNRT_CLIP_BLOCK consecutive gradients (counted through the ranges as one
   array); in a block, lane l of SNNRT_CLIP_LANES adds the squares of the
   block's gradients l, l + 32, l + 64, ... from 0.0 in order, and the
   lanes are then added as a tree: lane l += lane l + w for l < w, for w =
   16, 8, 4, 2, 1, giving lane 0; then the blocks' sums are added in order.
   A caller that sums the blocks elsewhere (a GPU, a warp a block) and adds
   their sums so gets the same norm; snnrt_clip_coef(sum, max_norm) is then
   the factor, applied (as a float) where it is below 1 or NaN. */
#define SNNRT_CLIP_BLOCK 4096
#define SNNRT_CLIP_LANES 32
double snnrt_clip_coef(double sumsq, double max_norm);

/* CosineAnnealingLR's closed form with T_max = epochs: the learning rate
   of epoch (0 based) is eta_min + (lr0 - eta_min) * (1 + cos(pi * epoch /
   epochs)) / 2; lr0 when epochs <= 0. */
double snnrt_lr_cosine(double lr0, int epoch, int epochs, double eta_min);

/* StepLR: lr0 * gamma^(epoch / step_size), integer division; lr0 when
   step_size <= 0. */
double snnrt_lr_step(double lr0, int epoch, int step_size, double gamma);

/* ---- threads ---- */

/* Losses, optimizer updates and gradient clipping split large arrays over
   OpenMP threads when the library is built with OpenMP; their results are
   the same bits for any thread count. snnrt_threads_set sets the count
   (omp_set_num_threads; n <= 0 leaves it as it is) and returns the count
   now in effect; snnrt_threads_max returns it (omp_get_max_threads: the
   OMP_NUM_THREADS or core count unless set). Both return 1 when the
   library was built without OpenMP, where everything runs on the caller's
   thread. */
int snnrt_threads_set(int n);
int snnrt_threads_max(void);

/* ---- SVG ---- */

/* Writes a line chart of nseries curves to path, atomically: series i is
   named names[i] in the legend and has lens[i] points ys[i][0..lens[i]),
   point j drawn at x = j + 1 (epochs count from 1). Axes with ticks and
   labels (x labelled xlabel), a title, a legend, one polyline per series
   (points that are NaN, infinite or beyond +-1e300 are skipped, joining
   their neighbours), in a self-contained SVG file whose text depends only
   on the arguments. At most 16 series; names, title and xlabel may be
   NULL. */
int snnrt_svg_curves(const char *path, const char *title, int nseries,
                     const char *const *names, const double *const *ys,
                     const int *lens, const char *xlabel, char *err,
                     size_t errlen);

/* Writes a spike raster to path, atomically: steps x neurons cells, where
   spikes[t * stride + i] != 0 means that neuron i spiked at step t (t from
   0; drawn between t and t + 1 on the x axis, neuron 0 at the bottom).
   Every spike is one
   <rect> in the group with id "spikes", which holds nothing else; axes,
   the title and the number of spikes besides. At most
   SNNRT_SVG_MAX_CELLS cells (steps x neurons). */
#define SNNRT_SVG_MAX_CELLS 4000000
int snnrt_svg_raster(const char *path, const char *title, int steps,
                     long neurons, const float *spikes, long stride,
                     char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* SNNRT_H */
