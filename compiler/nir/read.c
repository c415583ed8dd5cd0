/*
 * read.c: a NIR file (HDF5) into the structs of nir.h.
 *
 * The file is opened from memory (HDF5's core driver over a copy of the
 * bytes), so a file on disk and a fuzzer's input take the same path. The
 * layout is the nir package's: a group "node" holding the top NIRGraph; a
 * node is a group with a string dataset "type" and one dataset per field;
 * a NIRGraph node has a group "nodes" (one group per node) and a dataset
 * "edges" of [n, 2] strings. Other groups ("metadata") are skipped.
 *
 * The file is hostile until read: only hard links are followed (a soft or
 * external link could lead out of the file), datasets stored in external
 * files or virtual datasets are refused, numbers must be integers or
 * floats, and every count is bounded (nir.h) before anything is allocated
 * for it, so that a small file claiming a huge dataset (compressed, or
 * contiguous past its end) is refused, not allocated. HDF5's own error
 * stack is silenced: every failure is reported here, once, naming the
 * node. Every HDF5 object opened is closed on every path.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "nir.h"

typedef struct Rd {
    Arena *a;
    const char *path;
    const unsigned char *img; /* the file */
    size_t len;               /* its size */
    size_t base;              /* where HDF5's addresses count from (after a user block) */
    int osize, lsize;         /* the superblock's sizes of offsets and of lengths */
    const unsigned char *heap; /* the global heap collection last looked into */
    uint64_t *heap_obj;       /* its objects' sizes by index (65536), UINT64_MAX: none */
    int64_t elems; /* numbers read so far */
    int nodes, edges;
} Rd;

/* A name fit to quote in a message (bounded, printable). */
static const char *qn(Arena *a, const char *s) {
    size_t n = strlen(s), k = 0;
    char *o = arena_alloc(a, (n > 80 ? 80 : n) + 4);
    for (size_t i = 0; i < n && k < 80; i++)
        o[k++] = (unsigned char)s[i] >= 32 && (unsigned char)s[i] < 127 ? s[i] : '?';
    if (n > 80)
        memcpy(o + k, "...", 3);
    return o;
}

static void fail(Rd *R, const char *node, const char *type, const char *fmt, ...) PRINTF_LIKE(4, 5);
static void fail(Rd *R, const char *node, const char *type, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    Buf b = {0};
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (node)
        error_plain("%s: node '%s' (%s): %s", R->path, qn(R->a, node), type ? qn(R->a, type) : "?", b.data);
    else
        error_plain("%s: %s", R->path, b.data);
    buf_free(&b);
}

typedef struct Members {
    Rd *R;
    VEC(const char *) names;
    int too_many, too_long;
} Members;

static herr_t member_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g, (void)info;
    Members *m = data;
    size_t len = strnlen(name, NIR_MAX_NAME + 1);
    if (len > NIR_MAX_NAME) {
        m->too_long = 1;
        return -1;
    }
    if (m->names.len >= NIR_MAX_NODES) {
        m->too_many = 1;
        return -1;
    }
    vec_push(m->R->a, &m->names, arena_strndup(m->R->a, name, len));
    return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* The names of a group's members, in name order, by one walk of its links
   in libhdf5's native order, sorted here: libhdf5 1.10 builds a table of a
   group's links for a lookup by index or a walk in name order, and frees
   pointers it never set in one built from damaged links. NULL after
   reporting. */
static const char **members(Rd *R, hid_t g, const char *node, const char *type, int *n) {
    Members m;
    memset(&m, 0, sizeof m);
    m.R = R;
    hsize_t at = 0;
    if (H5Literate(g, H5_INDEX_NAME, H5_ITER_NATIVE, &at, member_cb, &m) < 0) {
        if (m.too_many)
            fail(R, node, type, "the group has more than %d members", NIR_MAX_NODES);
        else if (m.too_long)
            fail(R, node, type, "the name of member %d is longer than 1024 bytes", m.names.len + 1);
        else
            fail(R, node, type, "cannot list the group's members (the file is damaged)");
        return NULL;
    }
    for (int i = 0; i < m.names.len; i++)
        if (!*m.names.items[i]) {
            fail(R, node, type, "member %d has an empty name", i + 1);
            return NULL;
        }
    if (m.names.len > 1)
        qsort(m.names.items, (size_t)m.names.len, sizeof(char *), by_name);
    *n = m.names.len;
    vec_push(R->a, &m.names, NULL);
    return m.names.items;
}

