/*
 * ir.h: the graph IR shared by every front end and every back end.
 *
 * A graph is a list of nodes in a topological order of the same-step edges;
 * values are referred to by their node index (stable in dumps). A DELAY node
 * reads its source's value of the previous step, so its source may come
 * later in the list: that is how recurrent edges are written. Each value is
 * a tensor of shape [B, shape...] at one timestep; shapes here are per
 * sample. NEURON nodes carry a NeuronProg: the per-step equations of their
 * model, instantiated, in SSA form.
 */
#ifndef SNNC_IR_H
#define SNNC_IR_H

#include "common.h"

typedef enum IrOp {
#define OP(id, name, nin, kernel, sig, doc) IR_##id,
#include "ops.def"
#undef OP
    IR_NUM_OPS
} IrOp;

typedef enum EqOp {
#define EQ(id, name, arity, callable, libm) EQ_##id,
#include "eqops.def"
#undef EQ
    EQ_NUM_OPS
} EqOp;

typedef enum SurrKind {
#define SURR(id, name, alpha, doc) SURR_##id,
#include "surrogates.def"
#undef SURR
    SURR_NUM
} SurrKind;

extern const char *const ir_op_names[IR_NUM_OPS];
extern const int ir_op_inputs[IR_NUM_OPS];
extern const char *const ir_op_sigs[IR_NUM_OPS];
extern const int ir_op_kernel[IR_NUM_OPS]; /* 1: targets need a kernel for it */
extern const char *const eq_op_names[EQ_NUM_OPS];
extern const int eq_op_arity[EQ_NUM_OPS];
extern const int eq_op_callable[EQ_NUM_OPS];
extern const int eq_op_libm[EQ_NUM_OPS]; /* 1: the C targets call the math library */
extern const char *const surr_names[SURR_NUM];
extern const double surr_default_alpha[SURR_NUM];

#define IR_MAX_DIMS 4
/* No tensor of one sample may hold more elements than this. */
#define IR_MAX_ELEMS ((int64_t)1 << 31)
/* the largest `encode events(window = W)`: t * T stays below 2^60 */
#define IR_EVENTS_MAX_WINDOW ((int64_t)1 << 40)

typedef struct Shape {
    int ndim;
    int64_t d[IR_MAX_DIMS];
} Shape;

int64_t shape_count(const Shape *s);
char *shape_str(Arena *a, const Shape *s);

/* Granularity of a learnable neuron parameter. */
typedef enum Gran { GRAN_LAYER, GRAN_CHANNEL, GRAN_NEURON } Gran;
extern const char *const gran_names[3];

/* One instruction of a neuron program. Operands are indices of earlier
   instructions. */
typedef struct EqInst {
    EqOp op;
    int a, b, c;
    float k;       /* EQ_CONST */
    int idx;       /* EQ_STATE, EQ_PARAM: which one */
    SurrKind surr; /* EQ_SPIKE */
    float alpha;   /* EQ_SPIKE: surrogate parameter */
    Loc loc;
} EqInst;

typedef VEC(EqInst) EqCode;

typedef struct NeuronState {
    const char *name;
    float init;
    int next; /* instruction that gives the value at the end of the step */
} NeuronState;

typedef struct NeuronParam {
    const char *name;
    Gran gran;
    float init;
    int param; /* index into IrGraph.params */
} NeuronParam;

/* A value named in the model's equations, for --record: its final value. */
typedef struct NeuronName {
    const char *name;
    int inst;
} NeuronName;

/* The backward of one step of a neuron program, made by the autodiff pass.
   Its code starts with a copy of the forward instructions (recomputed from
   the state at the start of the step and the step's input), followed by the
   adjoints, in SSA order. EQ_ADJ instructions read the incoming adjoints.
   The results are instruction indices, or -1 where the gradient is zero. */
