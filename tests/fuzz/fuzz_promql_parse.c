/* fuzz_promql_parse.c: parses arbitrary bytes as a PromQL query; when that
 * succeeds, the printed form must parse again and print identically (the
 * printer's output is a fixed point), and the selector listing must run. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promql.h"

static void fail(const char *what, const char *a, const char *b) {
  fprintf(stderr, "fuzz_promql_parse: %s\n  first:  %s\n  second: %s\n", what, a, b);
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  orr_arena *a = orr_arena_new(0);
  promql_ast *ast = NULL, *ast2 = NULL;
  promql_error err;
  orr_buf b1 = {0}, b2 = {0};
  if (!a) return 0;
  if (promql_parse(a, (const char *)data, size, &ast, &err) == 0) {
    promql_expr *root = promql_ast_root(ast);
    if (promql_expr_format(root, &b1) != 0) abort();
    orr_buf_putc(&b1, 0);
    if (promql_parse(a, b1.data, b1.len - 1, &ast2, &err) != 0)
      fail("printed query does not parse", b1.data, err.msg);
    if (promql_expr_format(promql_ast_root(ast2), &b2) != 0) abort();
    orr_buf_putc(&b2, 0);
    if (strcmp(b1.data, b2.data) != 0) fail("printing is not a fixed point", b1.data, b2.data);
    if (promql_expr_type(root) != promql_expr_type(promql_ast_root(ast2)))
      fail("type changed", b1.data, b2.data);
    promql_select_params p = {1000000, 2000000, 15000, 300000, 60000};
    promql_selector *s;
    size_t n;
    if (promql_selectors(a, root, &p, &s, &n) != 0) abort();
  }
  promql_ast_free(ast);
  promql_ast_free(ast2);
  ast = NULL;
  if (promql_parse_metric_selector(a, (const char *)data, size, &ast, &err) == 0 &&
      promql_ast_root(ast)->kind != PROMQL_NODE_VECTOR_SELECTOR)
    abort();
  promql_ast_free(ast);
  orr_buf_free(&b1);
  orr_buf_free(&b2);
  orr_arena_destroy(a);
  return 0;
}
