/* labels: label sets and label matchers with Prometheus's semantics.
 * A label set is an array of (name, value) pairs sorted by name with unique
 * names; strings are NUL-terminated and owned by whoever built the set
 * (usually a request arena). Prefix: labels_. Depends on base, PCRE2, xxhash. */
#ifndef ORR_LABELS_H
#define ORR_LABELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LABELS_METRIC_NAME "__name__"

typedef struct labels_label {
  const char *name;
  const char *value;
} labels_label;

typedef struct labels_set {
  labels_label *v; /* sorted by name (bytewise), names unique */
  size_t n;
} labels_set;

/* Compares as Prometheus's labels.Compare: pairwise by name then value,
 * then by length. Returns <0, 0, >0. */
int labels_cmp(const labels_set *a, const labels_set *b);
bool labels_equal(const labels_set *a, const labels_set *b);
/* Returns the value of |name| or NULL when absent (an empty value counts as absent). */
const char *labels_get(const labels_set *s, const char *name);
/* Hash of the set, stable across processes (xxh64 over name 0xff value 0xff ...). */
uint64_t labels_hash(const labels_set *s);
/* Sorts |s| by name; returns ORR_EINVAL on duplicate names. */
int labels_sort(labels_set *s);
/* Deep copy into |a|; returns 0 or ORR_ENOMEM. */
int labels_copy(orr_arena *a, const labels_set *src, labels_set *dst);
/* Appends the Prometheus text form: {a="1", b="2"} with the metric name
 * first and outside the braces when present: up{job="x"} . */
int labels_format(const labels_set *s, orr_buf *out);
/* True when |name| is a valid label name ([a-zA-Z_][a-zA-Z0-9_]*). */
bool labels_valid_name(const char *name, size_t n);
/* True when |name| is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*). */
bool labels_valid_metric_name(const char *name, size_t n);

/* A builder: start from a set, set/delete labels, produce a new sorted set.
 * All memory comes from the arena given at init. */
typedef struct labels_builder {
  orr_arena *arena;
  labels_label *v;
  size_t n, cap;
  int oom; /* an allocation failed; labels_builder_finish returns ORR_ENOMEM */
} labels_builder;

void labels_builder_init(labels_builder *b, orr_arena *a, const labels_set *base);
/* An empty |value| deletes the label, as in Prometheus. Strings are borrowed
 * until labels_builder_finish copies nothing: callers pass arena strings. */
int labels_builder_set(labels_builder *b, const char *name, const char *value);
int labels_builder_del(labels_builder *b, const char *name);
/* Produces the sorted set (shares the builder's storage); 0 or ORR_ENOMEM. */
int labels_builder_finish(labels_builder *b, labels_set *out);

/* ---------------------------------------------------------------- matchers */
typedef enum {
  LABELS_MATCH_EQ = 0, /* =  */
  LABELS_MATCH_NEQ,    /* != */
  LABELS_MATCH_RE,     /* =~ fully anchored */
  LABELS_MATCH_NRE,    /* !~ fully anchored */
} labels_match_type;

typedef struct labels_matcher labels_matcher; /* opaque: holds compiled regex */

/* Builds a matcher. Regexes are fully anchored (^(?:value)$), compiled with
 * PCRE2 (JIT where available) under a match limit; syntax Go's RE2 rejects is
 * rejected. On a bad regex returns NULL and writes the reason to |err|.
 * Caller frees with labels_matcher_free(). */
labels_matcher *labels_matcher_new(labels_match_type type, const char *name, const char *value,
                                   char *err, size_t errlen);
void labels_matcher_free(labels_matcher *m);
labels_match_type labels_matcher_type(const labels_matcher *m);
const char *labels_matcher_name(const labels_matcher *m);
const char *labels_matcher_value(const labels_matcher *m);
/* Does |value| (length |n|; absent labels are passed as "") match? A regex
 * that hits its match limit counts as no match. */
bool labels_matcher_matches(const labels_matcher *m, const char *value, size_t n);
/* True when the matcher matches the empty string, i.e. selects series that
 * lack the label. */
bool labels_matcher_matches_empty(const labels_matcher *m);
/* For =~ whose regex is a plain alternation of literals ("a|b|c") returns the
 * sorted literals (borrowed, valid while |m| lives) and their count; else 0. */
size_t labels_matcher_set_values(const labels_matcher *m, const char *const **values);
/* For =~ whose regex is a literal prefix followed by ".*" returns the prefix; else NULL. */
const char *labels_matcher_prefix(const labels_matcher *m);
/* Does the whole set match every matcher? */
bool labels_matches_all(const labels_set *s, labels_matcher *const *ms, size_t n);
/* Appends the PromQL form: name="value", name=~"re". */
int labels_matcher_format(const labels_matcher *m, orr_buf *out);

/* ---------------------------------------------------------------- relabeling
 * Prometheus 2.42 relabel_configs (relabel.c): a YAML list of rules with
 * source_labels, separator, regex, modulus, target_label, replacement and
 * action (replace, keep, drop, hashmod, labelmap, labeldrop, labelkeep,
 * lowercase, uppercase, keepequal, dropequal). Immutable once parsed: one
 * list may be applied from several threads. */
typedef struct labels_relabel labels_relabel; /* opaque */

/* Parses |yaml| (|len| bytes). An empty or null document is a list of no
 * rules. Returns 0 with |*out| set (caller frees with labels_relabel_free),
 * ORR_EINVAL with the reason in |err| (Prometheus's wording where it has
 * one), or ORR_ENOMEM. */
int labels_relabel_parse(const char *yaml, size_t len, labels_relabel **out, char *err,
                         size_t errlen);
void labels_relabel_free(labels_relabel *r);
size_t labels_relabel_len(const labels_relabel *r);
/* Applies the rules in order to |in| (borrowed). Returns 1 when the set is
 * kept, with the result in |*out| (strings and array from |a|, or borrowed
 * from |in|), 0 when a keep/drop rule dropped it (|*out| empty), or
 * ORR_ENOMEM. */
int labels_relabel_apply(const labels_relabel *r, orr_arena *a, const labels_set *in,
                         labels_set *out);

/* ---------------------------------------------------------------- internal
 * Shared by the module's files (labels__ prefix); not for other modules. */
/* Appends |s| (|n| bytes) quoted as Go's strconv.Quote does. */
int labels__quote(orr_buf *out, const char *s, size_t n);
/* True when |s| is valid UTF-8 (no surrogates, no overlongs). */
bool labels__utf8_valid(const char *s, size_t n);
/* Length of the UTF-8 sequence at |s| (|n| > 0 bytes), or 0 when invalid. */
size_t labels__utf8_len(const unsigned char *s, size_t n);
/* Runs a =~/!~ matcher's whole regex (anchored, no fast path) on |s| (valid
 * UTF-8) and writes up to |npairs| (start, end) offset pairs to |ov|: group 0
 * is the match, unset groups are SIZE_MAX. Returns the pairs written (>= 1)
 * on a match, 0 on no match (or a hit limit), ORR_ENOMEM. */
int labels__regex_submatch(const labels_matcher *m, const char *s, size_t n, size_t *ov,
                           size_t npairs);
/* The lowest-numbered group named |name| (|len| bytes) that is set in |ov|,
 * or -1 (Go's regexp.Expand rule for a named reference). */
int labels__regex_named_group(const labels_matcher *m, const char *name, size_t len,
                              const size_t *ov, size_t npairs);

#ifdef __cplusplus
}
#endif
#endif /* ORR_LABELS_H */
