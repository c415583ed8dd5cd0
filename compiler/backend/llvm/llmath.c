/*
 * llmath.c: the llvm target's math functions of neuron programs under
 * --math fast: exp, log, tanh, fmin and fmax on whole vectors, branch-free
 * (every special case a select), with no call, so that a neuron program's
 * loop stays on vectors instead of calling the C library lane by lane.
 *
 * They are the algorithms of runtime/snnrt_math.inc (which the C targets
 * paste into their code under --math fast), operation for operation, so
 * that they have its documented error bounds against the exact result:
 * expf 2 units in the last place, logf 2, tanhf 4 (sigmoid, 1 / (1 +
 * exp(-x)), 3), within 2^-126 where the result is subnormal; the C
 * library's special values (exp(-inf) = 0, exp(inf) = inf, log(0) = -inf,
 * log of a negative NaN, NaN in NaN out); fmin and fmax return the other
 * operand when one is NaN. In short:
 *   exp x  = (1 + p(r)) 2^n, x = n ln 2 + r, |r| <= ln(2) / 2, p the Taylor
 *            polynomial of exp(r) - 1 to degree 7, ln 2 in two parts;
 *   log x  = e ln 2 + 2 atanh(s), x = m 2^e, s = (m - 1) / (m + 1);
 *   tanh x = expm1(2|x|) / (expm1(2|x|) + 2) with the sign of x.
 * Each is an internal function of the module, snnc_fast_<name>_v<lanes>,
 * written once and inlined by the optimizer where it is called.
 * tests/backend/test_llvm_math.py checks the bounds against numpy's
 * double-precision functions.
 */
#include <string.h>

#include "ll.h"

/* ---- constants and operations on `n` lanes (n 1: scalars) ---- */

static LLVMTypeRef ity(Ll *L, int n) { return n == 1 ? L->i32 : LLVMVectorType(L->i32, (unsigned)n); }
static LLVMTypeRef fty(Ll *L, int n) { return n == 1 ? L->f32 : LLVMVectorType(L->f32, (unsigned)n); }

static LLVMValueRef ki(Ll *L, unsigned v, int n) {
    LLVMValueRef k = LLVMConstInt(L->i32, v, 0);
    if (n == 1)
        return k;
    LLVMValueRef e[LL_LANES];
    for (int i = 0; i < n; i++)
        e[i] = k;
    return LLVMConstVector(e, (unsigned)n);
}

#define K(v_) ll_flt(L, (v_), n)
#define ADD(p_, q_) LLVMBuildFAdd(L->b, (p_), (q_), "")
#define SUB(p_, q_) LLVMBuildFSub(L->b, (p_), (q_), "")
#define MUL(p_, q_) LLVMBuildFMul(L->b, (p_), (q_), "")
#define DIV(p_, q_) LLVMBuildFDiv(L->b, (p_), (q_), "")
#define SEL(c_, p_, q_) LLVMBuildSelect(L->b, (c_), (p_), (q_), "")
#define FCMP(op_, p_, q_) LLVMBuildFCmp(L->b, LLVMReal##op_, (p_), (q_), "")

/* exp(r) - 1 for |r| <= ln(2) / 2: the Taylor polynomial to degree 7. */
static LLVMValueRef expm1_poly(Ll *L, LLVMValueRef r, int n) {
    LLVMValueRef p = ADD(K(1.0f / 720.0f), MUL(r, K(1.0f / 5040.0f)));
    LLVMValueRef q = ADD(K(1.0f / 24.0f), MUL(r, ADD(K(1.0f / 120.0f), MUL(r, p))));
    return MUL(r, ADD(K(1.0f), MUL(r, ADD(K(0.5f), MUL(r, ADD(K(1.0f / 6.0f), MUL(r, q)))))));
}

/* x = n ln 2 + r: x clamped to [-104, 89] (exp is 0 or inf in float
   beyond), n rounded to nearest by adding and subtracting 1.5 * 2^23, 0
   for a NaN; returns r, n in *ni. */
