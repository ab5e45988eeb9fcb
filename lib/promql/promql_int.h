/* promql_int.h: what the files of lib/promql share — the lexer's tokens and
 * state, the parser's state, and helpers for Go-compatible quoting. Not a
 * public header: only the files of lib/promql include it. */
#ifndef ORR_PROMQL_INT_H
#define ORR_PROMQL_INT_H

#include "promql.h"

/* ---------------------------------------------------------------- tokens
 * The item types of Prometheus's lexer, grouped as it groups them: the
 * ranges decide how a token is described in "unexpected ..." messages. */
typedef enum promql__tok {
  PROMQL_T_EOF = 0,
  PROMQL_T_ERROR,
  PROMQL_T_COMMENT,
  PROMQL_T_IDENTIFIER,
  PROMQL_T_METRIC_IDENTIFIER,
  PROMQL_T_STRING,
  PROMQL_T_NUMBER,
  PROMQL_T_DURATION,
  PROMQL_T_LEFT_PAREN,
  PROMQL_T_RIGHT_PAREN,
  PROMQL_T_LEFT_BRACE,
  PROMQL_T_RIGHT_BRACE,
  PROMQL_T_LEFT_BRACKET,
  PROMQL_T_RIGHT_BRACKET,
  PROMQL_T_COMMA,
  PROMQL_T_EQL,
  PROMQL_T_COLON,
  /* operators */
  PROMQL_T_OPERATORS_START,
  PROMQL_T_ADD,
  PROMQL_T_DIV,
  PROMQL_T_EQLC,
  PROMQL_T_EQL_REGEX,
  PROMQL_T_GTE,
  PROMQL_T_GTR,
  PROMQL_T_LAND,
  PROMQL_T_LOR,
  PROMQL_T_LSS,
  PROMQL_T_LTE,
  PROMQL_T_LUNLESS,
  PROMQL_T_MOD,
  PROMQL_T_MUL,
  PROMQL_T_NEQ,
  PROMQL_T_NEQ_REGEX,
  PROMQL_T_POW,
  PROMQL_T_SUB,
  PROMQL_T_AT,
  PROMQL_T_ATAN2,
  PROMQL_T_OPERATORS_END,
  /* aggregators */
  PROMQL_T_AGGREGATORS_START,
  PROMQL_T_AVG,
  PROMQL_T_BOTTOMK,
  PROMQL_T_COUNT,
  PROMQL_T_COUNT_VALUES,
  PROMQL_T_GROUP,
  PROMQL_T_MAX,
  PROMQL_T_MIN,
  PROMQL_T_QUANTILE,
  PROMQL_T_STDDEV,
  PROMQL_T_STDVAR,
  PROMQL_T_SUM,
  PROMQL_T_TOPK,
  PROMQL_T_AGGREGATORS_END,
  /* keywords */
  PROMQL_T_KEYWORDS_START,
  PROMQL_T_BOOL,
  PROMQL_T_BY,
  PROMQL_T_GROUP_LEFT,
  PROMQL_T_GROUP_RIGHT,
  PROMQL_T_IGNORING,
  PROMQL_T_OFFSET,
  PROMQL_T_ON,
  PROMQL_T_WITHOUT,
  PROMQL_T_KEYWORDS_END,
  /* preprocessors */
  PROMQL_T_START,
  PROMQL_T_END,
} promql__tok;

typedef struct promql__token {
  promql__tok type;
  size_t pos; /* byte offset of the first byte */
  size_t len; /* the token's text is input[pos, pos+len) */
} promql__token;

/* The lexer mirrors Prometheus's state machine (lex.go): the same flags
 * decide what a byte means, so the same inputs fail with the same text.
 * It stops at the first error: an ERROR token's message is in |errmsg|. */
typedef struct promql__lexer {
  const char *in;
  size_t n;
  size_t pos;   /* next byte to read */
  size_t start; /* first byte of the token being scanned */
  int paren_depth;
  bool brace_open;
  bool bracket_open;
  bool got_colon;
  bool want_duration; /* right after '[': the next token is a duration */
  bool done; /* EOF or ERROR was returned; keep returning it */
  promql__token last;
  char errmsg[256];
} promql__lexer;

void promql__lex_init(promql__lexer *l, const char *in, size_t n);
/* Scans the next token into |t| (comments included). */
void promql__lex_next(promql__lexer *l, promql__token *t);
/* Appends Prometheus's description of |t| as "unexpected" uses it
 * (`<op:+>`, `identifier "foo"`, `end of input`, `"("`). */
