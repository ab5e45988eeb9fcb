/* convert.c: StoreAPI messages ↔ lib/labels — matchers, label sets, the
 * external-label extension Thanos applies, and remote-read ChunkedSeries to
 * StoreAPI Series with the chunk bytes passed through. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storeapi_int.h"

static void *arena_pb_alloc(void *data, size_t size) { return orr_arena_alloc(data, size ? size : 1); }
static void arena_pb_free(void *data, void *p) {}

ProtobufCAllocator storeapi_arena_allocator(orr_arena *a) {
  ProtobufCAllocator al = {arena_pb_alloc, arena_pb_free, a};
  return al;
}

static const char *const match_ops[] = {"=", "!=", "=~", "!~"};

int storeapi_matchers_from_proto(Thanos__LabelMatcher *const *pm, size_t n, orr_arena *a,
                                 labels_matcher ***out, char *err, size_t errlen) {
  *out = NULL;
  labels_matcher **ms = orr_arena_calloc(a, n ? n : 1, sizeof(*ms));
  if (!ms) return ORR_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const Thanos__LabelMatcher *m = pm[i];
    int t = (int)m->type;
    if (t < 0 || t > 3) {
      snprintf(err, errlen, "unrecognized label matcher type %d for label %s", t, m->name);
      storeapi_matchers_free(ms, i);
      return ORR_EINVAL;
    }
    char why[256] = "";
    ms[i] = labels_matcher_new((labels_match_type)t, m->name ? m->name : "",
                               m->value ? m->value : "", why, sizeof(why));
    if (!ms[i]) {
      snprintf(err, errlen, "bad matcher %s%s\"%s\": %s", m->name, match_ops[t], m->value,
               why[0] ? why : "out of memory");
      storeapi_matchers_free(ms, i);
      return why[0] ? ORR_EINVAL : ORR_ENOMEM;
    }
  }
  *out = ms;
  return 0;
}

void storeapi_matchers_free(labels_matcher **ms, size_t n) {
  if (!ms) return;
  for (size_t i = 0; i < n; i++) labels_matcher_free(ms[i]);
}

int storeapi_matchers_to_proto(labels_matcher *const *ms, size_t n, orr_arena *a,
                               Thanos__LabelMatcher ***out) {
  Thanos__LabelMatcher **pm = orr_arena_calloc(a, n ? n : 1, sizeof(*pm));
  Thanos__LabelMatcher *v = orr_arena_calloc(a, n ? n : 1, sizeof(*v));
  if (!pm || !v) return ORR_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    thanos__label_matcher__init(&v[i]);
    v[i].type = (Thanos__LabelMatcher__Type)labels_matcher_type(ms[i]);
    v[i].name = (char *)labels_matcher_name(ms[i]);
    v[i].value = (char *)labels_matcher_value(ms[i]);
    pm[i] = &v[i];
  }
  *out = pm;
  return 0;
}

int storeapi_labels_from_proto(Thanos__Label *const *pl, size_t n, orr_arena *a, labels_set *out) {
  out->n = 0;
  out->v = orr_arena_calloc(a, n ? n : 1, sizeof(labels_label));
  if (!out->v) return ORR_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    out->v[i].name = pl[i]->name ? pl[i]->name : "";
    out->v[i].value = pl[i]->value ? pl[i]->value : "";
  }
  out->n = n;
  return labels_sort(out);
}

int storeapi_labels_to_proto(const labels_set *s, orr_arena *a, Thanos__Label ***out) {
  Thanos__Label **pl = orr_arena_calloc(a, s->n ? s->n : 1, sizeof(*pl));
  Thanos__Label *v = orr_arena_calloc(a, s->n ? s->n : 1, sizeof(*v));
  if (!pl || !v) return ORR_ENOMEM;
  for (size_t i = 0; i < s->n; i++) {
    thanos__label__init(&v[i]);
    v[i].name = (char *)s->v[i].name;
    v[i].value = (char *)s->v[i].value;
    pl[i] = &v[i];
  }
  *out = pl;
  return 0;
}

static bool dropped(const char *name, char *const *drop, size_t ndrop) {
  for (size_t i = 0; i < ndrop; i++)
    if (strcmp(name, drop[i]) == 0) return true;
  return false;
}

int storeapi_labels_extend(const labels_set *series, const labels_set *ext, char *const *drop,
                           size_t ndrop, orr_arena *a, labels_set *out) {
  /* Both inputs sorted: a merge where ext wins on equal names. */
  size_t cap = series->n + ext->n;
  out->n = 0;
  out->v = orr_arena_calloc(a, cap ? cap : 1, sizeof(labels_label));
  if (!out->v) return ORR_ENOMEM;
  size_t i = 0, j = 0, k = 0;
  while (i < series->n || j < ext->n) {
    const labels_label *l;
    if (j == ext->n) {
      l = &series->v[i++];
    } else if (i == series->n) {
      l = &ext->v[j++];
    } else {
      int c = strcmp(series->v[i].name, ext->v[j].name);
      if (c < 0) {
        l = &series->v[i++];
      } else if (c > 0) {
        l = &ext->v[j++];
      } else {
        l = &ext->v[j++];
        i++;
      }
    }
    if (ndrop && dropped(l->name, drop, ndrop)) continue;
    if (k > 0 && strcmp(out->v[k - 1].name, l->name) >= 0) return ORR_EINVAL;
    out->v[k++] = *l;
  }
  out->n = k;
  return 0;
}