typedef struct NeuronGrad {
    EqCode code;
    int dx;      /* dL/dx of the step */
    int *dstate; /* per state: dL/d(the state's value at the start of the step) */
    int *dparam; /* per parameter: this element's and step's contribution to dL/dparam */
} NeuronGrad;

/* A constructor argument of a neuron layer (for export). */
typedef struct NeuronArg {
    const char *name;
    const struct Node *value; /* the expression as written: at the call, or the model's default */
} NeuronArg;

typedef struct NeuronProg {
    const char *model; /* the neuron model's name */
    Loc model_loc;
    VEC(NeuronArg) args; /* the arguments given, by name */
    VEC(NeuronArg) ctor; /* every argument of the model, in its order: given, else the default */
    EqCode code;
    VEC(NeuronState) states;
    VEC(NeuronParam) params;
    VEC(NeuronName) names;
    int emit; /* instruction whose value is the layer's output */
    NeuronGrad *grad; /* set by the autodiff pass when the graph is trained */
} NeuronProg;

typedef enum ParamKind {
    PK_WEIGHT,   /* dense or conv weight: uniform(+-1/sqrt(fan_in)) at --init */
    PK_BIAS,     /* bias: uniform(+-1/sqrt(fan_in)) */
    PK_ONES,     /* batchnorm weight, running variance */
    PK_ZEROS,    /* batchnorm bias, running mean */
    PK_CONST,    /* neuron parameter: its model's initial value */
} ParamKind;

typedef struct IrParam {
    const char *name; /* "<layer>.<param>", the tensor name in weight files */
    int node;
    Shape shape;
    int64_t count;
    ParamKind kind;
    float init;     /* PK_CONST */
    int64_t fan_in; /* PK_WEIGHT, PK_BIAS */
    int64_t off;    /* memplan: offset in the parameter block, in floats */
    int learnable;  /* 0 for buffers such as batchnorm's running statistics */
} IrParam;

/* Where the data of a node lives in one memory plan (passes memplan and
   trainplan; docs/ir.md). Offsets are in floats from the start of the plan's
   region (after the parameters, and in training after their gradients too),
   already scaled by the largest batch; -1 where the node has no such buffer.
   A buffer of c floats per sample that holds S steps takes S x maxb x c
   floats, and step t of a batch of B starts at off + (t % S) x B x c, so
   the rows of consecutive steps are contiguous: a synaptic layer computes
   several steps as one matrix product. */
typedef struct IrBufs {
    int inv;        /* the same at every step: stored and computed once per sequence */
    int64_t val;    /* the output (a flatten's is its input's) */
    int vsteps;     /* steps the output holds: 1 when inv */
    int64_t state;  /* neuron: its states, the k-th at state + k x ssteps x maxb x c */
    int ssteps;     /* 1: updated in place; T + 1: the state at the start of every step */
    int remat;      /* training, neuron (the remat pass): ssteps 1, updated in place by the
                       forward; the backward recomputes the state at the start of every step
                       from the initial state and the inputs */
    int64_t carry;  /* delay (inference): its source's value at the end of the last chunk */
    int64_t grad;   /* training: dL/d(output), shaped as val; -1 when not needed or gext */
    int gext;       /* training: the gradient is the caller's buffer, not the workspace's:
                       IR_GEXT_DOUTPUT (the output's, read in place) or IR_GEXT_DINPUT (the
                       input's, written only when dL/dinput is asked) */
    int64_t dstate; /* training, neuron: the adjoints of the states carried one step back */
    int64_t pacc;   /* training, neuron: per parameter, per element, double sums (2 floats each) */
    int64_t mask;   /* training, dropout: the mask of the sequence */
    int64_t stat;   /* training, batchnorm: mean and 1/std per channel of the batch */
    int needgrad;   /* training: dL/d(output) is needed: 0 no, 1 yes, 2 only for dL/dinput */
    int bits;       /* training: the output is spikes kept 1 bit each, 32 to a 32-bit word (the
                       bit k of word w is element 32 w + k of the buffer), read only by dense
                       layers: val then holds vsteps x maxb x c / 32 words */
    int gset;       /* training: grad has one writer outside recurrent groups whose backward
                       writes all of it (trainplan.c's writes_all), which may set it rather
                       than add to it: it lies before IrPlan.zeroed (targets that add zero
                       it too) */
    int wset;       /* training, dense outside recurrent groups: no other layer uses its
                       parameters, whose gradients it may set rather than add to */
    int vext;       /* training, the input (and its views) unless encoded into spikes: the
                       value is the caller's `input`, read in place by the forward and the
                       backward (val -1) */
    int gover;      /* training: grad is val's buffer: the one reader, a neuron layer, reads
                       step t of the value and then sets step t of the gradient, and no
                       backward reads the value after it (see trainplan.c) */
    int shalf;      /* training, neuron outside recurrent groups, IrGraph.store 16 bits: its
                       states are stored in 16 bits each, so that ssteps x maxb x c of them
                       take half as many floats */
    int vhalf;      /* training, IrGraph.store 16 bits, a dense, convolution or batchnorm
                       layer outside recurrent groups whose output's gradient is written over
                       it (gover): the output and its gradient are stored in 16 bits, half
                       the floats */
} IrBufs;