void promql__token_desc(const promql__lexer *l, const promql__token *t, orr_buf *out);
/* The text of a keyword or operator token type ("by", "==", "sum"). */
const char *promql__tok_str(promql__tok t);

/* ---------------------------------------------------------------- Go quoting */
/* Appends |s| as Go's strconv.Quote (%q) does. */
void promql__quote(orr_buf *out, const char *s, size_t n);
/* Appends the rune |r| as Go's %q for a rune ('x', '\n', '\x00'). */
void promql__quote_rune(orr_buf *out, uint32_t r);
/* Appends |r| as Go's %#U ("U+0063 'c'"). */
void promql__fmt_U(orr_buf *out, uint32_t r);
/* Decodes one UTF-8 rune from |s| (|n| > 0 bytes) as Go's
 * utf8.DecodeRuneInString: invalid input gives U+FFFD with width 1. */
uint32_t promql__utf8_decode(const unsigned char *s, size_t n, size_t *width);
/* Go's strconv.IsPrint, approximated: see printer.c. */
bool promql__is_print(uint32_t r);

/* ---------------------------------------------------------------- parser */
typedef struct promql__parser {
  orr_arena *arena;
  promql__lexer lex;
  promql__token la[3]; /* lookahead ring (comments skipped) */
  int nla;
  size_t last_closing; /* end of the last ) ] } duration or number consumed */
  int depth;           /* recursion depth of parse_expr */
  const char *ctx;     /* innermost open rule with an error production ("aggregation") */
  /* Matchers created so far: freed on error, owned by the ast on success. */
  labels_matcher **matchers;
  size_t nmatchers, capmatchers;
  int rc;          /* first error: ORR_EINVAL or ORR_ENOMEM */
  promql_error *err;
  promql_error errbuf;
} promql__parser;

/* Records the first error at |pos| (later ones are ignored, as Prometheus
 * reports only the first). */
void promql__errorf(promql__parser *p, promql_pos_range pos, const char *fmt, ...) ORR_PRINTF(3, 4);
void promql__oom(promql__parser *p);
/* Type-checks the tree as Prometheus's checkAST; records the first error. */
promql_value_type promql__check(promql__parser *p, promql_expr *e);

struct promql_ast {
  promql_expr *root;
  labels_matcher **matchers; /* malloc'd; every matcher in the tree */
  size_t nmatchers;
};

/* ================================================================ engine
 * Shared by engine.c, binop.c, agg.c, fn_*.c and json.c. The evaluator
 * works as Prometheus's: every instant-vector or scalar expression is
 * evaluated over all steps of the (sub)query at once into a matrix whose
 * points sit on step timestamps; operators and functions run step by step
 * over the vectors of their arguments (rangeEval). */

typedef struct promql__sample {
  labels_set ls;
  double v;
  int64_t t;
  uint64_t h; /* per-series helper: match signature / grouping key */
} promql__sample;

typedef struct promql__vec {
  promql__sample *s;
  size_t n, cap;
} promql__vec;

typedef struct promql__mat {
  promql_series *s;
  size_t n, cap;
} promql__mat;

typedef struct promql__ev promql__ev;

/* Evaluation-wide state. */
struct promql__ev {
  orr_arena *a;
  int64_t start, end, interval; /* the (sub)evaluator's steps */
  int64_t qstart, qend;         /* the query's range, for @ start()/end() */
  int64_t lookback;
  int64_t max_samples, cur_samples;
  int64_t default_step;
  uint64_t deadline_ns; /* 0: none */
  const volatile int *cancel;
  unsigned check_ctr;
  struct promql_query *q;
  promql_errinfo *err;
  /* Step-invariant subtrees (Prometheus's PreprocessExpr wrap points),
   * sorted: evaluated once at the start and replicated over the steps. */
  const promql_expr **inv;
  size_t ninv;
  /* Buffers reused by every step of every aggregation of the query (agg.c):
   * a step used to take a table and a group array sized by its input from
   * the arena, 5 MB per step over 57k series, all kept to the end. Shared by
   * sub-evaluators (subqueries copy |ev|), which run one at a time. */
  struct promql__agg_scratch *agg;
  int threads; /* promql__threads() of the query's parallelism */
};

/* Tests only: aggregations take the step vectors (range_eval), never the
 * fused path, so a test can compare the two on one expression. */
extern bool promql__fusion_off;

/* parallel.c: the thread count for |parallelism| (0: online CPUs), and a
 * fork-join over |n| shards: fn(arg, i) runs once for each i < |n| on up
 * to |threads| threads, the caller's included; returns when all are done. */
