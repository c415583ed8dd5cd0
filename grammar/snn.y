/*
 * snn.y: grammar of the snnc description language.
 *
 * A file holds neuron model definitions and network definitions. Actions are
 * one-line calls into the ast_ builders; meaning is given in sema. The
 * grammar recovers from a syntax error at the next ';' or '}' so that one run
 * reports several errors. Syntax errors are worded here (see
 * yyreport_syntax_error at the end) so that they quote the unexpected
 * token, catch a missing ';' at the end of a line and name the bracket a
 * missing closing one would match.
 */
%define api.pure full
%define api.prefix {snn_yy}
%define parse.error custom
%define parse.lac full
%locations
%expect 0
%param {void *scanner}
%parse-param {struct ParseCtx *ctx}

%code requires {
#include "ast.h"
}

%code {
#include <string.h>
int snn_yylex(SNN_YYSTYPE *lval, SNN_YYLTYPE *lloc, void *scanner);
static void snn_yyerror(SNN_YYLTYPE *l, void *scanner, struct ParseCtx *ctx, const char *msg);
#define L(l) loc_of(ctx, &(l))
static Loc loc_of(struct ParseCtx *c, const SNN_YYLTYPE *l) {
    Loc loc = {c->file, l->first_line, l->first_column};
    return loc;
}
}

%union {
    double num;
    char *str;
    struct Node *node;
}

%token NEURON "'neuron'" NETWORK "'network'" PARAM "'param'" STATE "'state'"
%token EMIT "'emit'" IF "'if'" ELSE "'else'" PER "'per'"
%token TIMESTEPS "'timesteps'" INPUT "'input'" OUTPUT "'output'"
%token ENCODE "'encode'" READOUT "'readout'" AS "'as'" TRAIN "'train'"
%token <num> INT "integer" FLOAT "number" BOOL "boolean"
%token <str> IDENT "identifier" STRING "string"
%token PIPE "'|>'" EQ "'=='" NE "'!='" LE "'<='" GE "'>='" ANDAND "'&&'" OROR "'||'"

%type <node> items item ctor_params_opt ctor_params ctor_param nbody nstmt else_opt
%type <node> netbody netstmt trainbody trainstmt expr args_opt args arg list_opt per_opt

%right '?' ':'
%left PIPE
%precedence AS
%left OROR
%left ANDAND
%left EQ NE
%left '<' '>' LE GE
%left '+' '-'
%left '*' '/'
%precedence UNARY

%%

file: items                     { ctx->items = $1; }
    ;

items: %empty                   { $$ = NULL; }
     | items item               { $$ = ast_append($1, $2); }
     ;

item: NEURON IDENT '(' ctor_params_opt ')' '{' nbody '}'
                                { $$ = ast_new(ctx, D_NEURON, L(@2)); $$->name = $2; $$->args = $4; $$->body = $7; }
    | NETWORK IDENT '{' netbody '}'
                                { $$ = ast_new(ctx, D_NETWORK, L(@2)); $$->name = $2; $$->body = $4; }
    | TRAIN IDENT '{' trainbody '}'
                                { $$ = ast_new(ctx, D_TRAIN, L(@2)); $$->name = $2; $$->body = $4; }
    | error '}'                 { $$ = NULL; yyerrok; }
    ;

ctor_params_opt: %empty         { $$ = NULL; }
               | ctor_params    { $$ = $1; }
               ;
ctor_params: ctor_param                 { $$ = $1; }
           | ctor_params ',' ctor_param { $$ = ast_append($1, $3); }
           ;
ctor_param: IDENT '=' expr      { $$ = ast_kwarg(ctx, L(@1), $1, $3); }
          | IDENT               { $$ = ast_ident(ctx, L(@1), $1); }
          ;

nbody: %empty                   { $$ = NULL; }
     | nbody nstmt              { $$ = ast_append($1, $2); }
     ;

nstmt: PARAM IDENT '=' expr per_opt ';'
                                { $$ = ast_new(ctx, S_PARAM, L(@2)); $$->name = $2; $$->a = $4; $$->b = $5; }
     | STATE IDENT '=' expr ';' { $$ = ast_new(ctx, S_STATE, L(@2)); $$->name = $2; $$->a = $4; }
     | STATE IDENT ';'          { $$ = ast_new(ctx, S_STATE, L(@2)); $$->name = $2; }
     | IDENT '=' expr ';'       { $$ = ast_new(ctx, S_ASSIGN, L(@1)); $$->name = $1; $$->a = $3; }
     | EMIT expr ';'            { $$ = ast_new(ctx, S_EMIT, L(@1)); $$->a = $2; }
     | IF expr '{' nbody '}' else_opt
                                { $$ = ast_new(ctx, S_IF, L(@1)); $$->a = $2; $$->body = $4; $$->els = $6; }
     | error ';'                { $$ = NULL; yyerrok; }
     ;

