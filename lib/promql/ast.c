/* ast.c: the small vocabulary of the AST — names of types, operators and
 * aggregations, the type of an expression, and the promql_ast handle that
 * owns the compiled matchers of a parsed tree. */
#include <stdlib.h>

#include "promql_int.h"

const char *promql_value_type_name(promql_value_type t) {
  switch (t) {
    case PROMQL_TYPE_NONE: return "none";
    case PROMQL_TYPE_SCALAR: return "scalar";
    case PROMQL_TYPE_VECTOR: return "vector";
    case PROMQL_TYPE_MATRIX: return "matrix";
    case PROMQL_TYPE_STRING: return "string";
  }
  return "none";
}

const char *promql_value_type_doc(promql_value_type t) {
  switch (t) {
    case PROMQL_TYPE_VECTOR: return "instant vector";
    case PROMQL_TYPE_MATRIX: return "range vector";
    default: return promql_value_type_name(t);
  }
}

const char *promql_op_str(promql_op op) {
  switch (op) {
    case PROMQL_OP_NONE: return "";
    case PROMQL_OP_ADD: return "+";
    case PROMQL_OP_SUB: return "-";
    case PROMQL_OP_MUL: return "*";
    case PROMQL_OP_DIV: return "/";
    case PROMQL_OP_MOD: return "%";
    case PROMQL_OP_POW: return "^";
    case PROMQL_OP_ATAN2: return "atan2";
    case PROMQL_OP_EQLC: return "==";
    case PROMQL_OP_NEQ: return "!=";
    case PROMQL_OP_GTR: return ">";
    case PROMQL_OP_LSS: return "<";
    case PROMQL_OP_GTE: return ">=";
    case PROMQL_OP_LTE: return "<=";
    case PROMQL_OP_LAND: return "and";
    case PROMQL_OP_LOR: return "or";
    case PROMQL_OP_LUNLESS: return "unless";
  }
  return "";
}

bool promql_op_is_comparison(promql_op op) {
  return op == PROMQL_OP_EQLC || op == PROMQL_OP_NEQ || op == PROMQL_OP_GTR ||
         op == PROMQL_OP_LSS || op == PROMQL_OP_GTE || op == PROMQL_OP_LTE;
}

bool promql_op_is_set(promql_op op) {
  return op == PROMQL_OP_LAND || op == PROMQL_OP_LOR || op == PROMQL_OP_LUNLESS;
}

const char *promql_aggop_str(promql_aggop op) {
  switch (op) {
    case PROMQL_AGG_SUM: return "sum";
    case PROMQL_AGG_AVG: return "avg";
    case PROMQL_AGG_COUNT: return "count";
    case PROMQL_AGG_MIN: return "min";
    case PROMQL_AGG_MAX: return "max";
    case PROMQL_AGG_GROUP: return "group";
    case PROMQL_AGG_STDDEV: return "stddev";
    case PROMQL_AGG_STDVAR: return "stdvar";
    case PROMQL_AGG_TOPK: return "topk";
    case PROMQL_AGG_BOTTOMK: return "bottomk";
    case PROMQL_AGG_COUNT_VALUES: return "count_values";
    case PROMQL_AGG_QUANTILE: return "quantile";
  }
  return "";
}

bool promql_aggop_has_param(promql_aggop op) {
  return op == PROMQL_AGG_TOPK || op == PROMQL_AGG_BOTTOMK || op == PROMQL_AGG_COUNT_VALUES ||
         op == PROMQL_AGG_QUANTILE;
}

promql_value_type promql_expr_type(const promql_expr *e) {
  switch (e->kind) {
    case PROMQL_NODE_NUMBER: return PROMQL_TYPE_SCALAR;
    case PROMQL_NODE_STRING: return PROMQL_TYPE_STRING;
    case PROMQL_NODE_VECTOR_SELECTOR: return PROMQL_TYPE_VECTOR;
    case PROMQL_NODE_MATRIX_SELECTOR: return PROMQL_TYPE_MATRIX;
    case PROMQL_NODE_SUBQUERY: return PROMQL_TYPE_MATRIX;
    case PROMQL_NODE_CALL: return e->u.call.func->return_type;
    case PROMQL_NODE_AGGREGATE: return PROMQL_TYPE_VECTOR;
    case PROMQL_NODE_BINARY:
      if (promql_expr_type(e->u.binary.lhs) == PROMQL_TYPE_SCALAR &&
          promql_expr_type(e->u.binary.rhs) == PROMQL_TYPE_SCALAR)
        return PROMQL_TYPE_SCALAR;
      return PROMQL_TYPE_VECTOR;
    case PROMQL_NODE_UNARY: return promql_expr_type(e->u.unary.expr);
    case PROMQL_NODE_PAREN:
    case PROMQL_NODE_STEP_INVARIANT: return promql_expr_type(e->u.paren.expr);
  }
  return PROMQL_TYPE_NONE;
}

void promql_ast_free(promql_ast *ast) {
  if (!ast) return;
  for (size_t i = 0; i < ast->nmatchers; i++) labels_matcher_free(ast->matchers[i]);
  free(ast->matchers);
  free(ast);
}

promql_expr *promql_ast_root(const promql_ast *ast) { return ast->root; }