/* Opens member `name` of g, a hard link to a group or a dataset (*kind:
   H5I_GROUP or H5I_DATASET); H5I_INVALID_HID after reporting. */
static hid_t open_member(Rd *R, hid_t g, const char *name, const char *node, const char *type, H5I_type_t *kind) {
    H5L_info_t li;
    if (H5Lget_info(g, name, &li, H5P_DEFAULT) < 0) {
        fail(R, node, type, "cannot read member '%s' (the file is damaged)", qn(R->a, name));
        return H5I_INVALID_HID;
    }
    if (li.type != H5L_TYPE_HARD) {
        fail(R, node, type, "member '%s' is %s link; only plain members are read", qn(R->a, name),
             li.type == H5L_TYPE_SOFT ? "a soft" : li.type == H5L_TYPE_EXTERNAL ? "an external" : "a user-defined");
        return H5I_INVALID_HID;
    }
    hid_t id = H5Oopen(g, name, H5P_DEFAULT);
    if (id < 0) {
        fail(R, node, type, "cannot open member '%s' (the file is damaged)", qn(R->a, name));
        return H5I_INVALID_HID;
    }
    *kind = H5Iget_type(id);
    if (*kind != H5I_GROUP && *kind != H5I_DATASET) {
        H5Oclose(id);
        fail(R, node, type, "member '%s' is neither a group nor a dataset", qn(R->a, name));
        return H5I_INVALID_HID;
    }
    return id;
}

static uint64_t le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* The sizes of the objects of the global heap collection at g (checked by
   heaps_hold), by index, into R->heap_obj. */
static void heap_objects(Rd *R, const unsigned char *g) {
    if (R->heap == g)
        return;
    if (!R->heap_obj)
        R->heap_obj = arena_alloc(R->a, sizeof(uint64_t) * 65536);
    for (int i = 0; i < 65536; i++)
        R->heap_obj[i] = UINT64_MAX;
    size_t hdr = 8 + (size_t)R->lsize, pos = hdr, end = (size_t)le(g + 8, R->lsize);
    while (end - pos >= hdr) {
        unsigned idx = (unsigned)le(g + pos, 2);
        uint64_t osz = le(g + pos + 8, R->lsize);
        uint64_t need = idx ? hdr + ((osz + 7) & ~(uint64_t)7) : osz;
        if (idx)
            R->heap_obj[idx] = osz;
        pos += (size_t)need;
        if (pos >= end)
            break;
    }
    R->heap = g;
}

/* The lengths of a dataset of variable-length strings, checked in the
   file's bytes before libhdf5 reads them: libhdf5 1.10 allocates what an
   element's length says, however large, and trusts the heap object it
   names to exist and to fit. The dataset must be contiguous (as h5py
   writes strings); each element is a length (4 bytes) and a global heap
   id (a collection's address and an object's index, 4 bytes). 0 after
   reporting. */
static int vlen_lengths_hold(Rd *R, hid_t d, int64_t n, const char *name, const char *node, const char *type) {
    hid_t dcpl = H5Dget_create_plist(d);
    H5D_layout_t layout = dcpl >= 0 ? H5Pget_layout(dcpl) : H5D_LAYOUT_ERROR;
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (layout != H5D_CONTIGUOUS) {
        fail(R, node, type, "dataset '%s' keeps its strings %s; snnc reads strings from contiguous datasets "
             "(as h5py writes them)", qn(R->a, name), layout == H5D_CHUNKED ? "in chunks" : "in its header");
        return 0;
    }
    haddr_t at = H5Dget_offset(d);
    if (at == HADDR_UNDEF)
        return 1; /* never written: libhdf5 gives empty strings */
    size_t es = 8 + (size_t)R->osize;
    /* (H5Dget_offset counts from the file's start, a user block included) */
    if (R->osize < 2 || R->osize > 8 || (R->lsize != 2 && R->lsize != 4 && R->lsize != 8) || at > R->len ||
        (size_t)n > (R->len - (size_t)at) / es) {
        fail(R, node, type, "dataset '%s' lies past the end of the file (truncated or damaged)", qn(R->a, name));
        return 0;
    }
    const unsigned char *p = R->img + at;
    uint64_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        const unsigned char *e = p + (size_t)i * es;
        uint64_t l = le(e, 4);
        total += l;
        if (l > NIR_MAX_NAME || total > ((uint64_t)64 << 20)) {
            fail(R, node, type, l > NIR_MAX_NAME ? "dataset '%s' holds a string longer than 1024 bytes"
                                                 : "dataset '%s' holds more than 64 MiB of strings",
                 qn(R->a, name));
            return 0;
        }
        if (l == 0)
            continue; /* nothing is read from the heap */
        uint64_t addr = le(e + 4, R->osize), idx = le(e + 4 + R->osize, 4);
        const unsigned char *g =
            addr < R->len - R->base && R->len - R->base - addr >= 16 ? R->img + R->base + addr : NULL;
        if (!g || memcmp(g, "GCOL\1\0\0\0", 8) || idx == 0 || idx > 65535) {
            fail(R, node, type, "string %lld of dataset '%s' is not in a global heap (the file is damaged)",
                 (long long)i + 1, qn(R->a, name));
            return 0;
        }
        heap_objects(R, g);
        if (R->heap_obj[idx] == UINT64_MAX || R->heap_obj[idx] > l) {
            fail(R, node, type, "string %lld of dataset '%s' names a global heap object that %s (the file is damaged)",
                 (long long)i + 1, qn(R->a, name), R->heap_obj[idx] == UINT64_MAX ? "does not exist" : "is too large");
            return 0;
        }
    }
    return 1;
}

