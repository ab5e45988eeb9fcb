/* functions.c: the PromQL function table of Prometheus 2.42 (names, argument
 * types, optional/variadic arguments, return types) in one place: the parser
 * type-checks calls against it and the engine dispatches on it. */
#include <string.h>

#include "promql_int.h"

#define V PROMQL_TYPE_VECTOR
#define S PROMQL_TYPE_SCALAR
#define M PROMQL_TYPE_MATRIX
#define STR PROMQL_TYPE_STRING

/* Sorted by name (bytewise) for the binary search below. */
static const promql_function functions[] = {
    {"abs", {V}, 1, 0, V, false},
    {"absent", {V}, 1, 0, V, false},
    {"absent_over_time", {M}, 1, 0, V, false},
    {"acos", {V}, 1, 0, V, false},
    {"acosh", {V}, 1, 0, V, false},
    {"asin", {V}, 1, 0, V, false},
    {"asinh", {V}, 1, 0, V, false},
    {"atan", {V}, 1, 0, V, false},
    {"atanh", {V}, 1, 0, V, false},
    {"avg_over_time", {M}, 1, 0, V, false},
    {"ceil", {V}, 1, 0, V, false},
    {"changes", {M}, 1, 0, V, false},
    {"clamp", {V, S, S}, 3, 0, V, false},
    {"clamp_max", {V, S}, 2, 0, V, false},
    {"clamp_min", {V, S}, 2, 0, V, false},
    {"cos", {V}, 1, 0, V, false},
    {"cosh", {V}, 1, 0, V, false},
    {"count_over_time", {M}, 1, 0, V, false},
    {"day_of_month", {V}, 1, 1, V, true},
    {"day_of_week", {V}, 1, 1, V, true},
    {"day_of_year", {V}, 1, 1, V, true},
    {"days_in_month", {V}, 1, 1, V, true},
    {"deg", {V}, 1, 0, V, false},
    {"delta", {M}, 1, 0, V, false},
    {"deriv", {M}, 1, 0, V, false},
    {"exp", {V}, 1, 0, V, false},
    {"floor", {V}, 1, 0, V, false},
    {"histogram_count", {V}, 1, 0, V, false},
    {"histogram_fraction", {S, S, V}, 3, 0, V, false},
    {"histogram_quantile", {S, V}, 2, 0, V, false},
    {"histogram_sum", {V}, 1, 0, V, false},
    {"holt_winters", {M, S, S}, 3, 0, V, false},
    {"hour", {V}, 1, 1, V, true},
    {"idelta", {M}, 1, 0, V, false},
    {"increase", {M}, 1, 0, V, false},
    {"irate", {M}, 1, 0, V, false},
    {"label_join", {V, STR, STR, STR}, 4, -1, V, false},
    {"label_replace", {V, STR, STR, STR, STR}, 5, 0, V, false},
    {"last_over_time", {M}, 1, 0, V, false},
    {"ln", {V}, 1, 0, V, false},
    {"log10", {V}, 1, 0, V, false},
    {"log2", {V}, 1, 0, V, false},
    {"max_over_time", {M}, 1, 0, V, false},
    {"min_over_time", {M}, 1, 0, V, false},
    {"minute", {V}, 1, 1, V, true},
    {"month", {V}, 1, 1, V, true},
    {"pi", {PROMQL_TYPE_NONE}, 0, 0, S, false},
    {"predict_linear", {M, S}, 2, 0, V, true},
    {"present_over_time", {M}, 1, 0, V, false},
    {"quantile_over_time", {S, M}, 2, 0, V, false},
    {"rad", {V}, 1, 0, V, false},
    {"rate", {M}, 1, 0, V, false},
    {"resets", {M}, 1, 0, V, false},
    {"round", {V, S}, 2, 1, V, false},
    {"scalar", {V}, 1, 0, S, false},
    {"sgn", {V}, 1, 0, V, false},
    {"sin", {V}, 1, 0, V, false},
    {"sinh", {V}, 1, 0, V, false},
    {"sort", {V}, 1, 0, V, false},
    {"sort_desc", {V}, 1, 0, V, false},
    {"sqrt", {V}, 1, 0, V, false},
    {"stddev_over_time", {M}, 1, 0, V, false},
    {"stdvar_over_time", {M}, 1, 0, V, false},
    {"sum_over_time", {M}, 1, 0, V, false},
    {"tan", {V}, 1, 0, V, false},
    {"tanh", {V}, 1, 0, V, false},
    {"time", {PROMQL_TYPE_NONE}, 0, 0, S, true},
    {"timestamp", {V}, 1, 0, V, true},
    {"vector", {S}, 1, 0, V, false},
    {"year", {V}, 1, 1, V, true},
};

#undef V
#undef S
#undef M
#undef STR

const promql_function *promql_functions(size_t *n) {
  *n = sizeof(functions) / sizeof(functions[0]);
  return functions;
}

const promql_function *promql_function_lookup(const char *name, size_t n) {
  size_t lo = 0, hi = sizeof(functions) / sizeof(functions[0]);
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const char *f = functions[mid].name;
    size_t fl = strlen(f);
    int c = memcmp(f, name, fl < n ? fl : n);
    if (c == 0) c = fl < n ? -1 : fl > n ? 1 : 0;
    if (c == 0) return &functions[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}
