/*
 * classify.c: a standalone image classifier around the C that snnc
 * generates for a trained network (compiled with --embed-weights --static):
 * no allocation, no file formats but IDX, libc and libm only. It reads
 * test images and labels (uncompressed IDX, as in MNIST and Fashion-MNIST),
 * normalizes each pixel as `snnc train` does, (byte / 255 - mean) / std,
 * runs the network in batches and prints the accuracy, then draws a few
 * images with their predicted and true classes.
 *
 * Build (scripts/demo.sh does this):
 *   cc -std=c99 -O2 -DNET_HEADER='"fashionmlp.h"' -DNET_PREFIX=fashionmlp \
 *      -DNET_UPPER=FASHIONMLP classify.c fashionmlp.c -lm -o classify
 * Run:
 *   ./classify t10k-images-idx3-ubyte t10k-labels-idx1-ubyte MEAN STD [SHOW]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include NET_HEADER

#define CAT(a, b) a##b
#define XCAT(a, b) CAT(a, b)
#define F(name) XCAT(NET_PREFIX, _##name)
#define M(name) XCAT(NET_UPPER, _##name)

#if M(INPUT_SEQUENCE)
#error "classify.c needs a network with a direct-encoded input (the same image at every step)"
#endif

enum { MAX_IMAGES = 100000 };

static unsigned char images[MAX_IMAGES * (size_t)M(INPUT_SIZE)];
static unsigned char labels[MAX_IMAGES];
static float input[M(MAX_BATCH) * (size_t)M(INPUT_SIZE)];
static float output[(M(OUTPUT_STEPS) ? M(TIMESTEPS) : 1) * M(MAX_BATCH) * (size_t)M(OUTPUT_SIZE)];
static int predicted[MAX_IMAGES];

static const char *const fashion[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                        "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/* Reads an IDX file of bytes into dst; returns the number of items, or -1. */
static long read_idx(const char *path, unsigned magic, unsigned char *dst, size_t item, long max) {
    unsigned char h[16];
    FILE *f = fopen(path, "rb");
    int ndim = magic == 0x803 ? 3 : 1;
    long n, got;
    size_t want = 1;
    if (!f) {
        perror(path);
        return -1;
    }
    if (fread(h, 1, 4 + 4 * (size_t)ndim, f) != 4 + 4 * (size_t)ndim ||
        ((unsigned)h[2] << 8 | h[3]) != magic) {
        fprintf(stderr, "%s: not an IDX file of %s\n", path, ndim == 3 ? "images" : "labels");
        fclose(f);
        return -1;
    }
    n = (long)((unsigned long)h[4] << 24 | (unsigned long)h[5] << 16 | (unsigned long)h[6] << 8 | h[7]);
    if (ndim == 3)
        want = ((size_t)h[8] << 24 | (size_t)h[9] << 16 | (size_t)h[10] << 8 | h[11]) *
               ((size_t)h[12] << 24 | (size_t)h[13] << 16 | (size_t)h[14] << 8 | h[15]);
    if (want != item || n < 0 || n > max) {
        fprintf(stderr, "%s: %ld items of %zu values; this network takes at most %ld of %zu\n", path, n, want,
                max, item);
        fclose(f);
        return -1;
    }
    got = (long)fread(dst, item, (size_t)n, f);
    fclose(f);
    if (got != n) {
        fprintf(stderr, "%s: truncated\n", path);
        return -1;
    }
    return n;
}

static void draw(const unsigned char *img, int w, int h) {
    static const char ramp[] = " .:-=+*#%@";
    for (int y = 0; y < h; y += 2) {
        printf("    ");
        for (int x = 0; x < w; x++)
            putchar(ramp[(img[y * w + x] + (y + 1 < h ? img[(y + 1) * w + x] : 0)) * 9 / 510]);
        putchar('\n');
    }
}

int main(int argc, char **argv) {
    long n, correct = 0;
    double mean, std;
    int show;
    if (argc < 5) {
        fprintf(stderr, "usage: %s IMAGES LABELS MEAN STD [SHOW]\n", argv[0]);
        return 2;
    }
    mean = atof(argv[3]);
    std = atof(argv[4]);
    show = argc > 5 ? atoi(argv[5]) : 3;
    n = read_idx(argv[1], 0x803, images, (size_t)M(INPUT_SIZE), MAX_IMAGES);
    if (n < 0 || read_idx(argv[2], 0x801, labels, 1, MAX_IMAGES) != n) {
        if (n >= 0)
            fprintf(stderr, "%s: not as many labels as images\n", argv[2]);
        return 1;
    }
    for (long i0 = 0; i0 < n; i0 += M(MAX_BATCH)) {
        int b = n - i0 < M(MAX_BATCH) ? (int)(n - i0) : M(MAX_BATCH);
        for (size_t j = 0; j < (size_t)b * M(INPUT_SIZE); j++)
            input[j] = (float)((images[(size_t)i0 * M(INPUT_SIZE) + j] / 255.0 - mean) / std);
        F(forward)(NULL, b, input, output);
        for (int r = 0; r < b; r++) {
            /* the class is the largest readout (first on ties); with per-step
               outputs, the largest mean over the steps */
            int best = 0;
            float bv = 0;
            for (int k = 0; k < M(OUTPUT_SIZE); k++) {
                float v = output[(size_t)r * M(OUTPUT_SIZE) + k];
#if M(OUTPUT_STEPS)
                for (int t = 1; t < M(TIMESTEPS); t++)
                    v = v + output[((size_t)t * (size_t)b + (size_t)r) * M(OUTPUT_SIZE) + k];
                v = v / (float)M(TIMESTEPS);
#endif
                if (k == 0 || v > bv) {
                    best = k;
                    bv = v;
                }
            }
            predicted[i0 + r] = best;
            correct += best == labels[i0 + r];
        }
    }
    printf("classified %ld images: %ld correct, accuracy %.2f%%\n", n, correct, n ? 100.0 * (double)correct / (double)n : 0.0);
    for (int i = 0; i < show && i < n; i++) {
        printf("\n  image %d: predicted %s, labelled %s\n", i,
               M(OUTPUT_SIZE) == 10 ? fashion[predicted[i]] : "?", M(OUTPUT_SIZE) == 10 ? fashion[labels[i]] : "?");
        if (M(INPUT_SIZE) == 784)
            draw(images + (size_t)i * M(INPUT_SIZE), 28, 28);
    }
    return 0;
}