else_opt: %empty                { $$ = NULL; }
        | ELSE '{' nbody '}'    { $$ = $3; }
        | ELSE nstmt            { $$ = $2; }
        ;

per_opt: %empty                 { $$ = NULL; }
       | PER IDENT              { $$ = ast_ident(ctx, L(@2), $2); }
       | PER NEURON             { $$ = ast_ident(ctx, L(@2), "neuron"); }
       ;

netbody: %empty                 { $$ = NULL; }
       | netbody netstmt        { $$ = ast_append($1, $2); }
       ;

netstmt: TIMESTEPS expr ';'     { $$ = ast_new(ctx, S_TIMESTEPS, L(@1)); $$->a = $2; }
       | INPUT IDENT ':' expr ENCODE IDENT ';'
                                { $$ = ast_new(ctx, S_INPUT, L(@2)); $$->name = $2; $$->a = $4; $$->name2 = $6; $$->loc2 = L(@6); }
       | INPUT IDENT ':' expr ENCODE IDENT '(' args_opt ')' ';'
                                { $$ = ast_new(ctx, S_INPUT, L(@2)); $$->name = $2; $$->a = $4; $$->name2 = $6; $$->loc2 = L(@6);
                                  $$->args = $8; }
       | OUTPUT expr READOUT IDENT ';'
                                { $$ = ast_new(ctx, S_OUTPUT, L(@1)); $$->a = $2; $$->name2 = $4; $$->loc2 = L(@4); }
       | IDENT '=' expr ';'     { $$ = ast_new(ctx, S_ASSIGN, L(@1)); $$->name = $1; $$->a = $3; }
       | error ';'              { $$ = NULL; yyerrok; }
       ;

trainbody: %empty               { $$ = NULL; }
         | trainbody trainstmt  { $$ = ast_append($1, $2); }
         ;

trainstmt: IDENT expr ';'       { $$ = ast_new(ctx, S_SETTING, L(@1)); $$->name = $1; $$->a = $2; }
         | error ';'            { $$ = NULL; yyerrok; }
         ;

expr: INT                       { $$ = ast_num(ctx, L(@1), $1, 1); }
    | STRING                    { $$ = ast_new(ctx, N_STR, L(@1)); $$->name = $1; }
    | FLOAT                     { $$ = ast_num(ctx, L(@1), $1, 0); }
    | BOOL                      { $$ = ast_num(ctx, L(@1), $1, 1); $$->kind = N_BOOL; }
    | IDENT                     { $$ = ast_ident(ctx, L(@1), $1); }
    | NEURON                    { $$ = ast_ident(ctx, L(@1), "neuron"); } /* the granularity */
    | IDENT '(' args_opt ')'    { $$ = ast_call(ctx, L(@1), $1, $3); }
    | '[' list_opt ']'          { $$ = ast_list(ctx, L(@1), $2); }
    | '(' expr ')'              { $$ = $2; }
    | expr PIPE expr            { $$ = ast_binop(ctx, L(@2), OP_ADD, $1, $3); $$->kind = N_PIPE; }
    | expr AS IDENT             { $$ = ast_as(ctx, L(@3), $1, $3); }
    | expr '?' expr ':' expr    { $$ = ast_cond(ctx, L(@2), $1, $3, $5); }
    | expr OROR expr            { $$ = ast_binop(ctx, L(@2), OP_OR, $1, $3); }
    | expr ANDAND expr          { $$ = ast_binop(ctx, L(@2), OP_AND, $1, $3); }
    | expr EQ expr              { $$ = ast_binop(ctx, L(@2), OP_EQ, $1, $3); }
    | expr NE expr              { $$ = ast_binop(ctx, L(@2), OP_NE, $1, $3); }
    | expr '<' expr             { $$ = ast_binop(ctx, L(@2), OP_LT, $1, $3); }
    | expr '>' expr             { $$ = ast_binop(ctx, L(@2), OP_GT, $1, $3); }
    | expr LE expr              { $$ = ast_binop(ctx, L(@2), OP_LE, $1, $3); }
    | expr GE expr              { $$ = ast_binop(ctx, L(@2), OP_GE, $1, $3); }
    | expr '+' expr             { $$ = ast_binop(ctx, L(@2), OP_ADD, $1, $3); }
    | expr '-' expr             { $$ = ast_binop(ctx, L(@2), OP_SUB, $1, $3); }
    | expr '*' expr             { $$ = ast_binop(ctx, L(@2), OP_MUL, $1, $3); }
    | expr '/' expr             { $$ = ast_binop(ctx, L(@2), OP_DIV, $1, $3); }
    | '-' expr %prec UNARY      { $$ = ast_unop(ctx, L(@1), OP_NEG, $2); }
    | '+' expr %prec UNARY      { $$ = $2; }
    | '!' expr %prec UNARY      { $$ = ast_unop(ctx, L(@1), OP_NOT, $2); }
    ;

