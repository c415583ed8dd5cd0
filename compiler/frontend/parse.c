/*
 * parse.c: runs the flex scanner and the bison parser over one source text.
 */
#include <string.h>

#include "ast.h"
#include "snn_parse.h"
#define YYSTYPE SNN_YYSTYPE
#define YYLTYPE SNN_YYLTYPE
#include "snn_lex.h"

Node *parse_source(Arena *arena, int file, const char *text, size_t len) {
    ParseCtx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.arena = arena;
    ctx.file = file;
    Loc start = {file, 1, 1};
    ctx.tok_end = ctx.prev_end = start;
    yyscan_t scanner;
    if (snn_yylex_init_extra(&ctx, &scanner) != 0)
        ICE("cannot create the scanner");
    YY_BUFFER_STATE b = snn_yy_scan_bytes(text, (int)len, scanner);
    snn_yyset_lineno(1, scanner);
    snn_yyset_column(1, scanner);
    int bad = snn_yyparse(scanner, &ctx);
    snn_yy_delete_buffer(b, scanner);
    snn_yylex_destroy(scanner);
    (void)bad; /* errors were reported through the diagnostics */
    return ctx.items;
}