/* Strings of a string dataset into arr->str; 0, or -1 after reporting. */
static int read_strings(Rd *R, hid_t d, hid_t ft, hid_t sp, NirArray *arr, const char *node, const char *type) {
    int rc = -1;
    int64_t n = arr->count;
    arr->str = arena_alloc(R->a, sizeof(char *) * (size_t)(n + 1));
    hid_t mt = H5Tcopy(H5T_C_S1);
    if (mt < 0)
        goto out;
    if (H5Tis_variable_str(ft) > 0) {
        if (!vlen_lengths_hold(R, d, n, arr->name, node, type))
            goto out;
        char **v = calloc((size_t)n + 1, sizeof(char *));
        if (!v || H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Tset_cset(mt, H5Tget_cset(ft)) < 0 ||
            H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
            free(v);
            fail(R, node, type, "cannot read the strings of dataset '%s' (the file is damaged)",
                 qn(R->a, arr->name));
            goto out;
        }
        rc = 0;
        for (int64_t i = 0; i < n; i++) {
            const char *s = v[i] ? v[i] : "";
            size_t len = strnlen(s, NIR_MAX_NAME + 1);
            if (len > NIR_MAX_NAME) {
                fail(R, node, type, "dataset '%s' holds a string longer than 1024 bytes", qn(R->a, arr->name));
                rc = -1;
                break;
            }
            arr->str[i] = arena_strndup(R->a, s, len);
        }
        H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, v);
        free(v);
    } else {
        size_t size = H5Tget_size(ft);
        if (size == 0 || size > NIR_MAX_NAME) {
            fail(R, node, type, "dataset '%s' holds strings of %zu bytes (at most 1024 are read)",
                 qn(R->a, arr->name), size);
            goto out;
        }
        char *buf = calloc((size_t)n + 1, size + 1);
        if (!buf || H5Tset_size(mt, size + 1) < 0 || H5Tset_strpad(mt, H5T_STR_NULLTERM) < 0 ||
            H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
            free(buf);
            fail(R, node, type, "cannot read the strings of dataset '%s' (the file is damaged)",
                 qn(R->a, arr->name));
            goto out;
        }
        for (int64_t i = 0; i < n; i++)
            arr->str[i] = arena_strndup(R->a, buf + (size_t)i * (size + 1), size);
        free(buf);
        rc = 0;
    }
out:
    if (mt >= 0)
        H5Tclose(mt);
    return rc;
}

