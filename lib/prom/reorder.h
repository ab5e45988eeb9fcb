/* reorder.h: restores StoreAPI order after external labels are added.
 *
 * Prometheus's remote read sends series sorted by their own labels; adding
 * external labels can swap two of them, and only a pair where the first is
 * a proper prefix P of the second and the second's label after P is named
 * at or below the largest external label name (e.g. {a,job} < {a,job,q} but
 * {a,job,region} > {a,job,q,region}). Such pairs are contiguous in input
 * order, so a series is held only while it is such a prefix of the latest
 * input, and released, in the order of its final labels, as soon as no
 * later input can sort before it. The series whose last label name is at
 * or above the largest external name stream through unheld; the others wait
 * for the next series (one lookahead). What is held is at most the chain of
 * prefixes of the latest series plus what sorts behind them, capped at
 * PROM_REORDER_MAX. The caller passes Prometheus's labels without those
 * named as external labels (remote read already carries them; a stored label
 * of that name is overwritten by the external one, Thanos's rule, and such
 * series are not reordered beyond the prefix rule). */
#ifndef ORRERY_PROM_REORDER_H
#define ORRERY_PROM_REORDER_H

#include "labels.h"

#define PROM_REORDER_MAX 65536

/* Gets each series in final order: its final labels and the bytes given to
 * prom_reorder_add. A non-zero return stops and is returned by add/flush. */
typedef int (*prom_reorder_emit_fn)(void *arg, const labels_set *final, const void *msg,
                                    size_t len);

typedef struct prom_reorder_item prom_reorder_item;
typedef struct prom_reorder {
  const char *ext_max; /* largest external label name; NULL: pass through */
  prom_reorder_emit_fn emit;
  void *arg;
  prom_reorder_item **held; /* sorted by final labels */
  size_t n, cap, max_held;
} prom_reorder;

/* |ext| sorted; it must outlive |r|. */
void prom_reorder_init(prom_reorder *r, const labels_set *ext, prom_reorder_emit_fn emit,
                       void *arg);
/* One input series in input order: its Prometheus labels, final labels and
 * message bytes (copied when held). ORR_ELIMIT when more than
 * PROM_REORDER_MAX would be held; else 0, ORR_ENOMEM or an emit's code. */
int prom_reorder_add(prom_reorder *r, const labels_set *orig, const labels_set *final,
                     const void *msg, size_t len);
/* End of input: releases what is held, in order. */
int prom_reorder_flush(prom_reorder *r);
/* Frees what is held without emitting it. */
void prom_reorder_free(prom_reorder *r);

#endif
