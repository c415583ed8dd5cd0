/*
 * snn.y: grammar of the snnc description language.
 *
 * A file holds neuron model definitions and network definitions. Actions are
 * one-line calls into the ast_ builders; meaning is given in sema. The
 * grammar recovers from a syntax error at the next ';' or '}' so that one run
 * reports several errors.
 */
%define api.pure full
%define api.prefix {snn_yy}
%define parse.error detailed
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
ctor_param: IDENT '=' expr      { $$ = ast_new(ctx, N_KWARG, L(@1)); $$->name = $1; $$->a = $3; }
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
       ;

netbody: %empty                 { $$ = NULL; }
       | netbody netstmt        { $$ = ast_append($1, $2); }
       ;

netstmt: TIMESTEPS expr ';'     { $$ = ast_new(ctx, S_TIMESTEPS, L(@1)); $$->a = $2; }
       | INPUT IDENT ':' expr ENCODE IDENT ';'
                                { $$ = ast_new(ctx, S_INPUT, L(@2)); $$->name = $2; $$->a = $4; $$->name2 = $6; }
       | OUTPUT expr READOUT IDENT ';'
                                { $$ = ast_new(ctx, S_OUTPUT, L(@1)); $$->a = $2; $$->name2 = $4; }
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
    | IDENT '(' args_opt ')'    { $$ = ast_call(ctx, L(@1), $1, $3); }
    | '[' list_opt ']'          { $$ = ast_new(ctx, N_LIST, L(@1)); $$->args = $2; }
    | '(' expr ')'              { $$ = $2; }
    | expr PIPE expr            { $$ = ast_binop(ctx, L(@2), OP_ADD, $1, $3); $$->kind = N_PIPE; }
    | expr AS IDENT             { $$ = ast_new(ctx, N_AS, L(@3)); $$->a = $1; $$->name = $3; }
    | expr '?' expr ':' expr    { $$ = ast_new(ctx, N_COND, L(@2)); $$->a = $1; $$->b = $3; $$->c = $5; }
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
   | IDENT '=' expr             { $$ = ast_new(ctx, N_KWARG, L(@1)); $$->name = $1; $$->a = $3; }
   ;

list_opt: %empty                { $$ = NULL; }
        | args                  { $$ = $1; }
        ;

%%

static void snn_yyerror(SNN_YYLTYPE *l, void *scanner, struct ParseCtx *ctx, const char *msg) {
    (void)scanner;
    error_at(loc_of(ctx, l), "%s", msg);
}
