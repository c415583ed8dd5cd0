/*
 * ast.c: constructors for syntax tree nodes, called from the parser's
 * actions so that each action is one line.
 */
#include "ast.h"

Node *ast_new(ParseCtx *c, NodeKind k, Loc loc) {
    Node *n = arena_alloc(c->arena, sizeof *n);
    n->kind = k;
    n->loc = loc;
    return n;
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
    return n;
}

Node *ast_binop(ParseCtx *c, Loc loc, AstOp op, Node *a, Node *b) {
    Node *n = ast_new(c, N_BINOP, loc);
    n->op = op;
    n->a = a;
    n->b = b;
    return n;
}

Node *ast_unop(ParseCtx *c, Loc loc, AstOp op, Node *a) {
    Node *n = ast_new(c, N_UNOP, loc);
    n->op = op;
    n->a = a;
    return n;
}

Node *ast_append(Node *list, Node *item) {
    if (!item)
        return list;
    if (!list)
        return item;
    Node *p = list;
    while (p->next)
        p = p->next;
    p->next = item;
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
