/* main.c: runs the generated PkgNet on a fixed input and prints the readout,
   the spike count of each of the four neurons.

   With PKG_EMBEDDED the weights are compiled in (snnc_generate WEIGHTS);
   without it they are read at run time from the file given as argv[1],
   a batch of two identical samples runs, and the recorded membrane
   potential of the last step is printed too. */
#include <stdio.h>
#include <stdlib.h>

#include "pkgnet.h"

int main(int argc, char **argv)
{
    enum { B = 2 };
    static const float x[3] = {1.0f, 0.5f, 2.0f};
    float in[B][PKGNET_INPUT_SIZE];
    float out[B][PKGNET_OUTPUT_SIZE];
    int b, k;
    for (b = 0; b < B; b++)
        for (k = 0; k < PKGNET_INPUT_SIZE; k++)
            in[b][k] = x[k];
#ifdef PKG_EMBEDDED
    (void)argc;
    (void)argv;
    pkgnet_forward(NULL, 1, &in[0][0], &out[0][0]); /* NULL: the static workspace */
    printf("counts");
    for (k = 0; k < PKGNET_OUTPUT_SIZE; k++)
        printf(" %.9g", out[0][k]);
    printf("\n");
#else
    char err[512];
    void *ws = calloc(1, PKGNET_WORKSPACE_SIZE);
    const float *v;
    if (!ws || argc != 2) {
        fprintf(stderr, "usage: loader WEIGHTS.safetensors\n");
        return 2;
    }
    if (pkgnet_load_weights(ws, argv[1], 0, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    pkgnet_forward(ws, B, &in[0][0], &out[0][0]);
    for (b = 0; b < B; b++) {
        printf("counts");
        for (k = 0; k < PKGNET_OUTPUT_SIZE; k++)
            printf(" %.9g", out[b][k]);
        printf("\n");
    }
    v = pkgnet_probe(ws, 0); /* h.v after the last step, [B, 4] */
    printf("v");
    for (k = 0; k < PKGNET_OUTPUT_SIZE; k++)
        printf(" %.9g", v[k]);
    printf("\n");
    free(ws);
#endif
    return 0;
}