/* Dataset d (member `name` of a node) into arr; 0, or -1 after reporting. */
static int read_dataset(Rd *R, hid_t d, const char *name, NirArray *arr, const char *node, const char *type) {
    memset(arr, 0, sizeof *arr);
    arr->name = name;
    int rc = -1;
    hid_t ft = H5I_INVALID_HID, sp = H5I_INVALID_HID, dcpl = H5I_INVALID_HID;
    dcpl = H5Dget_create_plist(d);
    if (dcpl < 0) {
        fail(R, node, type, "cannot read dataset '%s' (the file is damaged)", qn(R->a, name));
        goto out;
    }
    if (H5Pget_layout(dcpl) == H5D_VIRTUAL || H5Pget_external_count(dcpl) != 0) {
        fail(R, node, type, "dataset '%s' keeps its data outside the file; only data inside it is read",
             qn(R->a, name));
        goto out;
    }
    ft = H5Dget_type(d);
    sp = H5Dget_space(d);
    if (ft < 0 || sp < 0) {
        fail(R, node, type, "cannot read dataset '%s' (the file is damaged)", qn(R->a, name));
        goto out;
    }
    H5S_class_t sc = H5Sget_simple_extent_type(sp);
    int nd = sc == H5S_NULL ? 0 : H5Sget_simple_extent_ndims(sp);
    if (sc == H5S_NO_CLASS || nd < 0 || nd > 8) {
        fail(R, node, type, "dataset '%s' has %d dimensions (at most 8 are read)", qn(R->a, name), nd);
        goto out;
    }
    hsize_t dims[8] = {0};
    if (nd > 0 && H5Sget_simple_extent_dims(sp, dims, NULL) < 0) {
        fail(R, node, type, "cannot read the shape of dataset '%s' (the file is damaged)", qn(R->a, name));
        goto out;
    }
    int64_t count = sc == H5S_NULL ? 0 : 1;
    for (int i = 0; i < nd; i++) {
        int64_t c;
        if (dims[i] > (hsize_t)NIR_MAX_ELEMS || !mul_checked(count, (int64_t)dims[i], NIR_MAX_ELEMS, &c)) {
            fail(R, node, type, "dataset '%s' is too large (more than %lld values)", qn(R->a, name),
                 (long long)NIR_MAX_ELEMS);
            goto out;
        }
        count = c;
        arr->dims[i] = (int64_t)dims[i];
    }
    arr->ndim = nd;
    arr->count = count;
    H5T_class_t cl = H5Tget_class(ft);
    if (cl == H5T_STRING) {
        arr->is_string = 1;
        if (count > NIR_MAX_EDGES * 2) {
            fail(R, node, type, "dataset '%s' holds %lld strings, more than %d", qn(R->a, name), (long long)count,
                 NIR_MAX_EDGES * 2);
            goto out;
        }
        rc = count ? read_strings(R, d, ft, sp, arr, node, type) : 0;
        goto out;
    }
    if (cl != H5T_INTEGER && cl != H5T_FLOAT) {
        fail(R, node, type, "dataset '%s' holds neither numbers nor strings", qn(R->a, name));
        goto out;
    }
    if (R->elems + count > NIR_MAX_ELEMS) {
        fail(R, node, type, "dataset '%s' has %lld values: the file holds more than %lld in all", qn(R->a, name),
             (long long)count, (long long)NIR_MAX_ELEMS);
        goto out;
    }
    R->elems += count;
    arr->num = arena_alloc(R->a, sizeof(double) * (size_t)(count + 1));
    if (count && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, arr->num) < 0) {
        fail(R, node, type, "cannot read the values of dataset '%s' (truncated, damaged, or compressed with a filter "
             "this HDF5 lacks)", qn(R->a, name));
        goto out;
    }
    rc = 0;
out:
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (ft >= 0)
        H5Tclose(ft);
    if (sp >= 0)
        H5Sclose(sp);
    return rc;
}

static const NirArray *field(const NirNode *n, const char *name) {
    for (int i = 0; i < n->fields.len; i++)
        if (!strcmp(n->fields.items[i].name, name))
            return &n->fields.items[i];
    return NULL;
}

static int read_graph(Rd *R, hid_t g, NirNode *self, int depth);

/* Node group g, named name, into *n; 0, or -1 after reporting. */
static int read_node(Rd *R, hid_t g, const char *name, NirNode *n, int depth) {
    memset(n, 0, sizeof *n);
    n->name = name;
    if (++R->nodes > NIR_MAX_NODES) {
        fail(R, name, "?", "the file has more than %d nodes", NIR_MAX_NODES);
        return -1;
    }
    int count;
    const char **names = members(R, g, name, "?", &count);
    if (!names)
        return -1;
    /* the type first, so that messages about the rest can name it */
    const char *type = "?";
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < count; i++) {
            if ((pass == 0) != !strcmp(names[i], "type"))
                continue;
            H5I_type_t kind;
            hid_t id = open_member(R, g, names[i], name, type, &kind);
            if (id < 0)
                return -1;
            if (kind == H5I_GROUP) {
                H5Oclose(id);
                continue;
            }
            NirArray arr;
            int rc = read_dataset(R, id, names[i], &arr, name, type);
            H5Oclose(id);
            if (rc != 0)
                return -1;
            vec_push(R->a, &n->fields, arr);
            if (pass == 0 && arr.is_string && arr.count == 1)
                type = arr.str[0];
        }
    const NirArray *t = field(n, "type");
    if (!t || !t->is_string || t->count != 1) {
        fail(R, name, "?", t ? "its dataset 'type' is not one string" : "it has no dataset 'type'");
        return -1;
    }
    n->type = t->str[0];
    if (strcmp(n->type, "NIRGraph"))
        return 0;
    if (depth >= NIR_MAX_DEPTH) {
        fail(R, name, n->type, "graphs are nested more than %d deep", NIR_MAX_DEPTH);
        return -1;
    }
    if (H5Lexists(g, "nodes", H5P_DEFAULT) <= 0) {
        fail(R, name, n->type, "it has no group 'nodes'");
        return -1;
    }
    return read_graph(R, g, n, depth + 1);
}

