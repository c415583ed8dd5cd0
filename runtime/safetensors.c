/*
 * safetensors.c: the library's safetensors reader and writer.
 *
 * The header is parsed and checked by snnrt_stload.inc, the same text that
 * generated code carries, included here so there is one parser: this file
 * only adds what the general reader needs on top of it (copying every
 * record and the "__metadata__" pairs into an SnnrtStFile) and the writer. snnrt_st_load_tensors exposes
 * the .inc's loader to library callers, which also keeps its functions used.
 *
 * The writer emits F32 only, names in strcmp order, "__metadata__" (if any)
 * first with its keys in strcmp order, the JSON header padded with spaces
 * so that the data starts at a multiple of 8 bytes; the file is built in
 * memory and written with snnrt_write_atomic.
 */
#include "snnrt.h"
#include "rtbuf.h"

#include "snnrt_stload.inc"

static int st_error(char *err, size_t errlen, const char *path,
                    const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, "%s: %s", path, what);
    return -1;
}

static char *st_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = (char *)malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* ---- reading ---- */

/* Copies record r, converted to float32, into entry e. */
static int st_read_entry(SnnrtStIndex *ix, const SnnrtStRecord *r,
                         SnnrtStEntry *e)
{
    int i;
    if (r->count > (unsigned long long)((size_t)-1 / sizeof(float)))
        return snnrt_st_fail(ix, "a tensor is too large for this machine");
    e->name = st_strdup(r->name);
    e->t.ndim = r->ndim;
    for (i = 0; i < r->ndim; i++)
        e->t.shape[i] = r->shape[i];
    e->t.count = (size_t)r->count;
    e->t.data = (float *)malloc(r->count ? (size_t)r->count * sizeof(float)
                                         : sizeof(float));
    if (!e->name || !e->t.data)
        return snnrt_st_fail(ix, "out of memory for a tensor");
    return snnrt_st_read_record(ix, r, e->t.data);
}

/* ---- metadata ---- */

/* The .inc checks "__metadata__" and drops it: generated code has no use
   for it, and the .inc's text is part of every generated file. So when the
   header has metadata, the reader reads the header a second time into a
   fresh buffer, checks its syntax again (the file may have changed) and
   walks it with the .inc's own JSON functions to collect the pairs. */

typedef struct StMetaList {
    char **keys, **values;
    int n, cap;
} StMetaList;

static int meta_add(StMetaList *l, const char *key, const char *value)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 8;
        char **k, **v;
        if (l->cap > INT_MAX / 4)
            return -1;
        k = (char **)realloc(l->keys, (size_t)cap * sizeof *k);
        if (k)
            l->keys = k;
        v = k ? (char **)realloc(l->values, (size_t)cap * sizeof *v) : NULL;
        if (!v)
            return -1;
        l->values = v;
        l->cap = cap;
    }
    l->keys[l->n] = st_strdup(key);
    l->values[l->n] = st_strdup(value);
    l->n++;
    return l->keys[l->n - 1] && l->values[l->n - 1] ? 0 : -1;
}

/* The pairs of the "__metadata__" object at *p; neither may hold a NUL
   (a C string would cut it short). */
static int meta_walk_object(SnnrtStIndex *w, size_t *p, StMetaList *l)
{
    char m[300], shown[96];
    char *key, *value;
    size_t klen, vlen;
    if (w->text[*p] != '{')
        return snnrt_st_fail(w, "__metadata__ must be an object of strings");
    if (!snnrt_st_open_container(w, p))
        return 0;
    do {
        if (snnrt_st_key(w, p, &key, &klen))
            return -1;
        if (w->text[*p] != '"') {
            snprintf(m, sizeof m, "__metadata__ value of '%s' is not a string",
                     snnrt_st_show(key, shown, sizeof shown));
            return snnrt_st_fail(w, m);
        }
        if (snnrt_st_json_string(w, p, &value, &vlen))
            return -1;
        if (memchr(key, '\0', klen) || memchr(value, '\0', vlen)) {
            snprintf(m, sizeof m, "__metadata__ %s '%s' contains a NUL character",
                     memchr(key, '\0', klen) ? "key" : "value of",
                     snnrt_st_show(key, shown, sizeof shown));
            return snnrt_st_fail(w, m);
        }
        if (meta_add(l, key, value))
            return snnrt_st_fail(w, "out of memory for the metadata");
    } while (snnrt_st_next(w, p));
    return 0;
}

