/*
 * write.c: a tree of the structs of nir.h as a NIR file (HDF5).
 *
 * The layout is the one the nir package writes and reads (read.c reads
 * it too): a string dataset "version" and a group "node" holding the top
 * NIRGraph; a node is a group with a string dataset "type" and one
 * dataset per field; a NIRGraph has a group "nodes" (one group per node)
 * and a dataset "edges" of [n, 2] strings. Strings are variable-length
 * UTF-8, as h5py writes them (contiguous, so that read.c reads them back);
 * numbers are stored as each array asks (float64, float32 or int64),
 * little-endian, contiguous and uncompressed. No modification times are
 * recorded, so the same graph gives the same bytes.
 *
 * The file is built in memory (HDF5's core driver, no backing store) and
 * then written by write_file_atomic: a temporary file renamed into place,
 * so an error leaves no partial file. HDF5's own error printing is
 * silenced; a failure is reported once, naming what was being written.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "nir.h"

typedef struct Wr {
    const char *path;
    int failed;
    hid_t dcpl, gcpl; /* creation properties: no modification times, so the same graph gives the same bytes */
    hid_t dxpl;       /* transfer properties: a conversion buffer of 64 KiB (see nir_write) */
} Wr;

/* Records the first failure (later ones follow from it). */
static int check(Wr *W, herr_t rc, const char *what, const char *name) {
    if (rc < 0 && !W->failed) {
        error_plain("%s: cannot write the NIR file: HDF5 failed to write %s '%s'", W->path, what, name);
        W->failed = 1;
    }
    return rc >= 0;
}

static hid_t string_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0 && (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}

