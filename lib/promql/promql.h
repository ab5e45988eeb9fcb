/* promql: the PromQL language as Prometheus 2.42 speaks it — lexer, parser,
 * AST, type checker, printer and the selector listing the I/O-free engine
 * uses to ask for data — and the evaluation engine. Prefix: promql_.
 * Depends on labels and base; knows nothing of I/O or the network. */
#ifndef ORR_PROMQL_H
#define ORR_PROMQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "labels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ================================================================ parser/AST
 * A query is parsed into a tree of promql_expr nodes allocated from a
 * caller-supplied arena (the request's). Label matchers hold compiled
 * regexes, so the tree is reached through a promql_ast handle that owns
 * them: free it with promql_ast_free() before destroying the arena.
 * The node layout is public: the engine, the HTTP API and the tools walk it.
 * Durations and timestamps are int64 milliseconds. The parser keeps no
 * global state: any number of threads may parse at once. */

/* Result type of an expression (Prometheus's ValueType). */
typedef enum promql_value_type {
  PROMQL_TYPE_NONE = 0,
  PROMQL_TYPE_SCALAR,
  PROMQL_TYPE_VECTOR, /* instant vector */
  PROMQL_TYPE_MATRIX, /* range vector */
  PROMQL_TYPE_STRING,
} promql_value_type;

/* "none", "scalar", "vector", "matrix", "string" (as the HTTP API's resultType). */
const char *promql_value_type_name(promql_value_type t);
/* User-facing name: "scalar", "instant vector", "range vector", "string". */
const char *promql_value_type_doc(promql_value_type t);

/* Binary and unary operators. */
typedef enum promql_op {
  PROMQL_OP_NONE = 0,
  PROMQL_OP_ADD,
  PROMQL_OP_SUB,
  PROMQL_OP_MUL,
  PROMQL_OP_DIV,
  PROMQL_OP_MOD,
  PROMQL_OP_POW,
  PROMQL_OP_ATAN2,
  PROMQL_OP_EQLC, /* == */
  PROMQL_OP_NEQ,
  PROMQL_OP_GTR,
  PROMQL_OP_LSS,
  PROMQL_OP_GTE,
  PROMQL_OP_LTE,
  PROMQL_OP_LAND,
  PROMQL_OP_LOR,
  PROMQL_OP_LUNLESS,
} promql_op;

/* "+", "==", "and", "atan2" ... */
const char *promql_op_str(promql_op op);
bool promql_op_is_comparison(promql_op op);
bool promql_op_is_set(promql_op op);

typedef enum promql_aggop {
  PROMQL_AGG_SUM = 0,
  PROMQL_AGG_AVG,
  PROMQL_AGG_COUNT,
  PROMQL_AGG_MIN,
  PROMQL_AGG_MAX,
  PROMQL_AGG_GROUP,
  PROMQL_AGG_STDDEV,
  PROMQL_AGG_STDVAR,
  PROMQL_AGG_TOPK,
  PROMQL_AGG_BOTTOMK,
  PROMQL_AGG_COUNT_VALUES,
  PROMQL_AGG_QUANTILE,
} promql_aggop;

/* "sum", "count_values" ... */
const char *promql_aggop_str(promql_aggop op);
/* topk, bottomk, count_values and quantile take a parameter. */
bool promql_aggop_has_param(promql_aggop op);

/* One entry of the function table (Prometheus 2.42's parser.Functions). */
#define PROMQL_FUNC_MAX_ARGS 5
typedef struct promql_function {
  const char *name;
  promql_value_type arg_types[PROMQL_FUNC_MAX_ARGS];
  int nargs;    /* entries used in arg_types */
  int variadic; /* 0: exactly nargs; n > 0: the last argument is optional and
                 * may appear up to n times; -1: the last may repeat without limit */
  promql_value_type return_type;
  bool at_unsafe; /* result depends on evaluation time even with step-invariant
                   * arguments (Prometheus's AtModifierUnsafeFunctions) */
} promql_function;

/* Returns the function named |name| (|n| bytes), or NULL. The table is static. */
const promql_function *promql_function_lookup(const char *name, size_t n);
/* Returns the whole table, sorted by name; |*n| receives its length (70). */
const promql_function *promql_functions(size_t *n);

typedef enum promql_card {
  PROMQL_CARD_ONE_TO_ONE = 0,
  PROMQL_CARD_MANY_TO_ONE, /* group_left */
  PROMQL_CARD_ONE_TO_MANY, /* group_right */
  PROMQL_CARD_MANY_TO_MANY, /* set operators */
} promql_card;

typedef struct promql_vector_matching {
  promql_card card;
  const char **matching_labels; /* on(...) / ignoring(...) */
  size_t nmatching;
  bool on;
  const char **include; /* group_left(...) / group_right(...) */
  size_t ninclude;
} promql_vector_matching;

/* The @ modifier. start() and end() stay symbolic in the tree; the engine
 * and promql_selectors() resolve them against the query's range. */
typedef enum promql_at {
  PROMQL_AT_NONE = 0,
  PROMQL_AT_TIMESTAMP, /* @ <at_ms / 1000> */
  PROMQL_AT_START,
  PROMQL_AT_END,
} promql_at;

typedef enum promql_node_kind {
  PROMQL_NODE_NUMBER = 0,
  PROMQL_NODE_STRING,
  PROMQL_NODE_VECTOR_SELECTOR,
  PROMQL_NODE_MATRIX_SELECTOR,
  PROMQL_NODE_SUBQUERY,
  PROMQL_NODE_CALL,
  PROMQL_NODE_AGGREGATE,
  PROMQL_NODE_BINARY,
  PROMQL_NODE_UNARY,
  PROMQL_NODE_PAREN,
  PROMQL_NODE_STEP_INVARIANT, /* never produced by the parser; for the engine */
} promql_node_kind;

/* Byte offsets [start, end) into the query text. */
typedef struct promql_pos_range {
  size_t start, end;
} promql_pos_range;

typedef struct promql_expr promql_expr;
struct promql_expr {
  promql_node_kind kind;
  promql_pos_range pos; /* as Prometheus's PositionRange() */
  int height;           /* of the subtree, leaves are 1 (see PROMQL_MAX_DEPTH) */
  union {
    struct {
      double val;
    } number;
    struct {
      const char *val; /* unquoted; may contain NUL bytes, hence |len| */
      size_t len;
    } string;
    struct {
      const char *name; /* metric name written outside braces, or "" */
      labels_matcher **matchers; /* as written, then the __name__ matcher
                                  * for |name| last (Prometheus's order) */
      size_t nmatchers;
      int64_t offset_ms; /* original offset, may be negative */
      promql_at at;
      int64_t at_ms;
    } vs;
    struct {
      promql_expr *vs; /* a PROMQL_NODE_VECTOR_SELECTOR */
      int64_t range_ms;
    } ms;
    struct {
      promql_expr *expr;
      int64_t range_ms, step_ms; /* step 0: the engine's default */
      int64_t offset_ms;
      promql_at at;
      int64_t at_ms;
    } subquery;
    struct {
      const promql_function *func;
      promql_expr **args;
      size_t nargs;
    } call;
    struct {
      promql_aggop op;
      promql_expr *expr;
      promql_expr *param; /* NULL unless promql_aggop_has_param(op) */
      const char **grouping;
      size_t ngrouping;
      bool without;
    } agg;
    struct {
      promql_op op;
      promql_expr *lhs, *rhs;
      bool return_bool;
      promql_vector_matching *matching; /* NULL unless both sides are vectors */
    } binary;
    struct {
      promql_op op; /* ADD or SUB */
      promql_expr *expr;
    } unary;
    struct {
      promql_expr *expr;
    } paren; /* also used by PROMQL_NODE_STEP_INVARIANT */
  } u;
};

/* Nesting deeper than this is refused with a parse error (protects the
 * recursive parser, checker and printer from hostile input). */
#define PROMQL_MAX_DEPTH 1000

/* A parse error as Prometheus reports it. |msg| holds the full text,
 * e.g. "1:5: parse error: unexpected <op:+>" (truncated to fit); the HTTP
 * API answers it with errorType "bad_data", as Prometheus does. */
typedef struct promql_error {
  promql_pos_range pos;
  int line, col; /* 1-based; col counts bytes */
  char msg[512];
} promql_error;

typedef struct promql_ast promql_ast;

/* Parses the expression |q| (|n| bytes, need not be NUL-terminated) with
 * Prometheus 2.42's grammar and type rules. On success returns 0 and sets
 * |*out| (caller frees with promql_ast_free(); the nodes live in |a|, which
 * must outlive the handle). On a syntax or type error returns ORR_EINVAL
 * and fills |err| (may be NULL); ORR_ENOMEM on allocation failure. */
int promql_parse(orr_arena *a, const char *q, size_t n, promql_ast **out, promql_error *err);
/* Frees the handle and the compiled matchers of its tree; NULL is a no-op. */
void promql_ast_free(promql_ast *ast);
/* The root node, owned by the arena given to promql_parse(). */
promql_expr *promql_ast_root(const promql_ast *ast);

/* Parses a bare metric selector ("up{job=~"a.*"}") as the series, labels
 * and federate APIs take it (Prometheus's ParseMetricSelector: no check for
 * a non-empty matcher). On success returns 0 and sets |*out|, whose root is
 * a vector selector; errors as promql_parse(). */
int promql_parse_metric_selector(orr_arena *a, const char *q, size_t n, promql_ast **out,
                                 promql_error *err);

/* Type of the expression (Prometheus's Expr.Type()). */
promql_value_type promql_expr_type(const promql_expr *e);

/* Appends Prometheus's String() form of |e| to |out|: canonical PromQL that
 * parses back to the same tree. Returns 0 or ORR_ENOMEM. */
int promql_expr_format(const promql_expr *e, orr_buf *out);

/* Formats a duration as Prometheus's model.Duration ("1h30m", "0s");
 * returns |out| (at least 48 bytes). */
char *promql_format_duration(int64_t ms, char *out, size_t outlen);

/* ---------------------------------------------------------------- selectors
 * Before evaluation the engine lists what a query reads, so that the caller
 * can fetch every series concurrently from wherever it lives. */

typedef struct promql_select_params {
  int64_t start_ms, end_ms; /* query range; equal for an instant query */
  int64_t step_ms;          /* query step; 0 for an instant query */
  int64_t lookback_ms;      /* lookback delta (Prometheus default 5m) */
  int64_t default_subquery_step_ms; /* step of "[30m:]" (global evaluation_interval, 1m) */
} promql_select_params;

typedef struct promql_selector {
  const promql_expr *node;          /* the vector selector (borrowed from the tree) */
  labels_matcher *const *matchers;  /* borrowed from the tree */
  size_t nmatchers;
  int64_t offset_ms;
  promql_at at;                     /* as written */
  int64_t at_ms;                    /* resolved: start()/end() become the query's */
  int64_t range_ms;                 /* range of the matrix selector, 0 for instant */
  /* Samples with start_ms <= t <= end_ms are needed (Prometheus's SelectHints). */
  int64_t start_ms, end_ms;
  int64_t step_ms;                  /* hint: innermost subquery's step, else the query's */
  const char *func;                 /* hint: function or aggregation right above, or NULL */
  bool by;                          /* hint: that aggregation groups by (not without) */
  const char **grouping;            /* hint: its grouping labels (borrowed) */
  size_t ngrouping;
} promql_selector;

/* Lists every vector and matrix selector under |root| in evaluation order
 * with the time range of samples each needs (Prometheus's
 * getTimeRangesForSelector and populateSeries hints). The array comes from
 * |a|; returns 0 or ORR_ENOMEM. */
int promql_selectors(orr_arena *a, const promql_expr *root, const promql_select_params *p,
                     promql_selector **out, size_t *n);
/* The union range [min start, max end] of |sels| (Prometheus's
 * findMinMaxTime); 0, 0 when there are none. */
void promql_selectors_time_range(const promql_selector *sels, size_t n, int64_t *mint,
                                 int64_t *maxt);

/* ================================================================ engine */
/* The evaluation engine: Prometheus 2.42's promql/engine.go and
 * functions.go over data held in memory. A query is prepared (parsed, its
 * selectors listed), the caller feeds the series of each selector (from
 * any storage, possibly concurrently: one selector per thread), then
 * promql_query_exec() evaluates without I/O. Everything lives in the
 * arena given to promql_query_new(). Native histograms are out of scope:
 * histogram_count/sum/fraction return empty results. */

/* One sample. */
typedef struct promql_point {
  int64_t t;
  double v;
} promql_point;

/* A series with its samples (ascending t) or evaluation points. */
typedef struct promql_series {
  labels_set labels;
  promql_point *points;
  size_t npoints;
} promql_series;

/* The errorType of the HTTP API for a failed query. */
typedef enum promql_errtype {
  PROMQL_ERR_NONE = 0,
  PROMQL_ERR_BAD_DATA,  /* parse errors, bad parameters */
  PROMQL_ERR_EXECUTION, /* evaluation errors, too many samples */
  PROMQL_ERR_TIMEOUT,
  PROMQL_ERR_CANCELED,
  PROMQL_ERR_INTERNAL, /* storage errors */
} promql_errtype;

/* "bad_data", "execution", "timeout", "canceled", "internal". */
const char *promql_errtype_name(promql_errtype t);

typedef struct promql_errinfo {
  promql_errtype type;
  char msg[1024]; /* Prometheus's text, e.g. "1:4: parse error: ..." */
} promql_errinfo;

#define PROMQL_DEFAULT_LOOKBACK_MS ((int64_t)5 * 60 * 1000)
#define PROMQL_DEFAULT_MAX_SAMPLES ((int64_t)50000000)
#define PROMQL_DEFAULT_TIMEOUT_MS ((int64_t)2 * 60 * 1000)
#define PROMQL_DEFAULT_SUBQUERY_STEP_MS ((int64_t)60 * 1000)
/* The HTTP API refuses range queries with more points per series. */
#define PROMQL_MAX_POINTS_PER_SERIES 11000

typedef struct promql_query_params {
  bool range;               /* false: instant query at start_ms */
  int64_t start_ms, end_ms; /* instant: start_ms (end_ms is ignored) */
  int64_t step_ms;          /* range queries: > 0 */
  int64_t lookback_ms;      /* 0: PROMQL_DEFAULT_LOOKBACK_MS */
  int64_t max_samples;      /* 0: PROMQL_DEFAULT_MAX_SAMPLES */
  int64_t timeout_ms;       /* 0: PROMQL_DEFAULT_TIMEOUT_MS; < 0: none */
  int64_t default_subquery_step_ms; /* 0: PROMQL_DEFAULT_SUBQUERY_STEP_MS */
  /* Set to non-zero (by another thread) to cancel; may be NULL. Checked
   * periodically during evaluation. */
  const volatile int *cancel;
  /* Threads one evaluation may use (range functions over many series are
   * split by series); 0: the online CPUs. Answers do not depend on it. */
  int64_t parallelism;
} promql_query_params;

/* The most threads one evaluation uses, whatever |parallelism| says. */
#define PROMQL_MAX_PARALLELISM 64

typedef struct promql_query promql_query;

/* Parses |q| (|n| bytes) and lists its selectors. On success returns 0 and
 * sets |*out|, allocated from |a| (which must outlive it); the caller ends
 * with promql_query_free(). On a parse error returns ORR_EINVAL with |err|
 * (type bad_data, Prometheus's parse error text: the HTTP API of 2.42
 * prefixes it with `invalid parameter "query": ` for instant queries
 * only); ORR_ENOMEM. A range query of a range vector or string type fails
 * in promql_query_exec() (bad_data, no prefix). */
int promql_query_new(orr_arena *a, const char *q, size_t n, const promql_query_params *p,
                     promql_query **out, promql_errinfo *err);
void promql_query_free(promql_query *q);
/* The selectors to fetch (borrowed from |q|), in evaluation order, with the
 * time range each needs. */
const promql_selector *promql_query_selectors(const promql_query *q, size_t *n);
/* The root of the parsed expression (borrowed). */
const promql_expr *promql_query_expr(const promql_query *q);

/* Feeds one series for selector |sel|: |ls| and |pts| (ascending t, stale
 * markers included) are copied into the query's arena. Series given twice
 * with equal labels are merged. Thread-safe: storage fetches for different
 * selectors may feed concurrently (calls are serialised on the query's
 * lock, as the arena is shared); not during promql_query_exec(). Returns
 * 0, ORR_EINVAL (bad index) or ORR_ENOMEM. */
int promql_query_add_series(promql_query *q, size_t sel, const labels_set *ls,
                            const promql_point *pts, size_t npts);
/* Feeds one series of a partial result of the aggregation node |agg| (a
 * node of this query's tree, found with promql_query_expr()) that was
 * computed elsewhere over a part of the data disjoint from what is fed to
 * its selectors — e.g. a source that evaluated the whole aggregation
 * itself (aggregation pushdown). |pts| must sit on the query's steps (one
 * point per step at most, ascending). At evaluation the node's own result
 * and the partials are merged per output label set and step: sum and count
 * add, min and max take the smaller/larger (NaN loses, as Prometheus's
 * aggregation does), group gives 1. For topk and bottomk the partials are
 * series of the node's input (each part's own top k per group, with all
 * their labels) and the node picks again over its input and them. Only
 * sum, min, max, count, group, topk and bottomk by (not without),
 * evaluated at the query's own steps (not under a subquery), take
 * partials: ORR_EINVAL otherwise. Copied into the query's arena; the
 * same locking as promql_query_add_series. Returns 0, ORR_EINVAL, ORR_ENOMEM. */
int promql_query_add_partial(promql_query *q, const promql_expr *agg, const labels_set *ls,
                             const promql_point *pts, size_t npts);
/* Whether |agg| may take partials (the checks of promql_query_add_partial
 * on the node's kind and operator; where it sits is the caller's to know). */
bool promql_aggregate_mergeable(const promql_expr *agg);
/* Records a storage warning, returned with the result (copied; thread-safe). */
int promql_query_add_warning(promql_query *q, const char *msg);

/* A query's result; everything is owned by the query's arena. */
typedef struct promql_result {
  promql_value_type type; /* SCALAR, VECTOR, MATRIX or STRING */
  bool range;             /* from a range query (type is then MATRIX) */
  int64_t t;              /* scalar/string: evaluation time */
  double scalar;
  const char *str; /* string value (NUL-terminated; |strlen| bytes) */
  size_t strlen;
  promql_series *series; /* vector (one point each) or matrix */
  size_t nseries;
  const char **warnings;
  size_t nwarnings;
} promql_result;

/* Evaluates |q| from the data fed so far. Returns 0 with |res| filled, or
 * ORR_EINVAL (execution error), ORR_ETIMEOUT, ORR_ECANCELED, ORR_ELIMIT
 * (too many samples) with |err| filled as Prometheus's API reports it;
 * ORR_ENOMEM. */
int promql_query_exec(promql_query *q, promql_result *res, promql_errinfo *err);

/* A storage the engine can read synchronously: for a selector, calls
 * |emit| once per series (labels sorted; decoded samples in the selector's
 * [start_ms, end_ms], ascending, stale markers kept). Returns 0 or a
 * negative code with a message in |err| (reported as errorType internal). */
typedef int (*promql_emit_fn)(void *arg, const labels_set *ls, const promql_point *pts,
                              size_t npts);
typedef struct promql_storage {
  void *ctx;
  int (*select)(void *ctx, const promql_selector *sel, promql_emit_fn emit, void *arg,
                char *err, size_t errlen);
  /* Set if |select| hands each series once, in ascending label order, from
   * one thread at a time: promql_eval may then fold an aggregation's series
   * as they come instead of keeping them. A storage that breaks the promise
   * costs a second select, not a wrong answer. */
  bool ordered;
  /* Set if |select| may run for different selectors of a query at the same
   * time, on different threads: promql_eval then selects the selectors side
   * by side, on up to the query's parallelism threads. */
  bool concurrent;
} promql_storage;

/* promql_query_new + select every selector from |st| (one after the other,
 * or side by side: promql_storage.concurrent) + exec, in one call; the query is freed before returning and |res| stays
 * valid while |a| lives. A storage error is reported as errorType internal
 * with the storage's message. Returns as promql_query_new /
 * promql_query_exec, or the storage's code. */
int promql_eval(orr_arena *a, const char *q, size_t n, const promql_query_params *p,
                const promql_storage *st, promql_result *res, promql_errinfo *err);

/* The API's check of a range query's resolution: returns 0, or ORR_EINVAL
 * with Prometheus's message in |err| (bad_data) when (end - start) / step
 * exceeds PROMQL_MAX_POINTS_PER_SERIES, end is before start or step <= 0. */
int promql_check_range_params(int64_t start_ms, int64_t end_ms, int64_t step_ms,
                              promql_errinfo *err);

/* ---------------------------------------------------------------- JSON
 * Bodies of /api/v1/query and /api/v1/query_range, byte for byte as
 * Prometheus 2.42 writes them. The writer appends to |buf| and calls
 * |flush| (when set) whenever |buf| holds more than |flush_at| bytes, so a
 * large response can be streamed; |flush| consumes the buffer's content
 * (and resets it) and returns 0 or an error that stops the writer. */
typedef struct promql_json_writer {
  orr_buf *buf;
  size_t flush_at; /* 0: 64 KiB */
  int (*flush)(void *arg, orr_buf *buf);
  void *arg;
  int err; /* first error (latched) */
} promql_json_writer;

/* Writes the success body of |res|. Returns 0, ORR_ENOMEM or flush's error. */
int promql_json_write_result(promql_json_writer *w, const promql_result *res);
/* Writes {"status":"error","errorType":"...","error":"..."}. */
int promql_json_write_error(promql_json_writer *w, promql_errtype type, const char *msg);
/* Appends a timestamp as the API writes points ("1700000000.5" as
 * "1700000000.500", milliseconds verbatim). */
int promql_json_timestamp(orr_buf *b, int64_t t);
/* Appends |v| as Go's strconv.FormatFloat(v, 'f', -1, 64). */
int promql_format_float_f(orr_buf *b, double v);


/* ================================================================ API reader
 * An incremental reader (no I/O) of a Prometheus HTTP API answer whose data
 * is a matrix: /api/v1/query of a range selector, /api/v1/query_range. It
 * is fed the body in pieces of any size and hands out one series at a time,
 * so a 100 MB answer never sits in memory whole. The JSON is checked as
 * JSON; the shape {"status":..,"data":{"resultType":"matrix","result":[
 * {"metric":{..},"values":[[<seconds>,"<value>"],..]},..]},"warnings":[..]}
 * is checked where it matters; unknown keys are skipped. It also reads
 * /api/v1/series ({"data":[{..labels..},..]}: series without points). Values parse as
 * Prometheus writes them ("1.5", "1e-07", "NaN", "+Inf", "-Inf"). An error
 * answer ({"status":"error","errorType":..,"error":..}) is read to its end
 * and reported by promql_api_reader_end(). */
typedef struct promql_api_reader promql_api_reader;
typedef struct promql_api_point {
  int64_t t; /* ms */
  double v;
} promql_api_point;
/* One series: labels sorted (strings borrowed until return), |n| points in
 * strictly increasing time. Returns 0 or an ORR_E* code that stops the
 * reader (feed returns it). */
typedef int (*promql_api_series_fn)(const labels_set *ls, const promql_api_point *pts, size_t n,
                                    void *arg);
/* Creates a reader. |max_points| bounds one series' points (0: no bound).
 * Returns 0 or ORR_ENOMEM; caller frees with promql_api_reader_free(). */
int promql_api_reader_new(promql_api_series_fn fn, void *arg, size_t max_points,
                          promql_api_reader **out);
void promql_api_reader_free(promql_api_reader *r);
/* Consumes |n| bytes. Returns 0, ORR_ECORRUPT (not JSON, or not the shape
 * above: promql_api_reader_message() says what and at which byte),
 * ORR_ELIMIT (a string over 1 MiB, nesting over 64, a series over
 * max_points), ORR_ENOMEM, or the callback's code. Errors latch. */
int promql_api_reader_feed(promql_api_reader *r, const char *data, size_t n);
/* At the end of the body. Returns 0 for a complete success answer with a
 * matrix (or a series list); ORR_EUNAVAILABLE for a complete error answer (the message is
 * "<errorType>: <error>"); ORR_ECORRUPT for a truncated body, a missing
 * status, another resultType; or the latched error. */
int promql_api_reader_end(promql_api_reader *r);
/* A one-line description of the last error (borrowed until the next call;
 * "" when none). */
const char *promql_api_reader_message(const promql_api_reader *r);
/* Whether the answer's data was a series list (/api/v1/series), not a
 * matrix: a caller expecting one shape refuses the other. */
bool promql_api_reader_series_list(const promql_api_reader *r);
/* The answer's "warnings" (at most 16 kept; borrowed until free). */
const char *const *promql_api_reader_warnings(const promql_api_reader *r, size_t *n);

#ifdef __cplusplus
}
#endif
#endif /* ORR_PROMQL_H */
