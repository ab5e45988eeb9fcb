/* expfmt: the Prometheus text exposition format 0.0.4 — what /metrics and
 * /federate answer. A parser that hands each sample to a callback, with no
 * I/O (fuzzed: tests/fuzz/fuzz_expfmt_parse.c).
 * Prefix: expfmt_. Depends on base, labels. */
#ifndef ORR_EXPFMT_H
#define ORR_EXPFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "labels.h"

/* One sample line. |labels| holds __name__ and the line's labels, sorted
 * (strings borrowed until the callback returns). */
typedef struct expfmt_sample {
  labels_set labels;
  double v;
  bool has_ts; /* the line gave a timestamp */
  int64_t ts;  /* ms, when has_ts */
} expfmt_sample;

/* Returns 0 to go on, or a negative code that stops the parse (returned). */
typedef int (*expfmt_sample_fn)(const expfmt_sample *s, void *arg);

/* Parses |data|/|len| as Prometheus 2.42's text parser does: lines end in
 * '\n' (the last one may not); blank lines are skipped; '#' lines are
 * comments, "# HELP name text" and "# TYPE name type" checked for their
 * name (and type: counter, gauge, histogram, summary, untyped); a sample
 * line is name[{label="value",...}] value [timestamp] with spaces or tabs
 * between tokens, label values escaped with \\, \" and \n, a trailing comma
 * allowed in the braces, the value a Go float (1, -1.5e3, +Inf, -Inf, NaN),
 * the timestamp integer milliseconds. |scratch| (reset per sample) holds the
 * unescaped strings. Returns 0, ORR_EINVAL with "line N: what" in |err|
 * (nothing after the bad line is read; samples before it were delivered),
 * ORR_ENOMEM, or the callback's code. */
int expfmt_parse(const char *data, size_t len, orr_arena *scratch, expfmt_sample_fn fn,
                 void *arg, char *err, size_t errlen);

#endif /* ORR_EXPFMT_H */