/* One dataset of group g: strings (ndim 0: one string) or numbers. */
static void dataset(Wr *W, hid_t g, const NirArray *x) {
    hsize_t dims[8];
    for (int i = 0; i < x->ndim; i++)
        dims[i] = (hsize_t)x->dims[i];
    hid_t sp = x->ndim ? H5Screate_simple(x->ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t ft = H5I_INVALID_HID, mt = H5I_INVALID_HID, d = H5I_INVALID_HID;
    void *data = NULL;
    if (!check(W, sp, "the shape of dataset", x->name))
        return;
    if (x->is_string) {
        ft = string_type();
        mt = ft;
        data = (void *)x->str;
    } else if (x->store == NIR_F64) {
        ft = H5T_IEEE_F64LE;
        mt = H5T_NATIVE_DOUBLE;
        data = x->num;
    } else {
        /* converted here: HDF5 would convert doubles too, but its rounding
           to float32 is its own; the C cast is round to nearest */
        size_t n = (size_t)x->count;
        if (x->store == NIR_F32) {
            float *f = malloc(sizeof(float) * (n + 1));
            for (size_t i = 0; f && i < n; i++)
                f[i] = (float)x->num[i];
            ft = H5T_IEEE_F32LE, mt = H5T_NATIVE_FLOAT, data = f;
        } else {
            long long *v = malloc(sizeof(long long) * (n + 1));
            for (size_t i = 0; v && i < n; i++)
                v[i] = (long long)x->num[i];
            ft = H5T_STD_I64LE, mt = H5T_NATIVE_LLONG, data = v;
        }
        if (!data) {
            error_plain("%s: out of memory writing dataset '%s'", W->path, x->name);
            W->failed = 1;
        }
    }
    if (data && check(W, ft, "the type of dataset", x->name)) {
        d = H5Dcreate2(g, x->name, ft, sp, H5P_DEFAULT, W->dcpl, H5P_DEFAULT);
        if (check(W, d, "dataset", x->name))
            check(W, H5Dwrite(d, mt, H5S_ALL, H5S_ALL, W->dxpl, data), "dataset", x->name);
    }
    if (d >= 0)
        H5Dclose(d);
    if (x->is_string && ft >= 0)
        H5Tclose(ft);
    else if (!x->is_string && x->store != NIR_F64)
        free(data);
    H5Sclose(sp);
}

static void node(Wr *W, hid_t parent, const char *name, const NirNode *n);

static void graph(Wr *W, hid_t g, const NirGraph *G) {
    hid_t nodes = H5Gcreate2(g, "nodes", H5P_DEFAULT, W->gcpl, H5P_DEFAULT);
    if (!check(W, nodes, "group", "nodes"))
        return;
    for (int i = 0; i < G->nodes.len && !W->failed; i++)
        node(W, nodes, G->nodes.items[i].name, &G->nodes.items[i]);
    H5Gclose(nodes);
    NirArray e = {.name = "edges", .is_string = 1, .ndim = 2, .dims = {G->edges.len, 2}};
    const char **s = malloc(sizeof(char *) * (size_t)(2 * G->edges.len + 1));
    if (!s) {
        error_plain("%s: out of memory writing the edges", W->path);
        W->failed = 1;
        return;
    }
    for (int i = 0; i < G->edges.len; i++)
        s[2 * i] = G->edges.items[i].src, s[2 * i + 1] = G->edges.items[i].dst;
    e.count = 2 * (int64_t)G->edges.len;
    e.str = s;
    if (!W->failed)
        dataset(W, g, &e);
    free(s);
}

static void node(Wr *W, hid_t parent, const char *name, const NirNode *n) {
    hid_t g = H5Gcreate2(parent, name, H5P_DEFAULT, W->gcpl, H5P_DEFAULT);
    if (!check(W, g, "the group of node", name))
        return;
    const char *t = n->type;
    NirArray type = {.name = "type", .is_string = 1, .count = 1, .str = &t};
    dataset(W, g, &type);
    for (int i = 0; i < n->fields.len && !W->failed; i++)
        dataset(W, g, &n->fields.items[i]);
    if (n->graph && !W->failed)
        graph(W, g, n->graph);
    H5Gclose(g);
}

int nir_write(const char *path, const NirGraph *root, const char *version) {
    Wr W = {path, 0, H5I_INVALID_HID, H5I_INVALID_HID, H5I_INVALID_HID};
    char name[64];
    nir_h5_begin(name, sizeof name, "snnc-nir-export");
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), f = H5I_INVALID_HID;
    W.dcpl = H5Pcreate(H5P_DATASET_CREATE);
    W.gcpl = H5Pcreate(H5P_GROUP_CREATE);
    /* Writing strings converts them through a buffer that libhdf5 clears
       on every H5Dwrite, 1 MiB by default: with a "type" string in every
       node, that was most of the time of an export (a graph of 100k nodes
       cleared 100 GB). 64 KiB holds 4096 strings; longer ones go through
       in parts. */
    W.dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (check(&W, W.dxpl, "the transfers'", "properties") &&
        check(&W, H5Pset_buffer(W.dxpl, (size_t)1 << 16, NULL, NULL), "the transfers'", "properties") &&
        check(&W, fapl, "the file's", "properties") && check(&W, W.dcpl, "the datasets'", "properties") &&
        check(&W, W.gcpl, "the groups'", "properties") &&
        check(&W, H5Pset_obj_track_times(W.dcpl, 0), "the datasets'", "properties") &&
        check(&W, H5Pset_obj_track_times(W.gcpl, 0), "the groups'", "properties") &&
        check(&W, H5Pset_fapl_core(fapl, (size_t)1 << 16, 0), "the file's", "memory driver"))
        f = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl); /* in memory only */
    if (fapl >= 0)
        H5Pclose(fapl);
    if (W.failed || !check(&W, f, "the file", path)) {
        if (W.dcpl >= 0)
            H5Pclose(W.dcpl);
        if (W.gcpl >= 0)
            H5Pclose(W.gcpl);
        if (W.dxpl >= 0)
            H5Pclose(W.dxpl);
        return -1;
    }
    NirArray v = {.name = "version", .is_string = 1, .count = 1, .str = &version};
    dataset(&W, f, &v);
    NirNode top = {.name = "node", .type = "NIRGraph", .graph = (NirGraph *)root};
    if (!W.failed)
        node(&W, f, "node", &top);
    char *img = NULL;
    ssize_t len = -1;
    if (!W.failed && check(&W, H5Fflush(f, H5F_SCOPE_GLOBAL), "the file", path)) {
        len = H5Fget_file_image(f, NULL, 0);
        img = len > 0 ? malloc((size_t)len) : NULL;
        if (!img || H5Fget_file_image(f, img, (size_t)len) != len)
            check(&W, -1, "the image of the file", path);
    }
    if (H5Fclose(f) < 0)
        check(&W, -1, "the file", path);
    H5Pclose(W.dcpl);
    H5Pclose(W.gcpl);
    H5Pclose(W.dxpl);
    if (!W.failed && write_file_atomic(path, img, (size_t)len) != 0) {
        error_plain("%s: cannot write: %s", path, strerror(errno));
        W.failed = 1;
    }
    free(img);
    return W.failed ? -1 : 0;
}