/* The nodes and edges of NIRGraph node `self`, whose group is g. */
static int read_graph(Rd *R, hid_t g, NirNode *self, int depth) {
    NirGraph *G = arena_alloc(R->a, sizeof *G);
    self->graph = G;
    H5I_type_t kind;
    hid_t ng = open_member(R, g, "nodes", self->name, self->type, &kind);
    if (ng < 0)
        return -1;
    int rc = -1, count;
    const char **names = kind == H5I_GROUP ? members(R, ng, self->name, self->type, &count) : NULL;
    if (kind != H5I_GROUP)
        fail(R, self->name, self->type, "its member 'nodes' is not a group");
    if (!names)
        goto out;
    for (int i = 0; i < count; i++) {
        hid_t id = open_member(R, ng, names[i], self->name, self->type, &kind);
        if (id < 0)
            goto out;
        if (kind != H5I_GROUP) {
            H5Oclose(id);
            fail(R, names[i], "?", "it is a dataset, not a node group");
            goto out;
        }
        NirNode n;
        int r = read_node(R, id, names[i], &n, depth);
        H5Oclose(id);
        if (r != 0)
            goto out;
        vec_push(R->a, &G->nodes, n);
    }
    const NirArray *e = field(self, "edges");
    if (e && e->count > 0) {
        if (!e->is_string || e->ndim != 2 || e->dims[1] != 2) {
            fail(R, self->name, self->type, "its dataset 'edges' must be [n, 2] strings");
            goto out;
        }
        if (R->edges + e->dims[0] > NIR_MAX_EDGES) {
            fail(R, self->name, self->type, "the file has more than %d edges", NIR_MAX_EDGES);
            goto out;
        }
        R->edges += (int)e->dims[0];
        for (int64_t i = 0; i < e->dims[0]; i++) {
            NirEdge ed = {e->str[2 * i], e->str[2 * i + 1]};
            vec_push(R->a, &G->edges, ed);
        }
    }
    rc = 0;
out:
    H5Oclose(ng);
    return rc;
}

/* HDF5's signature, at 0 or at a power of two from 512 (after a user
   block): its offset, or -1. */
static long hdf5_base(const unsigned char *p, size_t len) {
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    for (size_t off = 0; off + 8 <= len; off = off ? off * 2 : 512)
        if (!memcmp(p + off, sig, 8))
            return (long)off;
    return -1;
}

/* The global heap collections ("GCOL": where variable-length strings live)
   must hold together before libhdf5 reads them: libhdf5 1.10 trusts the
   sizes of a collection's objects and copies past the collection's end
   when one lies. Every collection in the file is walked: objects of 16
   bytes of header and their data, padded to 8 bytes, inside the
   collection, the collection inside the file. 0 when one does not. */
static int heaps_hold(const unsigned char *p, size_t len, size_t base) {
    /* the superblock's size of lengths: version 0 and 1 at 14, 2 and 3 at 10 */
    if (base + 16 > len)
        return 1; /* libhdf5 refuses it */
    int lsize = p[base + 8] <= 1 ? p[base + 14] : p[base + 10];
    if (lsize != 2 && lsize != 4 && lsize != 8)
        return 1;
    size_t hdr = 8 + (size_t)lsize, ohdr = 8 + (size_t)lsize;
    for (const unsigned char *g = p; (g = memchr(g, 'G', len - (size_t)(g - p))) && (size_t)(g - p) + hdr <= len; g++) {
        if (memcmp(g, "GCOL\1\0\0\0", 8))
            continue;
        size_t off = (size_t)(g - p);
        uint64_t size = le(g + 8, lsize);
        /* a collection is at least 4096 bytes (libhdf5 reads that much) */
        if (size < 4096 || size > len - off)
            return 0;
        /* its objects as libhdf5 walks them: the free space (index 0)
           counts its own header, so a size below it would never advance */
        size_t pos = hdr, end = (size_t)size;
        while (pos < end) {
            if (end - pos < ohdr)
                break; /* too small for a header: free space */
            unsigned idx = (unsigned)le(g + pos, 2);
            uint64_t osz = le(g + pos + 8, lsize);
            uint64_t need = idx ? ohdr + ((osz + 7) & ~(uint64_t)7) : osz;
            if (osz > end - pos || need < ohdr || need > end - pos)
                return 0;
            pos += (size_t)need;
        }
    }
    return 1;
}