enum { IR_GEXT_NONE, IR_GEXT_DOUTPUT, IR_GEXT_DINPUT };

/* A group of the schedule: nodes that run together. A group of one
   feed-forward node runs layer-major (all the steps of a chunk at once);
   a recurrent group (the nodes of a cycle through prev()) runs time-major,
   every member once per step. */
typedef struct IrGroup {
    int first, count; /* its nodes are IrGraph.order[first .. first + count) */
    int recurrent;
} IrGroup;

/* A memory plan: the layout of a workspace (inference or training). */
typedef struct IrPlan {
    int planned;
    int chunk;       /* steps computed layer-major at a time (1 .. T) */
    int64_t floats;  /* the region's size, in floats (after the parameters) */
    int64_t persist; /* of which the first `persist` floats outlive a chunk */
    int64_t zeroed;  /* training: [persist, zeroed) are the gradients of IrBufs.gset,
                        [zeroed, floats) what the backward must zero before it adds */
    int64_t readout; /* inference: the readout accumulator, -1 if none */
    int64_t counter; /* inference: the step counter of step() (room for a long) */
    IrBufs *at;      /* per node */
} IrPlan;

typedef struct IrNode {
    IrOp op;
    const char *name; /* layer name, unique in the graph */
    Loc loc;
    int in[2];
    int nin;
    Shape shape; /* output shape per sample */
    /* attributes, by op */
    int64_t out;            /* DENSE, CONV2D: output features or channels */
    int kernel[2], stride[2], pad[2];
    int groups;
    int bias;
    float fval;             /* SCALE: factor; BATCHNORM: eps; DROPOUT: p */
    Shape to;               /* RESHAPE: the shape asked for (one size may be -1) */
    NeuronProg *neuron;     /* NEURON */
    int param[4];           /* indices into IrGraph.params, -1 if none */
    int nparam;
    /* annotations made by passes */
    int dead;      /* removed by a pass; skipped by everyone */
    int invariant; /* same value at every step (hoisted out of the time loop) */
    int alias;     /* memplan: the node whose buffer this one reads (flatten, reshape), or -1 */
    int bits;      /* spikebits: training keeps its spikes as bits */
    int remat;     /* remat: training keeps no states; the backward recomputes them */
    int group;     /* schedule: its group */
} IrNode;