static LLVMValueRef exp_reduce(Ll *L, LLVMValueRef x, int n, LLVMValueRef *ni) {
    LLVMValueRef xc = SEL(FCMP(OLT, x, K(-104.0f)), K(-104.0f), SEL(FCMP(OGT, x, K(89.0f)), K(89.0f), x));
    LLVMValueRef k = SUB(ADD(MUL(xc, K(1.44269504f)), K(12582912.0f)), K(12582912.0f));
    LLVMValueRef kk = SEL(FCMP(OEQ, k, k), k, K(0.0f));
    *ni = LLVMBuildFPToSI(L->b, kk, ity(L, n), "");
    return SUB(SUB(xc, MUL(kk, K(0.693359375f))), MUL(kk, K(-2.12194440e-4f)));
}

/* (1 + poly) 2^n, 2^n as two normal powers of two (2^(n/2) and
   2^(n - n/2)), so that a subnormal result rounds once. */
static LLVMValueRef exp_scale(Ll *L, LLVMValueRef poly, LLVMValueRef ni, int n) {
    LLVMValueRef h = LLVMBuildSDiv(L->b, ni, ki(L, 2, n), "");
    LLVMValueRef lo = LLVMBuildShl(L->b, LLVMBuildAdd(L->b, h, ki(L, 127, n), ""), ki(L, 23, n), "");
    LLVMValueRef hi = LLVMBuildShl(L->b, LLVMBuildAdd(L->b, LLVMBuildSub(L->b, ni, h, ""), ki(L, 127, n), ""),
                                   ki(L, 23, n), "");
    return MUL(MUL(ADD(K(1.0f), poly), LLVMBuildBitCast(L->b, lo, fty(L, n), "")),
               LLVMBuildBitCast(L->b, hi, fty(L, n), ""));
}

static LLVMValueRef fast_exp(Ll *L, LLVMValueRef x, int n) {
    LLVMValueRef ni, r = exp_reduce(L, x, n, &ni);
    return exp_scale(L, expm1_poly(L, r, n), ni, n);
}

/* exp(x) - 1: the polynomial alone where n = 0 (no cancellation). */
static LLVMValueRef fast_expm1(Ll *L, LLVMValueRef x, int n) {
    LLVMValueRef ni, r = exp_reduce(L, x, n, &ni);
    LLVMValueRef e = SUB(exp_scale(L, expm1_poly(L, r, n), ni, n), K(1.0f));
    LLVMValueRef near = LLVMBuildAnd(L->b, LLVMBuildICmp(L->b, LLVMIntEQ, ni, ki(L, 0, n), ""), FCMP(OEQ, x, x), "");
    return SEL(near, expm1_poly(L, x, n), e);
}

static LLVMValueRef fast_tanh(Ll *L, LLVMValueRef x, int n) {
    LLVMValueRef a = SEL(FCMP(OLT, x, K(0.0f)), LLVMBuildFNeg(L->b, x, ""), x);
    LLVMValueRef m = fast_expm1(L, MUL(K(2.0f), SEL(FCMP(OGT, a, K(10.0f)), K(10.0f), a)), n);
    LLVMValueRef t = DIV(m, ADD(m, K(2.0f)));
    return SEL(FCMP(OLT, x, K(0.0f)), LLVMBuildFNeg(L->b, t, ""), SEL(FCMP(OGT, x, K(0.0f)), t, x));
}

/* log x: subnormals scaled by 2^23 first; the mantissa m in
   [sqrt(1/2), sqrt(2)), log m = 2 atanh(s) by its series to s^11. */