/* libhdf5 shares one open file among the opens of the same name (the core
   driver compares names), and a file whose close failed stays open: a
   damaged image whose close fails must not be found by the next open, so
   each file gets a name of its own. Nor may the library's clean-up at
   exit close such a file again: with some damaged files that crashes in
   the library (H5F__close_cb) after snnc has reported the damage. snnc
   closes everything it opens and checks it; what a failed close leaves,
   the process's exit frees. */
void nir_h5_begin(char *name, size_t n, const char *prefix) {
    static unsigned long files;
    (void)H5dont_atexit(); /* fails, harmlessly, once the library is up */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    snprintf(name, n, "%s-%lu", prefix, ++files);
}

int nir_read_mem(Arena *a, const char *path, const void *bytes, size_t len, NirGraph **root) {
    Rd R;
    memset(&R, 0, sizeof R);
    R.a = a;
    R.path = path;
    R.img = bytes;
    R.len = len;
    *root = NULL;
    if (len > NIR_MAX_FILE_BYTES) {
        error_plain("%s: larger than %zu bytes", path, NIR_MAX_FILE_BYTES);
        return -1;
    }
    long base = hdf5_base(bytes, len);
    if (base < 0) {
        error_plain("%s: not a NIR file: not HDF5 (no HDF5 signature)", path);
        return -1;
    }
    R.base = (size_t)base;
    if ((size_t)base + 16 <= len) {
        const unsigned char *sb = (const unsigned char *)bytes + base;
        R.osize = sb[8] <= 1 ? sb[13] : sb[9];
        R.lsize = sb[8] <= 1 ? sb[14] : sb[10];
    }
    if (!heaps_hold(bytes, len, (size_t)base)) {
        error_plain("%s: not a NIR file: truncated or damaged (a global heap of its HDF5 structures runs past "
                    "the end of the file, or its objects past its end)", path);
        return -1;
    }
    char name[64];
    nir_h5_begin(name, sizeof name, "snnc-nir-image");
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_core(fapl, 1 << 16, 0) < 0 || H5Pset_file_image(fapl, (void *)bytes, len) < 0 ||
        H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
        if (fapl >= 0)
            H5Pclose(fapl);
        error_plain("%s: HDF5 cannot take the file's image (out of memory?)", path);
        return -1;
    }
    /* the name only tells the core driver's files apart; nothing is read from it */
    hid_t f = H5Fopen(name, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0) {
        error_plain("%s: not a NIR file: HDF5 cannot open it (truncated or damaged)", path);
        return -1;
    }
    int rc = -1;
    H5I_type_t kind;
    hid_t g = H5I_INVALID_HID;
    if (H5Lexists(f, "node", H5P_DEFAULT) <= 0) {
        error_plain("%s: not a NIR file: it has no group 'node'", path);
        goto out;
    }
    g = open_member(&R, f, "node", NULL, NULL, &kind);
    if (g < 0)
        goto out;
    if (kind != H5I_GROUP) {
        error_plain("%s: not a NIR file: 'node' is not a group", path);
        goto out;
    }
    NirNode *top = arena_alloc(a, sizeof *top);
    if (read_node(&R, g, "node", top, 0) != 0)
        goto out;
    if (strcmp(top->type, "NIRGraph")) {
        error_plain("%s: the top node is a %s, not a NIRGraph", path, qn(a, top->type));
        goto out;
    }
    *root = top->graph;
    rc = 0;
out:
    if (g >= 0)
        H5Oclose(g);
    /* every path above closes what it opens */
    ssize_t left = H5Fget_obj_count(f, H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR);
    if (left > 0)
        ICE("%s: %ld HDF5 objects left open", path, (long)left);
    if (H5Fclose(f) < 0 && rc == 0) {
        error_plain("%s: not a NIR file: HDF5 cannot close it (damaged)", path);
        rc = -1;
    }
    return rc;
}