/* How the input becomes each step's value (docs/language.md, "input"). */
typedef enum Encoding {
    ENC_DIRECT,   /* the given [B, ...] at every step */
    ENC_SEQUENCE, /* the given [T, B, ...], one frame per step */
    ENC_RATE,     /* spikes drawn from the given intensities [B, ...] (seeded) */
    ENC_LATENCY,  /* one spike per element, earlier the brighter (no randomness) */
} Encoding;
/* The encoders that turn a [B, ...] input into spikes in the generated code. */
#define ENC_SPIKES(e) ((e) == ENC_RATE || (e) == ENC_LATENCY)
typedef enum Readout {
    RO_STEPS, /* every step's output: [T, B, ...] */
    RO_COUNT, /* sum over steps */
    RO_RATE,  /* mean over steps (the name fits spikes) */
    RO_MEAN,  /* mean over steps (the name fits membranes) */
    RO_LAST,  /* the last step's output */
    RO_MAX,   /* maximum over steps */
} Readout;
extern const char *const encoding_names[4];
extern const char *const readout_names[6];

/* A value recorded at every step for the caller (--record). */
typedef struct IrProbe {
    const char *spec; /* as the user wrote it: layer or layer.var */
    int node;
    const char *var; /* a state or named value of a neuron layer, or NULL: its output */
    int64_t count;
    int64_t buf; /* memplan: its buffer (chunk steps) when it records a neuron variable, else -1 */
} IrProbe;

typedef struct IrGraph {
    Arena *arena;
    const char *name;
    const char *source; /* file name, for comments in generated code */
    Loc loc;
    int timesteps;
    int batch; /* the largest batch the generated code accepts */
    int train; /* the graph will be trained: the passes derive gradients */
    /* training: how the neuron states that the backward reads are stored
       (the cuda target's --precision bf16 and fp16 store them in 16 bits) */
    enum { STORE_FP32, STORE_BF16, STORE_FP16 } store;
    /* training: the target's backward can recompute neuron states from the
       inputs instead of reading them (the C targets; the remat pass) */
    int remat_ok;
    int input;
    Encoding encoding;
    float enc_threshold; /* ENC_LATENCY: intensities below it never fire */
    /* `encode events(...)`: an ENC_SEQUENCE input whose frames the driver
       bins from event lists (runtime/events.c); the targets see frames */
    struct {
        int on, binary;
        int64_t window;
    } events;
    int output;
    Readout readout;
    VEC(IrNode) nodes;
    VEC(IrParam) params;
    VEC(IrProbe) probes;
    /* schedule: live nodes in the order they run, in groups */
    int *order, norder;
    VEC(IrGroup) groups;
    /* memplan: the parameters, in one block of param_floats floats (each at
       IrParam.off); the inference plan; trainplan: the training plan */
    int64_t param_floats;
    int chunk; /* requested inference chunk (--chunk); 0: all the steps */
    IrPlan infer, trainp;
} IrGraph;

IrGraph *ir_new(Arena *a, const char *name);
int ir_add_node(IrGraph *g, IrOp op, const char *name, Loc loc);
int ir_add_param(IrGraph *g, int node, const char *pname, const Shape *shape,
                 ParamKind kind, float init, int64_t fan_in);
int eq_emit(Arena *a, NeuronProg *p, EqInst in);
int eq_push(Arena *a, EqCode *code, EqInst in);
/* Number of operands an instruction reads (a, b, c in that order). */
int eq_nops(const EqInst *e);
int ir_find_node(const IrGraph *g, const char *name);
/* The multiply-accumulates of node i's synaptic product (dense, conv2d)
   per step and sample; 0 for every other op. */
int64_t ir_node_macs(const IrGraph *g, int i);
/* Index of the neuron program value `var` (a state or a named value) in
   node n, or -1; *state gets the state index or -1. */
int ir_neuron_var(const IrGraph *g, int n, const char *var, int *state);

/* Text dump (documented in docs/ir.md) and Graphviz. */
void ir_print(const IrGraph *g, Buf *out);
void ir_print_neuron(const NeuronProg *p, const IrGraph *g, Buf *out, const char *indent);
void ir_dot(const IrGraph *g, Buf *out);
/* Consistency checks between passes; returns the number of problems (ICE). */
int ir_check(const IrGraph *g);

#endif
