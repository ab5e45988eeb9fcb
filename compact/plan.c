/* plan.c: groups and the compaction planner — which blocks of a group to
 * compact next, as Prometheus 2.42's LeveledCompactor.plan and Thanos's
 * tsdbBasedPlanner decide.
 *
 * NOTES ON THE DESIGN
 * 1. A group is the blocks with the same external labels (minus the
 *    --deduplication.replica-label names) and the same resolution; only
 *    blocks of one group are ever compacted together.
 * 2. Plan, in order (blocks sorted by minTime): (a) the first run of
 *    overlapping blocks among those without a no-compact mark; (b)
 *    otherwise, with the newest block (largest minTime) left alone, for
 *    each range after the first the first aligned window [t0, t0+range)
 *    holding more than one block that either spans the whole range or ends
 *    before the newest remaining block starts — then, within it, the first
 *    run of more than one block between no-compact-marked ones; (c)
 *    otherwise the newest unmarked block spanning at least the middle range
 *    with more than 5% tombstones per series.
 * 4. No-compact marks split windows, they do not shrink them (Thanos's
 *    planner): a marked block still counts in (b) for the windows, their
 *    fullness and the newest block, so that leaving it out neither makes
 *    blocks on its two sides one compaction across the gap it leaves nor
 *    changes which windows the others are compacted in.
 * 3. The planner is pure: the caller removes the chosen blocks and adds the
 *    result before planning again, until nothing is chosen. */
#include <stdlib.h>
#include <string.h>

#include "compact_int.h"

char *compact__group_key(orr_arena *a, const tsdb_meta *m, const char *const *drop, size_t ndrop,
                         labels_set *out) {
  const labels_set *ls = m->has_thanos ? &m->thanos.labels : NULL;
  size_t n = ls ? ls->n : 0;
  labels_label *v = orr_arena_calloc(a, n + 1, sizeof(*v));
  if (!v) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    bool skip = false;
    for (size_t j = 0; j < ndrop; j++)
      if (strcmp(ls->v[i].name, drop[j]) == 0) skip = true;
    if (!skip) v[k++] = ls->v[i];
  }
  out->v = v;
  out->n = k;
  orr_buf b = {0};
  orr_buf_printf(&b, "%lld@", (long long)(m->has_thanos ? m->thanos.downsample_resolution : 0));
  labels_format(out, &b);
  char *key = b.oom ? NULL : orr_arena_strndup(a, (const char *)b.data, b.len);
  orr_buf_free(&b);
  return key;
}

typedef struct pm {
  const tsdb_meta *m;
  size_t idx;
} pm;

static int cmp_min(const void *x, const void *y) {
  const pm *a = x, *b = y;
  if (a->m->min_time != b->m->min_time) return a->m->min_time < b->m->min_time ? -1 : 1;
  return tsdb_ulid_cmp(&a->m->ulid, &b->m->ulid);
}

/* (a) of note 2. */
static size_t select_overlapping(const pm *d, size_t n, size_t *out) {
  if (n < 2) return 0;
  size_t k = 0;
  int64_t gmax = d[0].m->max_time;
  for (size_t i = 1; i < n; i++) {
    if (d[i].m->min_time < gmax) {
      if (k == 0) out[k++] = d[i - 1].idx;
      out[k++] = d[i].idx;
    } else if (k > 0) {
      break;
    }
    if (d[i].m->max_time > gmax) gmax = d[i].m->max_time;
  }
  return k;
}

/* (b) of note 2 over |d| (all blocks, marked ones too, the newest already
 * left out); |high| is the newest remaining block's minTime. */
static size_t select_ranges(const pm *d, size_t n, const bool *excluded, int64_t high,
                            const int64_t *ranges, size_t nranges, size_t *out) {
  if (nranges < 2 || n < 1) return 0;
  for (size_t r = 1; r < nranges; r++) {
    int64_t tr = ranges[r];
    for (size_t i = 0; i < n;) {
      const tsdb_meta *m = d[i].m;
      int64_t t0 = m->min_time >= 0 ? tr * (m->min_time / tr) : tr * ((m->min_time - tr + 1) / tr);
      if (m->max_time > t0 + tr) { /* does not fit an aligned window */
        i++;
        continue;
      }
      size_t start = i;
      while (i < n && d[i].m->max_time <= t0 + tr) i++;
      size_t cnt = i - start;
      int64_t mint = d[start].m->min_time, maxt = d[i - 1].m->max_time;
      if (cnt < 2 || (maxt - mint != tr && maxt > high)) continue;
      /* The first run of 2+ unmarked blocks between marked ones (note 4). */
      size_t from = start;
      for (size_t j = start; j <= i; j++) {
        if (j < i && !(excluded && excluded[d[j].idx])) continue;
        if (j - from > 1) {
          for (size_t x = from; x < j; x++) out[x - from] = d[x].idx;
          return j - from;
        }
        from = j + 1;
      }
    }
  }
  return 0;
}

void compact__plan(const tsdb_meta *const *metas, const bool *excluded, size_t n,
                   const int64_t *ranges, size_t nranges, size_t *out, size_t *nout) {
  *nout = 0;
  pm *all = calloc(n + 1, sizeof(*all)), *ne = calloc(n + 1, sizeof(*ne));
  if (!all || !ne) {
    free(all);
    free(ne);
    return;
  }
  size_t k = 0, kne = 0;
  for (size_t i = 0; i < n; i++) all[k++] = (pm){metas[i], i};
  qsort(all, k, sizeof(*all), cmp_min);
  for (size_t i = 0; i < k; i++)
    if (!excluded || !excluded[all[i].idx]) ne[kne++] = all[i];
  size_t r = select_overlapping(ne, kne, out);
  if (r == 0 && k > 0) {
    /* The newest block is left alone (marked or not); the window test uses
     * the newest of the remaining blocks, as Prometheus's selectDirs does. */
    if (!(excluded && excluded[all[k - 1].idx]) && kne > 0) kne--;
    if (k > 1) r = select_ranges(all, k - 1, excluded, all[k - 2].m->min_time, ranges, nranges, out);
    if (r == 0 && nranges > 0) {
      /* Over the unmarked blocks but the newest, newest first, as
       * Prometheus and Thanos. */
      for (size_t i = kne; i-- > 0;) {
        const tsdb_meta *m = ne[i].m;
        if (m->max_time - m->min_time < ranges[nranges / 2]) break;
        if ((double)m->num_tombstones / (double)(m->num_series + 1) > 0.05) {
          out[0] = ne[i].idx;
          r = 1;
          break;
        }
      }
    }
  }
  free(all);
  free(ne);
  *nout = r;
}

bool compact__overlap(const tsdb_meta *const *metas, size_t n, size_t *a, size_t *b) {
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++)
      if (metas[i]->min_time < metas[j]->max_time && metas[j]->min_time < metas[i]->max_time) {
        *a = i;
        *b = j;
        return true;
      }
  return false;
}
