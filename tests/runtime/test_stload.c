/*
 * test_stload.c: tests runtime/snnrt_stload.inc the way generated code uses
 * it: included into a C99 file that sees nothing else of the runtime, and
 * compiled with -std=c99 -Wall -Wextra -Wpedantic -Werror (by CMake, and by
 * check_cc.sh with clang and gcc at -O2), which proves the .inc is warning
 * free and self-contained.
 *
 * It writes small safetensors files by hand (8-byte length, JSON, data)
 * into the folder named by argv[1] and checks what snnrt_st_load makes of
 * them: conversions, shape checks, missing and unwanted tensors, NaN, and
 * the shape of its error messages.
 */
#include "snnrt_stload.inc"

static int failures;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            printf("%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                    \
        }                                                                  \
    } while (0)

static const char *dir;

static const char *path_of(const char *name)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

/* Writes an 8-byte little-endian header length, the header, the data. */
static const char *write_st(const char *name, const char *header,
                            const unsigned char *data, size_t len)
{
    const char *path = path_of(name);
    size_t n = strlen(header), i;
    FILE *f = fopen(path, "wb");
    if (!f) {
        printf("cannot write %s\n", path);
        exit(1);
    }
    for (i = 0; i < 8; i++)
        fputc((int)((unsigned long long)n >> (8 * i) & 0xFF), f);
    fwrite(header, 1, n, f);
    if (len)
        fwrite(data, 1, len, f);
    fclose(f);
    return path;
}

static void put_f32(unsigned char *p, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    p[0] = (unsigned char)u;
    p[1] = (unsigned char)(u >> 8);
    p[2] = (unsigned char)(u >> 16);
    p[3] = (unsigned char)(u >> 24);
}

static void put_f64(unsigned char *p, double v)
{
    uint64_t u;
    int i;
    memcpy(&u, &v, 8);
    for (i = 0; i < 8; i++)
        p[i] = (unsigned char)(u >> (8 * i));
}

static int contains(const char *s, const char *sub)
{
    if (!strstr(s, sub)) {
        printf("  message \"%s\"\n  lacks \"%s\"\n", s, sub);
        return 0;
    }
    return 1;
}

/* A file with one tensor of each loadable dtype and one that is not. */
static const char *mixed_file(void)
{
    static unsigned char d[24 + 4 + 2 + 8 + 8];
    int i;
    for (i = 0; i < 6; i++)
        put_f32(d + 4 * i, (float)i - 2.5f);
    d[24] = 0x00; d[25] = 0x3C; /* F16 1.0 */
    d[26] = 0x00; d[27] = 0xC0; /* F16 -2.0 */
    d[28] = 0xC0; d[29] = 0x3F; /* BF16 1.5 */
    put_f64(d + 30, 0.1);
    memset(d + 38, 0xFF, 8); /* I64 -1 */
    return write_st("mixed.safetensors",
                    "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                    "\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[24,28]},"
                    " \"c\" : { \"shape\" : [ ] , \"dtype\" : \"BF16\", \"data_offsets\":[28,30]},"
                    "\"d\":{\"dtype\":\"F64\",\"shape\":[1,1],\"data_offsets\":[30,38]},"
                    "\"z\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[38,46]}}   ",
                    d, sizeof d);
}

static void test_load_all(void)
{
    const char *path = mixed_file();
    long sa[2] = {2, 3}, sb[1] = {2}, sd[2] = {1, 1};
    float a[6], b[2], c[1], d[1];
    snnrt_st_want w[4];
    unsigned char found[4] = {9, 9, 9, 9};
    char err[512] = "";
    int i, rc;
    w[0].name = "a"; w[0].ndim = 2; w[0].shape = sa; w[0].dst = a;
    w[1].name = "b"; w[1].ndim = 1; w[1].shape = sb; w[1].dst = b;
    w[2].name = "c"; w[2].ndim = 0; w[2].shape = NULL; w[2].dst = c;
    w[3].name = "d"; w[3].ndim = 2; w[3].shape = sd; w[3].dst = d;
    rc = snnrt_st_load(path, w, 4, 0, found, err, sizeof err);
    if (rc)
        printf("  %s\n", err);
    CHECK(rc == 0);
    for (i = 0; i < 6; i++)
        CHECK(a[i] == (float)i - 2.5f);
    CHECK(b[0] == 1.0f && b[1] == -2.0f);
    CHECK(c[0] == 1.5f);
    CHECK(d[0] == (float)0.1);
    CHECK(found[0] == 1 && found[1] == 1 && found[2] == 1 && found[3] == 1);
}