static int meta_walk(SnnrtStIndex *w, StMetaList *l)
{
    size_t p;
    char *key;
    size_t klen;
    if (snnrt_st_json_check(w))
        return -1;
    p = snnrt_st_ws(w, 0);
    if (w->text[p] != '{')
        return snnrt_st_fail(w, "the header changed while it was read");
    if (!snnrt_st_open_container(w, &p))
        return 0;
    do {
        if (snnrt_st_key(w, &p, &key, &klen))
            return -1;
        if (snnrt_st_is(key, klen, "__metadata__")) {
            if (meta_walk_object(w, &p, l))
                return -1;
        } else if (snnrt_st_json_value(w, &p, 1)) {
            return -1;
        }
    } while (snnrt_st_next(w, &p));
    return 0;
}

/* Sorts the pairs by key (keys and values together) and rejects a key
   given twice. */
static int meta_sort(SnnrtStIndex *ix, StMetaList *l)
{
    char m[300], shown[96];
    int i, j;
    for (i = 1; i < l->n; i++) { /* insertion sort: metadata is small */
        char *k = l->keys[i], *v = l->values[i];
        for (j = i; j > 0 && strcmp(l->keys[j - 1], k) > 0; j--) {
            l->keys[j] = l->keys[j - 1];
            l->values[j] = l->values[j - 1];
        }
        l->keys[j] = k;
        l->values[j] = v;
    }
    for (i = 1; i < l->n; i++) {
        if (!strcmp(l->keys[i - 1], l->keys[i])) {
            snprintf(m, sizeof m, "duplicate __metadata__ key '%s'",
                     snnrt_st_show(l->keys[i], shown, sizeof shown));
            return snnrt_st_fail(ix, m);
        }
    }
    return 0;
}

static int st_read_meta(SnnrtStIndex *ix, SnnrtStFile *out)
{
    SnnrtStIndex w = *ix;
    StMetaList l = {NULL, NULL, 0, 0};
    int rc = -1;
    if (!ix->has_meta)
        return 0;
    w.recs = NULL;
    w.text = (char *)malloc(ix->len + 1);
    if (!w.text)
        return snnrt_st_fail(ix, "out of memory for the header");
    if (fseek(ix->fp, 8, SEEK_SET) != 0 ||
        fread(w.text, 1, ix->len, ix->fp) != ix->len) {
        snnrt_st_fail(ix, "cannot read the header again (did the file change?)");
    } else {
        w.text[ix->len] = '\0';
        if (meta_walk(&w, &l) == 0 && meta_sort(ix, &l) == 0)
            rc = 0;
    }
    free(w.text);
    /* out owns the lists from here, so that snnrt_st_free frees them on
       failure too */
    out->meta_keys = l.keys;
    out->meta_values = l.values;
    out->nmeta = l.n;
    return rc;
}

/* snnrt_st_read of fp (NULL: open path), which is closed here. */
static int st_read_file(FILE *fp, const char *path, SnnrtStFile *out,
                        char *err, size_t errlen)
{
    SnnrtStIndex ix;
    int i;
    memset(out, 0, sizeof *out);
    if (snnrt_st_open(&ix, fp, path, err, errlen))
        return -1;
    out->entries = (SnnrtStEntry *)calloc(ix.n ? (size_t)ix.n : 1,
                                          sizeof *out->entries);
    if (!out->entries) {
        snnrt_st_fail(&ix, "out of memory for the tensor list");
        snnrt_st_close(&ix);
        return -1;
    }
    out->n = ix.n;
    for (i = 0; i <= ix.n; i++) {
        if (i < ix.n ? st_read_entry(&ix, &ix.recs[i], &out->entries[i])
                     : st_read_meta(&ix, out)) {
            snnrt_st_close(&ix);
            snnrt_st_free(out);
            return -1;
        }
    }
    snnrt_st_close(&ix);
    return 0;
}

int snnrt_st_read(const char *path, SnnrtStFile *out, char *err,
                  size_t errlen)
{
    return st_read_file(NULL, path, out, err, errlen);
}

int snnrt_st_read_mem(const void *data, size_t size, const char *name,
                      SnnrtStFile *out, char *err, size_t errlen)
{
    FILE *fp = snnrt_mem_open(data, size);
    if (!fp) {
        memset(out, 0, sizeof *out);
        return st_error(err, errlen, name, "cannot open the bytes in memory as a file");
    }
    return st_read_file(fp, name, out, err, errlen);
}

const SnnrtStEntry *snnrt_st_find(const SnnrtStFile *f, const char *name)
{
    int i;
    for (i = 0; f && name && i < f->n; i++)
        if (f->entries[i].name && !strcmp(f->entries[i].name, name))
            return &f->entries[i];
    return NULL;
}