int storeapi_series_from_chunked(const Prometheus__ChunkedSeries *cs, const labels_set *ext,
                                 char *const *drop, size_t ndrop, orr_arena *a,
                                 Thanos__Series *out) {
  thanos__series__init(out);
  labels_set sl = {0};
  sl.v = orr_arena_calloc(a, cs->n_labels ? cs->n_labels : 1, sizeof(labels_label));
  if (!sl.v) return ORR_ENOMEM;
  for (size_t i = 0; i < cs->n_labels; i++) {
    sl.v[i].name = cs->labels[i]->name ? cs->labels[i]->name : "";
    sl.v[i].value = cs->labels[i]->value ? cs->labels[i]->value : "";
  }
  sl.n = cs->n_labels;
  int rc = labels_sort(&sl);
  if (rc) return rc;
  labels_set lset;
  rc = storeapi_labels_extend(&sl, ext, drop, ndrop, a, &lset);
  if (rc) return rc;
  rc = storeapi_labels_to_proto(&lset, a, &out->labels);
  if (rc) return rc;
  out->n_labels = lset.n;

  size_t nc = cs->n_chunks;
  Thanos__AggrChunk **pc = orr_arena_calloc(a, nc ? nc : 1, sizeof(*pc));
  Thanos__AggrChunk *ac = orr_arena_calloc(a, nc ? nc : 1, sizeof(*ac));
  Thanos__Chunk *raw = orr_arena_calloc(a, nc ? nc : 1, sizeof(*raw));
  if (!pc || !ac || !raw) return ORR_ENOMEM;
  for (size_t i = 0; i < nc; i++) {
    const Prometheus__Chunk *c = cs->chunks[i];
    if ((int)c->type < 1 || (int)c->type > 3) return ORR_EUNSUPPORTED;
    thanos__aggr_chunk__init(&ac[i]);
    thanos__chunk__init(&raw[i]);
    ac[i].min_time = c->min_time_ms;
    ac[i].max_time = c->max_time_ms;
    /* prompb counts UNKNOWN as 0, storepb starts at XOR = 0. */
    raw[i].type = (Thanos__Chunk__Encoding)((int)c->type - 1);
    raw[i].data = c->data;
    ac[i].raw = &raw[i];
    pc[i] = &ac[i];
  }
  out->chunks = pc;
  out->n_chunks = nc;
  return 0;
}

bool storeapi_split_external(const labels_set *ext, labels_matcher *const *ms, size_t n,
                             orr_arena *a, labels_matcher ***rest, size_t *nrest) {
  labels_matcher **r = orr_arena_calloc(a, n ? n : 1, sizeof(*r));
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const char *v = labels_get(ext, labels_matcher_name(ms[i]));
    if (!v) {
      if (r) r[k++] = ms[i];
      continue;
    }
    if (!labels_matcher_matches(ms[i], v, strlen(v))) return false;
  }
  *rest = r;
  *nrest = r ? k : 0;
  return true;
}

bool storeapi_labels_answer_external(storeapi_call *c, const storeapi_label_req *req,
                                     const labels_set *ext, bool names, bool match) {
  if (names) {
    if (match) return false;
    Thanos__LabelNamesResponse r = THANOS__LABEL_NAMES_RESPONSE__INIT;
    storeapi_call_reply_label_names(c, &r);
    return true;
  }
  const char *ev = labels_get(ext, req->label);
  if (ev || !match) {
    Thanos__LabelValuesResponse r = THANOS__LABEL_VALUES_RESPONSE__INIT;
    char *vals[1] = {(char *)ev};
    if (ev && match) {
      r.values = vals;
      r.n_values = 1;
    }
    storeapi_call_reply_label_values(c, &r);
    return true;
  }
  if (!labels_valid_name(req->label, strlen(req->label))) {
    storeapi_call_finish(c, NET_GRPC_INVALID_ARGUMENT, "invalid label name");
    return true;
  }
  return false;
}