static void test_errors(void)
{
    const char *path = mixed_file();
    long bad[2] = {3, 2}, one[1] = {1};
    float buf[8];
    snnrt_st_want w;
    unsigned char found = 9;
    char err[512], tiny[6];
    w.name = "a"; w.ndim = 2; w.shape = bad; w.dst = buf;
    CHECK(snnrt_st_load(path, &w, 1, 0, &found, err, sizeof err) == -1);
    CHECK(contains(err, "mixed.safetensors: tensor 'a' has shape [2, 3] but [3, 2] was expected"));
    CHECK(!strncmp(err, path, strlen(path)));

    w.name = "nope";
    CHECK(snnrt_st_load(path, &w, 1, 0, &found, err, sizeof err) == -1);
    CHECK(contains(err, "tensor 'nope' is not in the file"));
    CHECK(snnrt_st_load(path, &w, 1, 1, &found, err, sizeof err) == 0);
    CHECK(found == 0);

    w.name = "z"; w.ndim = 1; w.shape = one;
    CHECK(snnrt_st_load(path, &w, 1, 0, &found, err, sizeof err) == -1);
    CHECK(contains(err, "tensor 'z' has dtype I64"));

    /* no err buffer at all, and one too small: no crash, NUL-terminated */
    CHECK(snnrt_st_load(path, &w, 1, 0, NULL, NULL, 0) == -1);
    CHECK(snnrt_st_load(path, &w, 1, 0, NULL, tiny, sizeof tiny) == -1);
    CHECK(strlen(tiny) == sizeof tiny - 1);

    CHECK(snnrt_st_load(path_of("absent.safetensors"), &w, 1, 0, NULL, err, sizeof err) == -1);
    CHECK(contains(err, "absent.safetensors: cannot open"));
}

static void test_nan(void)
{
    unsigned char d[12];
    long s[1] = {3};
    float v[3];
    snnrt_st_want w;
    char err[512];
    const char *path;
    put_f32(d, 1.0f);
    put_f32(d + 4, 2.0f);
    d[8] = 0x00; d[9] = 0x00; d[10] = 0xC0; d[11] = 0x7F; /* NaN */
    path = write_st("nan.safetensors",
                    "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}",
                    d, sizeof d);
    w.name = "w"; w.ndim = 1; w.shape = s; w.dst = v;
    CHECK(snnrt_st_load(path, &w, 1, 0, NULL, err, sizeof err) == -1);
    CHECK(contains(err, "tensor 'w' has NaN at flat index 2"));
    d[8] = 0x00; d[9] = 0x00; d[10] = 0x80; d[11] = 0xFF; /* -Inf */
    path = write_st("inf.safetensors",
                    "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}",
                    d, sizeof d);
    CHECK(snnrt_st_load(path, &w, 1, 0, NULL, err, sizeof err) == -1);
    CHECK(contains(err, "tensor 'w' has Inf at flat index 2"));
}

/* Names with escapes (an accented letter and a surrogate pair), F16
   subnormals and signed zero, a zero-size tensor. */
static void test_names_and_halves(void)
{
    unsigned char d[8];
    long s[1] = {4}, z[2] = {0, 5};
    float v[4], e[1];
    snnrt_st_want w[2];
    char err[512];
    const char *path;
    d[0] = 0x01; d[1] = 0x00; /* 2^-24 */
    d[2] = 0xFF; d[3] = 0x03; /* 1023 * 2^-24 */
    d[4] = 0x00; d[5] = 0x80; /* -0 */
    d[6] = 0xFF; d[7] = 0x7B; /* 65504 */
    path = write_st("names.safetensors",
                    "{\"w\\u00e9\\ud83d\\ude00\\n\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]},"
                    "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[8,8]}}",
                    d, sizeof d);
    w[0].name = "w\xc3\xa9\xf0\x9f\x98\x80\n"; w[0].ndim = 1; w[0].shape = s; w[0].dst = v;
    w[1].name = "empty"; w[1].ndim = 2; w[1].shape = z; w[1].dst = e;
    CHECK(snnrt_st_load(path, w, 2, 0, NULL, err, sizeof err) == 0);
    CHECK(v[0] == 5.9604644775390625e-08f);
    CHECK(v[1] == 1023 * 5.9604644775390625e-08f);
    CHECK(v[2] == 0.0f && signbit(v[2]));
    CHECK(v[3] == 65504.0f);
}

static void test_bad_layout(void)
{
    unsigned char d[16] = {0};
    char deep[256];
    long s[1] = {2};
    int i;
    float v[2];
    snnrt_st_want w;
    char err[512];
    const char *path;
    w.name = "a"; w.ndim = 1; w.shape = s; w.dst = v;
    path = write_st("gap.safetensors",
                    "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}",
                    d, 16);
    CHECK(snnrt_st_load(path, &w, 1, 1, NULL, err, sizeof err) == -1);
    CHECK(contains(err, "gap of 4 bytes before tensor 'b'"));
    strcpy(deep, "{\"__metadata__\":");
    for (i = 0; i < 100; i++)
        strcat(deep, "[");
    for (i = 0; i < 100; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    path = write_st("depth.safetensors", deep, d, 0);
    CHECK(snnrt_st_load(path, &w, 1, 1, NULL, err, sizeof err) == -1);
    CHECK(contains(err, "nesting deeper than 64 levels"));
    path = write_st("syntax.safetensors", "{\"a\" {}}", d, 0);
    CHECK(snnrt_st_load(path, &w, 1, 1, NULL, err, sizeof err) == -1);
    CHECK(contains(err, "malformed JSON header at byte 13: expected ':'"));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        printf("usage: %s FOLDER\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    test_load_all();
    test_errors();
    test_nan();
    test_names_and_halves();
    test_bad_layout();
    if (failures) {
        printf("%d checks failed\n", failures);
        return 1;
    }
    printf("all snnrt_stload.inc checks passed\n");
    return 0;
}