int promql__threads(int64_t parallelism);
void promql__parallel(int threads, size_t n, void (*fn)(void *arg, size_t shard), void *arg);

typedef struct promql__agg_scratch {
  long *tab;      /* open addressing, -1 empty; cleared slot by slot */
  size_t tabcap;
  void *groups;   /* agg.c's group array */
  size_t groupcap;
  size_t nused;   /* groups of the current step: their slots are set */
} promql__agg_scratch;
/* Frees the buffers of |s| (not |s| itself). */
void promql__agg_scratch_free(promql__agg_scratch *s);

/* Records an execution error (first wins); returns ORR_EINVAL. */
int promql__ev_errorf(promql__ev *ev, const char *fmt, ...) ORR_PRINTF(2, 3);
/* Periodic check of timeout / cancellation / memory; 0 or an error code. */
int promql__ev_check(promql__ev *ev);
int promql__ev_oom(promql__ev *ev);
/* Adds |n| to the samples in memory; ORR_ELIMIT with Prometheus's error. */
int promql__ev_add_samples(promql__ev *ev, int64_t n);

int promql__vec_push(orr_arena *a, promql__vec *v, const promql__sample *s);
/* Labels without __name__ (shares strings; allocates only when needed). */
int promql__drop_name(orr_arena *a, const labels_set *in, labels_set *out);
bool promql__is_stale(double v);
/* Go's math.Max/Min (NaN wins, +0 > -0). */
double promql__go_max(double a, double b);
double promql__go_min(double a, double b);
/* Hash of the labels of |ls| named in |names| (on) or not named and not
 * __name__ (ignoring), as Prometheus's signatureFunc. */
uint64_t promql__signature(const labels_set *ls, bool on, const char *const *names, size_t n);
/* Hash of all labels of |ls| but the one named |skip|, __name__ included
 * (Prometheus's Labels.BytesWithoutLabels key). */
uint64_t promql__hash_without(const labels_set *ls, const char *skip);
/* Go's sort.Sort for small inputs (insertion sort) and a stable merge sort
 * beyond: |less| is Go's Less. */
void promql__sort(void *base, size_t n, size_t size, bool (*less)(const void *, const void *));

/* One step of a binary operator on vectors / scalars (binop.c). */
int promql__binop_vv(promql__ev *ev, const promql_expr *e, promql__vec *lhs, promql__vec *rhs,
                     promql__vec *out);
int promql__binop_vs(promql__ev *ev, promql_op op, promql__vec *lhs, double rhs, bool swap,
                     bool return_bool, promql__vec *out);
double promql__binop_ss(promql_op op, double l, double r);
/* Signature helper of a vector operand (the matching labels). */
uint64_t promql__binop_sig(const promql_expr *e, const labels_set *ls);

/* One step of an aggregation (agg.c). |param| is the scalar parameter,
 * |str| the count_values label. */
int promql__aggregate(promql__ev *ev, const promql_expr *e, double param, promql__vec *in,
                      promql__vec *out);
uint64_t promql__agg_key(const promql_expr *e, const labels_set *ls);

/* Functions over a window of points (fn_range.c): sets |*out| and returns
 * true when the function yields a value. |args| holds the other (scalar)
 * arguments by position; |ts| the evaluation time, |ref| the window end,
 * |range| its length. */
typedef struct promql__win {
  const promql_point *p;
  size_t n;
  int64_t ts, ref, range;
  const double *args;
} promql__win;
int promql__range_fn(promql__ev *ev, int id, const promql__win *w, double *out, bool *ok);
/* The id of range function |name| for promql__range_fn (0: none). */
int promql__range_fn_id(const char *name);

/* Instant-vector functions (fn_vector.c): one step. |args[i]| is the vector
 * of argument i (scalars: one sample), NULL for string arguments. */
int promql__vector_fn(promql__ev *ev, const promql_expr *call, void **state, promql__vec *args,
                      int64_t ts, promql__vec *out);
/* Frees what promql__vector_fn kept in |state| across steps (NULL is fine). */
void promql__vector_fn_free(const promql_expr *call, void *state);
/* quantile() of Prometheus over the values of |v| (sorts |v|). */
double promql__quantile(double q, promql__sample *v, size_t n);
/* Labels absent() and absent_over_time() derive from their argument. */
int promql__absent_labels(orr_arena *a, const promql_expr *arg, labels_set *out);

#endif /* ORR_PROMQL_INT_H */