const char *snnrt_st_meta(const SnnrtStFile *f, const char *key)
{
    int i;
    for (i = 0; f && key && f->meta_keys && i < f->nmeta; i++)
        if (f->meta_keys[i] && !strcmp(f->meta_keys[i], key))
            return f->meta_values[i];
    return NULL;
}

void snnrt_st_free(SnnrtStFile *f)
{
    int i;
    if (!f)
        return;
    for (i = 0; f->entries && i < f->n; i++) {
        free(f->entries[i].name);
        snnrt_tensor_free(&f->entries[i].t);
    }
    for (i = 0; i < f->nmeta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->entries);
    free(f->meta_keys);
    free(f->meta_values);
    memset(f, 0, sizeof *f);
}

int snnrt_st_load_tensors(const char *path, const SnnrtStWant *want, int n,
                          int allow_missing, unsigned char *found,
                          char *err, size_t errlen)
{
    snnrt_st_want *w;
    int i, rc;
    if (n < 0 || (n > 0 && !want))
        return st_error(err, errlen, path, "invalid list of wanted tensors");
    w = (snnrt_st_want *)malloc((n ? (size_t)n : 1) * sizeof *w);
    if (!w)
        return st_error(err, errlen, path, "out of memory");
    for (i = 0; i < n; i++) {
        w[i].name = want[i].name;
        w[i].ndim = want[i].ndim;
        w[i].shape = want[i].shape;
        w[i].dst = want[i].dst;
    }
    rc = snnrt_st_load(path, w, n, allow_missing, found, err, errlen);
    free(w);
    return rc;
}

/* ---- writing ---- */

typedef SnnrtBuf StBuf;

static void buf_put(StBuf *b, const void *p, size_t n)
{
    snnrt_buf_put(b, p, n);
}

static void buf_str(StBuf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

static void buf_u64(StBuf *b, unsigned long long v)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%llu", v);
    buf_str(b, tmp);
}

/* s as a JSON string: quotes, backslashes and control bytes escaped, the
   rest (valid UTF-8, checked by the caller) as it is. */
static void buf_json_string(StBuf *b, const char *s)
{
    buf_str(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char tmp[8];
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            buf_put(b, tmp, 2);
        } else if (c < 0x20) {
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            buf_str(b, tmp);
        } else {
            buf_put(b, s, 1);
        }
    }
    buf_str(b, "\"");
}

typedef struct StItem {
    const char *name;
    const SnnrtTensor *t;
} StItem;

static int item_by_name(const void *a, const void *b)
{
    return strcmp(((const StItem *)a)->name, ((const StItem *)b)->name);
}

static int valid_utf8(const char *s)
{
    size_t len = strlen(s), i = 0;
    while (i < len) {
        unsigned n = snnrt_st_utf8_len((const unsigned char *)s + i, len - i);
        if (!n)
            return 0;
        i += n;
    }
    return 1;
}

/* Checks the names and tensors, and sorts them into items. */
static int st_collect(const char *path, int n, const char *const *names,
                      const SnnrtTensor *const *tensors, StItem *items,
                      char *err, size_t errlen)
{
    char m[200], shown[96];
    int i;
    for (i = 0; i < n; i++) {
        items[i].name = names[i];
        items[i].t = tensors[i];
        if (!names[i] || !valid_utf8(names[i]) ||
            !strcmp(names[i], "__metadata__")) {
            snprintf(m, sizeof m, "tensor %d: name is missing, not UTF-8 or reserved", i);
            return st_error(err, errlen, path, m);
        }
        snprintf(m, sizeof m, "%s: tensor '%s'", path,
                 snnrt_st_show(names[i], shown, sizeof shown));
        if (snnrt_tensor_validate(tensors[i], m, err, errlen))
            return -1;
    }
    if (n > 1)
        qsort(items, (size_t)n, sizeof *items, item_by_name);
    for (i = 1; i < n; i++) {
        if (!strcmp(items[i - 1].name, items[i].name)) {
            snprintf(m, sizeof m, "duplicate tensor name '%s'",
                     snnrt_st_show(items[i].name, shown, sizeof shown));
            return st_error(err, errlen, path, m);
        }
    }
    return 0;
}

typedef struct StPair {
    const char *key, *value;
} StPair;

static int pair_by_key(const void *a, const void *b)
{
    return strcmp(((const StPair *)a)->key, ((const StPair *)b)->key);
}

