/* select.c: label matchers to series references over an index reader, with
 * the semantics of Prometheus 2.42's PostingsForMatchers: positive matchers
 * intersect, negative ones are subtracted, and a matcher that matches the
 * empty string also selects the series that lack its label. */
#include <string.h>

#include "tsdb_int.h"

/* Values of |m|'s label that |m| matches (want == true) or does not match
 * (want == false). Uses the alternation and prefix shortcuts where the
 * matcher offers them. */
static int matching_values(const tsdb_postings_source *r, const labels_matcher *m, bool want,
                           orr_arena *a, const char *const **out, size_t *n) {
  const char *name = labels_matcher_name(m);
  if (want && labels_matcher_type(m) == LABELS_MATCH_EQ) {
    const char **v = orr_arena_alloc(a, sizeof(*v));
    if (!v) return ORR_ENOMEM;
    v[0] = labels_matcher_value(m);
    *out = v;
    *n = 1;
    return 0;
  }
  if (want && labels_matcher_type(m) == LABELS_MATCH_RE) {
    const char *const *set;
    size_t ns = labels_matcher_set_values(m, &set);
    if (ns > 0) {
      *out = set;
      *n = ns;
      return 0;
    }
  }
  const char **vals;
  size_t nv;
  int rc = r->label_values(r->arg, name, a, &vals, &nv);
  if (rc) return rc;
  const char *prefix = labels_matcher_type(m) == LABELS_MATCH_RE ? labels_matcher_prefix(m) : NULL;
  size_t pl = prefix ? strlen(prefix) : 0;
  size_t k = 0;
  for (size_t i = 0; i < nv; i++) {
    bool match;
    if (prefix) /* "p.*": "." does not match a newline */
      match = strncmp(vals[i], prefix, pl) == 0 && !strchr(vals[i] + pl, '\n');
    else
      match = labels_matcher_matches(m, vals[i], strlen(vals[i]));
    if (match == want) vals[k++] = vals[i];
  }
  *out = vals;
  *n = k;
  return 0;
}

static int postings_for(const tsdb_postings_source *r, const labels_matcher *m, bool want,
                        orr_arena *a, tsdb_postings **out) {
  const char *const *vals;
  size_t nv;
  int rc = matching_values(r, m, want, a, &vals, &nv);
  if (rc) return rc;
  return r->postings(r->arg, labels_matcher_name(m), vals, nv, a, out);
}

static int all_postings(const tsdb_postings_source *r, orr_arena *a, tsdb_postings **out) {
  const char *v = "";
  return r->postings(r->arg, "", &v, 1, a, out);
}

/* A matcher whose inner (positive) form is |m| with the type flipped. */
static bool is_negative(const labels_matcher *m) {
  labels_match_type t = labels_matcher_type(m);
  return t == LABELS_MATCH_NEQ || t == LABELS_MATCH_NRE;
}

static int idx_values(void *arg, const char *name, orr_arena *a, const char ***values,
                      size_t *n) {
  return tsdb_index_label_values(arg, name, a, values, n);
}

static int idx_postings(void *arg, const char *name, const char *const *values, size_t n,
                        orr_arena *a, tsdb_postings **out) {
  return tsdb_index_postings(arg, name, values, n, a, out);
}

int tsdb_index_select(const tsdb_index_reader *r, labels_matcher *const *ms, size_t n,
                      orr_arena *a, tsdb_postings **out) {
  tsdb_postings_source src = {idx_values, idx_postings, (void *)r};
  return tsdb_select_postings(&src, ms, n, a, out);
}

int tsdb_select_postings(const tsdb_postings_source *r, labels_matcher *const *ms, size_t n,
                         orr_arena *a, tsdb_postings **out) {
  tsdb_postings **its = orr_arena_alloc(a, (n + 1) * sizeof(*its));
  tsdb_postings **nots = orr_arena_alloc(a, (n + 1) * sizeof(*nots));
  if (!its || !nots) return ORR_ENOMEM;
  size_t ni = 0, nn = 0;
  int rc;
  for (size_t i = 0; i < n; i++) {
    const labels_matcher *m = ms[i];
    const char *name = labels_matcher_name(m);
    if (name[0] == '\0' && labels_matcher_value(m)[0] == '\0') {
      if ((rc = all_postings(r, a, &its[ni++])) != 0) return rc;
      continue;
    }
    /* Must the label be set? Only if some matcher on it rejects "". */
    bool must_be_set = false;
    for (size_t j = 0; j < n; j++)
      if (strcmp(labels_matcher_name(ms[j]), name) == 0 && !labels_matcher_matches_empty(ms[j]))
        must_be_set = true;
    bool empty = labels_matcher_matches_empty(m);
    tsdb_postings *it;
    if (must_be_set) {
      if (is_negative(m) && empty) {
        /* l!="foo": subtract the series whose value matches the inverse. */
        if ((rc = postings_for(r, m, false, a, &it)) != 0) return rc;
        nots[nn++] = it;
      } else if (is_negative(m) && !empty) {
        /* l!="": series whose value does not match the inverse, i.e. that
         * |m| itself matches among the values present. */
        if ((rc = postings_for(r, m, true, a, &it)) != 0) return rc;
        its[ni++] = it;
      } else {
        if ((rc = postings_for(r, m, true, a, &it)) != 0) return rc;
        its[ni++] = it;
      }
    } else {
      /* l="" or l=~"|x": subtract the series whose value |m| rejects. */
      if ((rc = postings_for(r, m, false, a, &it)) != 0) return rc;
      nots[nn++] = it;
    }
  }
  if (ni == 0 && nn > 0) {
    if ((rc = all_postings(r, a, &its[ni++])) != 0) return rc;
  }
  tsdb_postings *p = tsdb_postings_intersect(a, its, ni);
  for (size_t i = 0; p && i < nn; i++) p = tsdb_postings_without(a, p, nots[i]);
  *out = p;
  return p ? 0 : ORR_ENOMEM;
}
