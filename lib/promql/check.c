/* check.c: the type checks Prometheus 2.42 runs on a parsed tree (checkAST
 * in parse.go), in the same order so that the first error is the same one.
 * It also settles two things the engine relies on: set operators match
 * many-to-many, and vector matching is dropped unless both sides are vectors. */
#include <string.h>

#include "promql_int.h"

static void errorq(promql__parser *p, promql_pos_range pos, const char *prefix, const char *a,
                   const char *mid, const char *b) {
  orr_buf buf = {0};
  orr_buf_puts(&buf, prefix);
  promql__quote(&buf, a, strlen(a));
  if (mid) orr_buf_puts(&buf, mid);
  if (b) promql__quote(&buf, b, strlen(b));
  if (buf.oom)
    promql__oom(p);
  else
    promql__errorf(p, pos, "%s", buf.data);
  orr_buf_free(&buf);
}

static void expect_type(promql__parser *p, promql_expr *e, promql_value_type want,
                        const char *context) {
  promql_value_type t = promql__check(p, e);
  if (t != want) {
    promql__errorf(p, e->pos, "expected type %s in %s, got %s", promql_value_type_doc(want),
                   context, promql_value_type_doc(t));
  }
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* The operator's range: between the operands, spaces trimmed. */
static promql_pos_range op_range(promql__parser *p, const promql_expr *e) {
  promql_pos_range r;
  const char *in = p->lex.in;
  r.start = e->u.binary.lhs->pos.end;
  while (r.start < p->lex.n && is_space(in[r.start])) r.start++;
  r.end = e->u.binary.rhs->pos.start - 1;
  while (r.end > r.start && is_space(in[r.end])) r.end--;
  return r;
}

static void check_binary(promql__parser *p, promql_expr *e) {
  promql_value_type lt = promql__check(p, e->u.binary.lhs);
  promql_value_type rt = promql__check(p, e->u.binary.rhs);
  promql_op op = e->u.binary.op;
  promql_vector_matching *vm = e->u.binary.matching;
  const char *ops = promql_op_str(op);

  if (e->u.binary.return_bool && !promql_op_is_comparison(op))
    promql__errorf(p, op_range(p, e), "bool modifier can only be used on comparison operators");
  if (promql_op_is_comparison(op) && !e->u.binary.return_bool &&
      promql_expr_type(e->u.binary.rhs) == PROMQL_TYPE_SCALAR &&
      promql_expr_type(e->u.binary.lhs) == PROMQL_TYPE_SCALAR)
    promql__errorf(p, op_range(p, e), "comparisons between scalars must use BOOL modifier");
  if (vm && promql_op_is_set(op) && vm->card == PROMQL_CARD_ONE_TO_ONE)
    vm->card = PROMQL_CARD_MANY_TO_MANY;
  if (vm && vm->on) {
    for (size_t i = 0; i < vm->nmatching; i++) {
      for (size_t j = 0; j < vm->ninclude; j++) {
        if (strcmp(vm->matching_labels[i], vm->include[j]) == 0)
          errorq(p, op_range(p, e), "label ", vm->matching_labels[i],
                 " must not occur in ON and GROUP clause at once", NULL);
      }
    }
  }
  if (lt != PROMQL_TYPE_SCALAR && lt != PROMQL_TYPE_VECTOR)
    promql__errorf(p, e->u.binary.lhs->pos,
                   "binary expression must contain only scalar and instant vector types");
  if (rt != PROMQL_TYPE_SCALAR && rt != PROMQL_TYPE_VECTOR)
    promql__errorf(p, e->u.binary.rhs->pos,
                   "binary expression must contain only scalar and instant vector types");
  if ((lt != PROMQL_TYPE_VECTOR || rt != PROMQL_TYPE_VECTOR) && vm) {
    if (vm->nmatching > 0)
      promql__errorf(p, e->pos, "vector matching only allowed between instant vectors");
    e->u.binary.matching = NULL;
  } else if (vm && promql_op_is_set(op)) {
    if (vm->card == PROMQL_CARD_ONE_TO_MANY || vm->card == PROMQL_CARD_MANY_TO_ONE)
      errorq(p, e->pos, "no grouping allowed for ", ops, " operation", NULL);
    if (vm->card != PROMQL_CARD_MANY_TO_MANY)
      promql__errorf(p, e->pos, "set operations must always be many-to-many");
  }
  if ((lt == PROMQL_TYPE_SCALAR || rt == PROMQL_TYPE_SCALAR) && promql_op_is_set(op))
    errorq(p, e->pos, "set operator ", ops, " not allowed in binary scalar expression", NULL);
}

static void check_call(promql__parser *p, promql_expr *e) {
  const promql_function *f = e->u.call.func;
  size_t nargs = (size_t)f->nargs, n = e->u.call.nargs;
  if (f->variadic == 0) {
    if (nargs != n) {
      orr_buf b = {0};
      orr_buf_printf(&b, "expected %zu argument(s) in call to ", nargs);
      promql__quote(&b, f->name, strlen(f->name));
      orr_buf_printf(&b, ", got %zu", n);
      if (b.oom)
        promql__oom(p);
      else
        promql__errorf(p, e->pos, "%s", b.data);
      orr_buf_free(&b);
    }
  } else {
    size_t na = nargs - 1;
    orr_buf b = {0};
    if (na > n) {
      orr_buf_printf(&b, "expected at least %zu argument(s) in call to ", na);
    } else if (f->variadic > 0 && na + (size_t)f->variadic < n) {
      orr_buf_printf(&b, "expected at most %zu argument(s) in call to ", na + (size_t)f->variadic);
    }
    if (b.len) {
      promql__quote(&b, f->name, strlen(f->name));
      orr_buf_printf(&b, ", got %zu", n);
      if (b.oom)
        promql__oom(p);
      else
        promql__errorf(p, e->pos, "%s", b.data);
    }
    orr_buf_free(&b);
  }
  orr_buf ctx = {0};
  orr_buf_puts(&ctx, "call to function ");
  promql__quote(&ctx, f->name, strlen(f->name));
  if (ctx.oom) {
    promql__oom(p);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    size_t k = i;
    if (k >= nargs) {
      if (f->variadic == 0) break;
      k = nargs - 1;
    }
    expect_type(p, e->u.call.args[i], f->arg_types[k], ctx.data);
  }
  orr_buf_free(&ctx);
}

promql_value_type promql__check(promql__parser *p, promql_expr *e) {
  promql_value_type typ = promql_expr_type(e);
  switch (e->kind) {
    case PROMQL_NODE_AGGREGATE:
      expect_type(p, e->u.agg.expr, PROMQL_TYPE_VECTOR, "aggregation expression");
      if (e->u.agg.op == PROMQL_AGG_TOPK || e->u.agg.op == PROMQL_AGG_BOTTOMK ||
          e->u.agg.op == PROMQL_AGG_QUANTILE)
        expect_type(p, e->u.agg.param, PROMQL_TYPE_SCALAR, "aggregation parameter");
      if (e->u.agg.op == PROMQL_AGG_COUNT_VALUES)
        expect_type(p, e->u.agg.param, PROMQL_TYPE_STRING, "aggregation parameter");
      break;
    case PROMQL_NODE_BINARY:
      check_binary(p, e);
      break;
    case PROMQL_NODE_CALL:
      check_call(p, e);
      break;
    case PROMQL_NODE_PAREN:
    case PROMQL_NODE_STEP_INVARIANT:
      promql__check(p, e->u.paren.expr);
      break;
    case PROMQL_NODE_UNARY: {
      promql_value_type t = promql__check(p, e->u.unary.expr);
      if (t != PROMQL_TYPE_SCALAR && t != PROMQL_TYPE_VECTOR)
        errorq(p, e->pos,
               "unary expression only allowed on expressions of type scalar or instant vector, "
               "got ",
               promql_value_type_doc(t), NULL, NULL);
      break;
    }
    case PROMQL_NODE_SUBQUERY: {
      promql_value_type t = promql__check(p, e->u.subquery.expr);
      if (t != PROMQL_TYPE_VECTOR)
        promql__errorf(p, e->pos, "subquery is only allowed on instant vector, got %s instead",
                       promql_value_type_name(t));
      break;
    }
    case PROMQL_NODE_MATRIX_SELECTOR:
      promql__check(p, e->u.ms.vs);
      break;
    case PROMQL_NODE_VECTOR_SELECTOR: {
      size_t n = e->u.vs.nmatchers;
      if (e->u.vs.name[0]) {
        /* The last matcher is the one for the name written outside braces. */
        for (size_t i = 0; i + 1 < n; i++) {
          const labels_matcher *m = e->u.vs.matchers[i];
          if (strcmp(labels_matcher_name(m), LABELS_METRIC_NAME) == 0)
            errorq(p, e->pos, "metric name must not be set twice: ", e->u.vs.name, " or ",
                   labels_matcher_value(m));
        }
        break;
      }
      bool not_empty = false;
      for (size_t i = 0; i < n && !not_empty; i++)
        not_empty = !labels_matcher_matches_empty(e->u.vs.matchers[i]);
      if (!not_empty)
        promql__errorf(p, e->pos, "vector selector must contain at least one non-empty matcher");
      break;
    }
    case PROMQL_NODE_NUMBER:
    case PROMQL_NODE_STRING:
      break;
  }
  return typ;
}