static LLVMValueRef fast_log(Ll *L, LLVMValueRef x, int n) {
    LLVMValueRef sub = FCMP(OLT, x, K(1.17549435e-38f));
    LLVMValueRef u = LLVMBuildBitCast(L->b, SEL(sub, MUL(x, K(8388608.0f)), x), ity(L, n), "");
    LLVMValueRef mant = LLVMBuildAnd(L->b, u, ki(L, 0x7fffffu, n), "");
    LLVMValueRef big = LLVMBuildICmp(L->b, LLVMIntUGT, mant, ki(L, 0x3504f3u, n), ""); /* above sqrt(2) */
    LLVMValueRef e = LLVMBuildSub(L->b, LLVMBuildLShr(L->b, u, ki(L, 23, n), ""), ki(L, 127, n), "");
    e = LLVMBuildAdd(L->b, e, LLVMBuildZExt(L->b, big, ity(L, n), ""), "");
    e = LLVMBuildSub(L->b, e, SEL(sub, ki(L, 23, n), ki(L, 0, n)), "");
    LLVMValueRef m = LLVMBuildBitCast(
        L->b, LLVMBuildOr(L->b, mant, SEL(big, ki(L, 0x3f000000u, n), ki(L, 0x3f800000u, n)), ""), fty(L, n), "");
    LLVMValueRef f = SUB(m, K(1.0f)), s = DIV(f, ADD(K(2.0f), f)), z = MUL(s, s);
    LLVMValueRef w = ADD(K(1.0f / 9.0f), MUL(z, K(1.0f / 11.0f)));
    w = ADD(K(1.0f / 7.0f), MUL(z, w));
    w = ADD(K(1.0f / 5.0f), MUL(z, w));
    w = MUL(z, ADD(K(1.0f / 3.0f), MUL(z, w)));
    LLVMValueRef s2 = MUL(K(2.0f), s);
    LLVMValueRef lm = ADD(s2, MUL(s2, w));
    LLVMValueRef ef = LLVMBuildSIToFP(L->b, e, fty(L, n), "");
    LLVMValueRef r = ADD(MUL(ef, K(0.693359375f)), ADD(MUL(ef, K(-2.12194440e-4f)), lm));
    LLVMValueRef ok = LLVMBuildAnd(L->b, FCMP(OGT, x, K(0.0f)), FCMP(OLE, x, K(3.40282347e+38f)), "");
    LLVMValueRef nan = LLVMBuildBitCast(L->b, ki(L, 0x7fc00000u, n), fty(L, n), "");
    LLVMValueRef ninf = LLVMBuildBitCast(L->b, ki(L, 0xff800000u, n), fty(L, n), "");
    return SEL(ok, r, SEL(FCMP(OEQ, x, K(0.0f)), ninf, SEL(FCMP(OLT, x, K(0.0f)), nan, x)));
}

/* fmin, fmax: a where a < b (a > b) or b is NaN, else b. */
static LLVMValueRef fast_minmax(Ll *L, LLVMValueRef a, LLVMValueRef b, int max) {
    LLVMValueRef c = max ? FCMP(OGT, a, b) : FCMP(OLT, a, b);
    return SEL(LLVMBuildOr(L->b, c, FCMP(UNO, b, b), ""), a, b);
}

LLVMValueRef ll_fast_math(Ll *L, const char *name, LLVMValueRef a, LLVMValueRef b, int lanes) {
    static const char *const names[] = {"expf", "logf", "tanhf", "fminf", "fmaxf"};
    int which = -1;
    for (int k = 0; k < 5; k++)
        if (!strcmp(name, names[k]))
            which = k;
    if (which < 0)
        return NULL;
    const char *fname = arena_printf(L->a, "snnc_fast_%s_v%d", name, lanes);
    LLVMValueRef fn = LLVMGetNamedFunction(L->mod, fname);
    if (!fn) {
        /* written with a builder of its own, at the end of the module */
        LLVMTypeRef t = fty(L, lanes), params[2] = {t, t};
        unsigned np = which >= 3 ? 2 : 1;
        fn = LLVMAddFunction(L->mod, fname, LLVMFunctionType(t, params, np, 0));
        LLVMSetLinkage(fn, LLVMInternalLinkage);
        LLVMBuilderRef outer = L->b;
        L->b = LLVMCreateBuilderInContext(L->ctx);
        LLVMPositionBuilderAtEnd(L->b, LLVMAppendBasicBlockInContext(L->ctx, fn, "entry"));
        LLVMValueRef x = LLVMGetParam(fn, 0), y = np == 2 ? LLVMGetParam(fn, 1) : NULL, r;
        LLVMSetValueName2(x, np == 2 ? "a" : "x", 1);
        if (y)
            LLVMSetValueName2(y, "b", 1);
        switch (which) {
        case 0: r = fast_exp(L, x, lanes); break;
        case 1: r = fast_log(L, x, lanes); break;
        case 2: r = fast_tanh(L, x, lanes); break;
        default: r = fast_minmax(L, x, y, which == 4); break;
        }
        LLVMBuildRet(L->b, r);
        LLVMDisposeBuilder(L->b);
        L->b = outer;
    }
    LLVMValueRef args[2] = {a, b};
    return ll_call(L, fn, args, b ? 2 : 1);
}
