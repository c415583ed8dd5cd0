/*
 * backend.c: the table of targets.
 */
#include "backend.h"

#include <string.h>

static const Target targets[] = {
    {"c", "portable C99: the reference back end, and the one for microcontrollers", cgen_generate},
};

const Target *target_lookup(const char *name) {
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++)
        if (!strcmp(targets[i].name, name))
            return &targets[i];
    return NULL;
}

void target_list(FILE *f) {
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++)
        fprintf(f, "  %-8s %s\n", targets[i].name, targets[i].doc);
}
