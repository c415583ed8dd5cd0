/*
 * test_math.c: runtime/snnrt_math.inc, the functions of neuron programs under
 * --math fast, against the C library's double-precision functions.
 *
 * Every float of a stride through all 2^32 bit patterns (every 61st, with
 * every float in [-1, 1] of magnitude above 2^-20 at a stride of 7 on top,
 * where expm1 and tanh lose most) is checked against the bound documented
 * in snnrt_math.inc, in units in the last place of the float nearest the
 * exact result: exp 2, expm1 5, log 2, tanh 4, sigmoid 3 (where its result
 * is normal; below, within 2^-126 absolute). The special values must be
 * those of the C library: NaN for NaN, the same infinities and zeros.
 * `test_math --all` checks every float (minutes). Prints the largest error
 * seen per function.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../runtime/snnrt_math.inc"

typedef struct Fn {
    const char *name;
    float (*f)(float);
    double (*ref)(double);
    double bound; /* ulps */
    double worst;
    float worst_at;
    long fails;
} Fn;

static double sigmoid_ref(double x) { return 1.0 / (1.0 + exp(-x)); }

/* The unit in the last place of float r (r finite). */
static double ulp(float r)
{
    int e;
    float a = fabsf(r);
    if (a < FLT_MIN)
        return ldexp(1.0, -149);
    frexpf(a, &e);
    return ldexp(1.0, e - 24);
}

static void check(Fn *fn, float x)
{
    float y = fn->f(x);
    double exact = fn->ref((double)x);
    float r = (float)exact;
    int ok;
    double err = 0;
    if (isnan(r) || isnan(y))
        ok = isnan(r) && isnan(y);
    else if (isinf(r) || isinf(y))
        ok = y == r;
    else if (fn->f == snnrt_sigmoidf && fabsf(r) < FLT_MIN)
        ok = fabs((double)y - exact) <= FLT_MIN;
    else {
        err = fabs((double)y - exact) / ulp(r);
        ok = err <= fn->bound;
    }
    if (err > fn->worst) {
        fn->worst = err;
        fn->worst_at = x;
    }
    if (!ok && fn->fails++ < 5)
        printf("FAIL: %s(%a) = %a, the C library %a (%.2f ulp)\n", fn->name, (double)x, (double)y, (double)r, err);
}

int main(int argc, char **argv)
{
    Fn fns[] = {
        {"expf", snnrt_expf, exp, 2, 0, 0, 0},     {"expm1f", snnrt_expm1f, expm1, 5, 0, 0, 0},
        {"logf", snnrt_logf, log, 2, 0, 0, 0},     {"tanhf", snnrt_tanhf, tanh, 4, 0, 0, 0},
        {"sigmoidf", snnrt_sigmoidf, sigmoid_ref, 3, 0, 0, 0},
    };
    const int nf = (int)(sizeof fns / sizeof fns[0]);
    const uint64_t stride = argc > 1 && !strcmp(argv[1], "--all") ? 1 : 61;
    const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, FLT_MIN, -FLT_MIN, FLT_MAX, -FLT_MAX,
                              1.4e-45f, 88.72f, 88.73f, -87.34f, -103.9f, -104.5f, 1.0f, -1.0f, 0.3465f};
    long n = 0, fails = 0;
    for (uint64_t u = 0; u <= 0xffffffffu; u += stride)
        for (int k = 0; k < nf; k++, n++)
            check(&fns[k], snnrt_from_bits((uint32_t)u));
    for (uint32_t u = 0x35800000u; u <= 0x3f800000u; u += 7) /* 2^-20 .. 1 */
        for (int k = 0; k < nf; k++, n += 2) {
            check(&fns[k], snnrt_from_bits(u));
            check(&fns[k], snnrt_from_bits(u | 0x80000000u));
        }
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++)
        for (int k = 0; k < nf; k++, n++)
            check(&fns[k], specials[i]);
    /* min and max: fminf's and fmaxf's results, up to the sign of zero */
    const float mm[] = {1.0f, -2.0f, 0.5f, NAN, INFINITY, -INFINITY, 3.0f, 0.0f};
    for (size_t i = 0; i < sizeof mm / sizeof mm[0]; i++)
        for (size_t j = 0; j < sizeof mm / sizeof mm[0]; j++) {
            float a = mm[i], b = mm[j], lo = snnrt_fminf(a, b), hi = snnrt_fmaxf(a, b);
            int ok = (isnan(lo) ? isnan(fminf(a, b)) : lo == fminf(a, b)) &&
                     (isnan(hi) ? isnan(fmaxf(a, b)) : hi == fmaxf(a, b));
            if (!ok && fails++ < 5)
                printf("FAIL: min/max of %g and %g: %g %g, the C library %g %g\n", (double)a, (double)b, (double)lo,
                       (double)hi, (double)fminf(a, b), (double)fmaxf(a, b));
        }
    for (int k = 0; k < nf; k++) {
        printf("%-9s largest error %.2f ulp at %a (bound %.0f)%s\n", fns[k].name, fns[k].worst,
               (double)fns[k].worst_at, fns[k].bound, fns[k].fails ? ": FAILED" : "");
        fails += fns[k].fails;
    }
    printf("%ld values checked, %ld failures\n", n, fails);
    return fails != 0;
}
