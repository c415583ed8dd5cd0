/*
 * ast.h: the syntax tree of the description language.
 *
 * One Node type with a kind, as in chibicc: expressions, statements and
 * definitions share it, and sequences (arguments, statements, items) are
 * linked through `next`. The parser builds nodes through the ast_ functions
 * below and gives them meaning nowhere: all checking is in sema, except the
 * depth of expressions, which is bounded here so that no later stage can
 * run out of stack on a hostile input.
 */
#ifndef SNNC_AST_H
#define SNNC_AST_H

#include "common.h"

typedef enum NodeKind {
    /* expressions */
    N_NUM,    /* num; is_int when written without '.' or exponent */
    N_BOOL,   /* num is 0 or 1 */
    N_IDENT,  /* name */
    N_CALL,   /* name(args): a function, layer, neuron model or surrogate */
    N_BINOP,  /* a op b */
    N_UNOP,   /* op a */
    N_COND,   /* a ? b : c */
    N_LIST,   /* [args] */
    N_PIPE,   /* a |> b */
    N_AS,     /* a as name */
    N_KWARG,  /* name = a, inside call arguments */
    N_STR,    /* a string literal, in name */
    /* statements in a neuron body */
    S_PARAM,  /* param name = a per gran(name2) */
    S_STATE,  /* state name = a (a may be NULL: an error sema reports) */
    S_ASSIGN, /* name = a */
    S_EMIT,   /* emit a */
    S_IF,     /* if a { body } else { els } */
    /* statements in a network body */
    S_TIMESTEPS, /* timesteps a */
    S_INPUT,     /* input name : a encode name2(args) (name2 written at loc2) */
    S_OUTPUT,    /* output a readout name2 (written at loc2) */
    /* statements in a train body */
    S_SETTING,   /* name a: one setting */
    /* definitions */
    D_NEURON,  /* neuron name(params) { body }; params are N_KWARG or N_IDENT */
    D_NETWORK, /* network name { body } */
    D_TRAIN,   /* train name { body }: how to train network `name` */
} NodeKind;

/* Operators of N_BINOP and N_UNOP. */
typedef enum AstOp {
    OP_ADD, OP_SUB, OP_MUL, OP_DIV,
    OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE,
    OP_AND, OP_OR, OP_NOT, OP_NEG,
} AstOp;

typedef struct Node Node;
struct Node {
    NodeKind kind;
    Loc loc;
    AstOp op;
    int is_int;
    double num;
    const char *name;
    const char *name2;
    Loc loc2;
    int depth; /* expressions: height of the tree (a leaf is 1) */
    Node *a, *b, *c;
    Node *args; /* call arguments, list items, parameters */
    Node *body, *els;
    Node *next;
    Node *tail; /* in the first node of a list: the last one */
};

/* Deeper expressions are an error: every stage walks them recursively. */
#define AST_MAX_DEPTH 1000

/* Open brackets the lexer has seen and not yet seen closed. */
#define PARSE_MAX_OPEN 256

typedef struct ParseCtx {
    Arena *arena;
    int file;
    Node *items; /* the parsed definitions, in order */
    void *scanner;
    /* what the lexer saw last, for syntax error messages */
    Loc tok_end, prev_end; /* just after the latest token and the one before */
    char tok_text[32];     /* the latest token, cut to fit */
    struct {
        Loc loc;
        char ch;
    } open[PARSE_MAX_OPEN];
    int nopen; /* may exceed PARSE_MAX_OPEN: only the first are kept */
} ParseCtx;

Node *ast_new(ParseCtx *c, NodeKind k, Loc loc);
Node *ast_num(ParseCtx *c, Loc loc, double v, int is_int);
Node *ast_ident(ParseCtx *c, Loc loc, const char *name);
Node *ast_call(ParseCtx *c, Loc loc, const char *name, Node *args);
Node *ast_binop(ParseCtx *c, Loc loc, AstOp op, Node *a, Node *b);
Node *ast_unop(ParseCtx *c, Loc loc, AstOp op, Node *a);
Node *ast_cond(ParseCtx *c, Loc loc, Node *a, Node *b, Node *e);
Node *ast_list(ParseCtx *c, Loc loc, Node *items);
Node *ast_as(ParseCtx *c, Loc loc, Node *a, const char *name);
Node *ast_kwarg(ParseCtx *c, Loc loc, const char *name, Node *a);
Node *ast_append(Node *list, Node *item);
int ast_count(const Node *list);
/* The number an expression writes (a literal, a boolean, a negated one); 1,
   or 0 when it is no such constant. *is_int: an integer or a boolean. */
int ast_number(const Node *e, double *v, int *is_int);
const char *ast_op_text(AstOp op);
/* Where an expression's text begins (a binary operation's own location is
   its operator). */
Loc ast_start(const Node *e);

/* Parse text (already registered as source `file`); returns the items or
   NULL. Syntax errors are reported through the diagnostics. */
Node *parse_source(Arena *arena, int file, const char *text, size_t len);

#endif
