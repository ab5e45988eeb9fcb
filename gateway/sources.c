/* sources.c: the in-process source kinds (gateway_int.h, gw__source) — the
 * table that maps an endpoint address "<kind>+<spec>" to the code that runs
 * it: prometheus.c (a plain Prometheus through remote read), src_promql.c
 * (a query API), fedsource.c (a /federate endpoint scraped into an
 * in-memory head) and any later kind (add its gw__source_kind here). */
#include <stdlib.h>
#include <string.h>

#include "gateway_int.h"

extern const gw__source_kind gw__source_prometheus; /* prometheus.c */
extern const gw__source_kind gw__source_promql;     /* src_promql.c */
extern const gw__source_kind gw__source_federate;   /* fedsource.c */

static const gw__source_kind *const kinds[] = {
    &gw__source_prometheus,
    &gw__source_promql,
    &gw__source_federate,
    NULL,
};

const gw__source_kind *gw__source_kind_of(const char *address, const char **spec) {
  for (size_t i = 0; kinds[i]; i++) {
    size_t n = strlen(kinds[i]->kind);
    if (strncmp(address, kinds[i]->kind, n) == 0 && address[n] == '+') {
      *spec = address + n + 1;
      return kinds[i];
    }
  }
  return NULL;
}

char *gw__source_name(const char *spec) {
  size_t n = strcspn(spec, ";");
  char *s = malloc(n + 1);
  if (!s) return NULL;
  memcpy(s, spec, n);
  s[n] = 0;
  /* A password in the URL shows as xxxxx (Go's URL.Redacted), as
   * Prometheus and Thanos show them. Never longer than the input. */
  char *shown = malloc(n + 1);
  if (!shown) {
    free(s);
    return NULL;
  }
  net_url_redacted(s, shown, n + 1);
  free(s);
  return shown;
}