args_opt: %empty                { $$ = NULL; }
        | args                  { $$ = $1; }
        ;
args: arg                       { $$ = $1; }
    | args ',' arg              { $$ = ast_append($1, $3); }
    ;
arg: expr                       { $$ = $1; }
   | IDENT '=' expr             { $$ = ast_kwarg(ctx, L(@1), $1, $3); }
   ;

list_opt: %empty                { $$ = NULL; }
        | args                  { $$ = $1; }
        ;

%%

/* Only running out of parser stack comes here; syntax errors go to
   yyreport_syntax_error. */
static void snn_yyerror(SNN_YYLTYPE *l, void *scanner, struct ParseCtx *ctx, const char *msg) {
    (void)scanner;
    if (!strcmp(msg, "memory exhausted"))
        msg = "brackets, operators or blocks are nested too deeply here";
    error_at(loc_of(ctx, l), "%s", msg);
}

/* A token for a message: its name, and its text where the name does not
   say it (identifiers and numbers). The lookahead is the latest token the
   lexer read, so its text is ctx->tok_text. */
static const char *token_desc(struct ParseCtx *ctx, yysymbol_kind_t t) {
    if (t == YYSYMBOL_IDENT || t == YYSYMBOL_INT || t == YYSYMBOL_FLOAT || t == YYSYMBOL_BOOL)
        return arena_printf(ctx->arena, "%s '%s'", yysymbol_name(t), ctx->tok_text);
    return yysymbol_name(t);
}

static int expects(const yysymbol_kind_t *exp, int n, int ch) {
    for (int i = 0; i < n; i++)
        if (exp[i] == YYTRANSLATE(ch))
            return 1;
    return 0;
}

/* In order: a missing ';' (the parser wants one and the next token is on a
   later line or closes the block) is reported just after the previous
   token; an error where the innermost open bracket could be closed names
   that bracket; anything else says what was found and, when the choice is
   short, what was expected. Lookahead correction (parse.lac) keeps the
   expected tokens exact. */
static int yyreport_syntax_error(const yypcontext_t *pc, void *scanner, struct ParseCtx *ctx) {
    (void)scanner;
    yysymbol_kind_t exp[YYNTOKENS];
    yysymbol_kind_t t = yypcontext_token(pc);
    int n = yypcontext_expected_tokens(pc, exp, YYNTOKENS);
    Loc at = loc_of(ctx, yypcontext_location(pc));
    if (n < 0)
        n = 0;
    if (t == YYSYMBOL_YYEMPTY) {
        error_at(at, "syntax error");
        return 0;
    }
    int eof = t == YYSYMBOL_YYEOF;
    char open = ctx->nopen > 0 && ctx->nopen <= PARSE_MAX_OPEN ? ctx->open[ctx->nopen - 1].ch : 0;
    /* inside '{' a ';' ends a statement, so a block is named only at the end */
    char close = open == '(' ? ')' : open == '[' ? ']' : open == '{' && eof ? '}' : 0;
    if (!eof && expects(exp, n, ';') && (t == YYTRANSLATE('}') || ctx->prev_end.line < at.line)) {
        error_at(ctx->prev_end, "syntax error, expected ';' before %s", token_desc(ctx, t));
        return 0;
    }
    Buf b = {0};
    buf_printf(&b, "syntax error, unexpected %s", token_desc(ctx, t));
    if (close && expects(exp, n, close)) {
        buf_printf(&b, ", expecting '%c'", close);
        error_at(at, "%s", b.data);
        note_at(ctx->open[ctx->nopen - 1].loc, "to match this '%c'", open);
    } else {
        for (int i = 0; n <= 4 && i < n; i++)
            buf_printf(&b, "%s%s", i ? " or " : ", expecting ", yysymbol_name(exp[i]));
        error_at(at, "%s", b.data);
        if (eof && open)
            note_at(ctx->open[ctx->nopen - 1].loc, "this '%c' is not closed", open);
    }
    buf_free(&b);
    return 0;
}
