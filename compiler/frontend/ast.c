/*
 * ast.c: constructors for syntax tree nodes, called from the parser's
 * actions so that each action is one line.
 *
 * The constructors of expressions keep each node's depth and report an
 * expression deeper than AST_MAX_DEPTH once, where it begins: sema and
 * neuron instantiation recurse over expressions, and a chain such as
 * 1+1+...+1 of a million terms would otherwise overflow their stack.
 */
#include "ast.h"

Node *ast_new(ParseCtx *c, NodeKind k, Loc loc) {
    Node *n = arena_alloc(c->arena, sizeof *n);
    n->kind = k;
    n->loc = loc;
    n->depth = 1;
    return n;
}

/* n's depth is one more than its deepest operand; the node that first
   passes the limit reports it (the nodes above it stay silent). */
static Node *deepen(Node *n, const Node *a, const Node *b, const Node *e) {
    int d = 0;
    if (a && a->depth > d)
        d = a->depth;
    if (b && b->depth > d)
        d = b->depth;
    if (e && e->depth > d)
        d = e->depth;
    n->depth = d + 1;
    if (n->depth == AST_MAX_DEPTH + 1)
        error_at(ast_start(n), "expression is nested too deeply (more than %d levels)",
                 AST_MAX_DEPTH);
    return n;
}

/* The deepest item of a list, for calls and lists. */
static const Node *deepest(const Node *list) {
    const Node *m = NULL;
    for (; list; list = list->next)
        if (!m || list->depth > m->depth)
            m = list;
    return m;
}

Node *ast_num(ParseCtx *c, Loc loc, double v, int is_int) {
    Node *n = ast_new(c, N_NUM, loc);
    n->num = v;
    n->is_int = is_int;
    return n;
}

Node *ast_ident(ParseCtx *c, Loc loc, const char *name) {
    Node *n = ast_new(c, N_IDENT, loc);
    n->name = name;
    return n;
}

Node *ast_call(ParseCtx *c, Loc loc, const char *name, Node *args) {
    Node *n = ast_new(c, N_CALL, loc);
    n->name = name;
    n->args = args;
    return deepen(n, deepest(args), NULL, NULL);
}

Node *ast_binop(ParseCtx *c, Loc loc, AstOp op, Node *a, Node *b) {
    Node *n = ast_new(c, N_BINOP, loc);
    n->op = op;
    n->a = a;
    n->b = b;
    return deepen(n, a, b, NULL);
}

Node *ast_unop(ParseCtx *c, Loc loc, AstOp op, Node *a) {
    Node *n = ast_new(c, N_UNOP, loc);
    n->op = op;
    n->a = a;
    return deepen(n, a, NULL, NULL);
}

Node *ast_cond(ParseCtx *c, Loc loc, Node *a, Node *b, Node *e) {
    Node *n = ast_new(c, N_COND, loc);
    n->a = a;
    n->b = b;
    n->c = e;
    return deepen(n, a, b, e);
}

Node *ast_list(ParseCtx *c, Loc loc, Node *items) {
    Node *n = ast_new(c, N_LIST, loc);
    n->args = items;
    return deepen(n, deepest(items), NULL, NULL);
}

Node *ast_as(ParseCtx *c, Loc loc, Node *a, const char *name) {
    Node *n = ast_new(c, N_AS, loc);
    n->a = a;
    n->name = name;
    return deepen(n, a, NULL, NULL);
}

Node *ast_kwarg(ParseCtx *c, Loc loc, const char *name, Node *a) {
    Node *n = ast_new(c, N_KWARG, loc);
    n->name = name;
    n->a = a;
    return deepen(n, a, NULL, NULL);
}

/* Appends in constant time: the head of a list remembers its last node,
   so that a file of many statements or a long list parses in linear time. */
Node *ast_append(Node *list, Node *item) {
    if (!item)
        return list;
    if (!list)
        return item;
    Node *p = list->tail ? list->tail : list;
    while (p->next)
        p = p->next;
    p->next = item;
    while (p->next)
        p = p->next;
    list->tail = p;
    return list;
}

int ast_count(const Node *list) {
    int n = 0;
    for (; list; list = list->next)
        n++;
    return n;
}

const char *ast_op_text(AstOp op) {
    static const char *t[] = {"+", "-", "*", "/", "<", "<=", ">", ">=", "==", "!=",
                              "&&", "||", "!", "-"};
    return t[op];
}

Loc ast_start(const Node *e) {
    while (e->kind == N_BINOP || e->kind == N_PIPE || e->kind == N_COND || e->kind == N_AS)
        e = e->a;
    return e->loc;
}

int ast_number(const Node *e, double *v, int *is_int) {
    if (e->kind == N_NUM || e->kind == N_BOOL) {
        *v = e->num;
        *is_int = e->kind == N_BOOL || e->is_int;
        return 1;
    }
    if (e->kind == N_UNOP && e->op == OP_NEG && ast_number(e->a, v, is_int)) {
        *v = -*v;
        return 1;
    }
    return 0;
}