/* Checks the metadata pairs and sorts them by key. */
static int st_collect_meta(const char *path, int nmeta,
                           const char *const *keys,
                           const char *const *values, StPair *pairs,
                           char *err, size_t errlen)
{
    char m[200], shown[96];
    int i;
    for (i = 0; i < nmeta; i++) {
        pairs[i].key = keys[i];
        pairs[i].value = values[i];
        if (!keys[i] || !values[i] || !valid_utf8(keys[i]) ||
            !valid_utf8(values[i])) {
            snprintf(m, sizeof m, "metadata pair %d: key or value is missing or not UTF-8", i);
            return st_error(err, errlen, path, m);
        }
    }
    if (nmeta > 1)
        qsort(pairs, (size_t)nmeta, sizeof *pairs, pair_by_key);
    for (i = 1; i < nmeta; i++) {
        if (!strcmp(pairs[i - 1].key, pairs[i].key)) {
            snprintf(m, sizeof m, "duplicate metadata key '%s'",
                     snnrt_st_show(pairs[i].key, shown, sizeof shown));
            return st_error(err, errlen, path, m);
        }
    }
    return 0;
}

static void st_header(StBuf *b, int n, const StItem *items, int nmeta,
                      const StPair *pairs)
{
    unsigned long long at = 0;
    int i, d;
    buf_str(b, "{");
    if (nmeta > 0) {
        buf_str(b, "\"__metadata__\":{");
        for (i = 0; i < nmeta; i++) {
            buf_str(b, i ? "," : "");
            buf_json_string(b, pairs[i].key);
            buf_str(b, ":");
            buf_json_string(b, pairs[i].value);
        }
        buf_str(b, n ? "}," : "}");
    }
    for (i = 0; i < n; i++) {
        const SnnrtTensor *t = items[i].t;
        buf_str(b, i ? "," : "");
        buf_json_string(b, items[i].name);
        buf_str(b, ":{\"dtype\":\"F32\",\"shape\":[");
        for (d = 0; d < t->ndim; d++) {
            buf_str(b, d ? "," : "");
            buf_u64(b, (unsigned long long)t->shape[d]);
        }
        buf_str(b, "],\"data_offsets\":[");
        buf_u64(b, at);
        buf_str(b, ",");
        at += (unsigned long long)t->count * 4;
        buf_u64(b, at);
        buf_str(b, "]}");
    }
    buf_str(b, "}");
    while (b->len % 8 != 0)
        buf_str(b, " ");
}

static void st_data(StBuf *b, const SnnrtTensor *t)
{
    size_t i;
    for (i = 0; i < t->count; i++) {
        unsigned char le[4];
        uint32_t u;
        memcpy(&u, &t->data[i], 4);
        le[0] = (unsigned char)u;
        le[1] = (unsigned char)(u >> 8);
        le[2] = (unsigned char)(u >> 16);
        le[3] = (unsigned char)(u >> 24);
        buf_put(b, le, 4);
    }
}

int snnrt_st_write(const char *path, int n, const char *const *names,
                   const SnnrtTensor *const *tensors, char *err,
                   size_t errlen)
{
    return snnrt_st_write_meta(path, n, names, tensors, 0, NULL, NULL, err,
                               errlen);
}

int snnrt_st_write_meta(const char *path, int n, const char *const *names,
                        const SnnrtTensor *const *tensors, int nmeta,
                        const char *const *keys, const char *const *values,
                        char *err, size_t errlen)
{
    StBuf head = {0}, file = {0};
    StItem *items;
    StPair *pairs;
    unsigned char len8[8];
    int i, rc = -1;
    if (n < 0 || (n > 0 && (!names || !tensors)))
        return st_error(err, errlen, path, "invalid list of tensors");
    if (nmeta < 0 || (nmeta > 0 && (!keys || !values)))
        return st_error(err, errlen, path, "invalid list of metadata pairs");
    items = (StItem *)malloc((n ? (size_t)n : 1) * sizeof *items);
    pairs = (StPair *)malloc((nmeta ? (size_t)nmeta : 1) * sizeof *pairs);
    if (!items || !pairs) {
        st_error(err, errlen, path, "out of memory");
        goto done;
    }
    if (st_collect(path, n, names, tensors, items, err, errlen) ||
        st_collect_meta(path, nmeta, keys, values, pairs, err, errlen))
        goto done;
    st_header(&head, n, items, nmeta, pairs);
    for (i = 0; i < 8; i++)
        len8[i] = (unsigned char)((unsigned long long)head.len >> (8 * i));
    buf_put(&file, len8, 8);
    buf_put(&file, head.data, head.len);
    for (i = 0; i < n; i++)
        st_data(&file, items[i].t);
    if (head.failed || file.failed) {
        st_error(err, errlen, path, "out of memory building the file");
        goto done;
    }
    rc = snnrt_write_atomic(path, file.data, file.len, err, errlen);
done:
    free(items);
    free(pairs);
    free(head.data);
    free(file.data);
    return rc;
}
