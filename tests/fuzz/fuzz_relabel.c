/* fuzz_relabel.c: arbitrary bytes as a relabel_configs YAML list. A list is
 * refused with a message, or parsed and applied to a block's labels; what
 * comes out is a valid label set (sorted, unique names, no empty value). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "labels.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  labels_relabel *r = NULL;
  char err[512];
  err[0] = '\0';
  int rc = labels_relabel_parse((const char *)data, size, &r, err, sizeof err);
  if (rc == ORR_EINVAL) {
    if (r || !err[0] || !memchr(err, '\0', sizeof err)) abort();
    return 0;
  }
  if (rc == ORR_ENOMEM) return 0;
  if (rc != 0 || !r) abort();
  orr_arena *a = orr_arena_new(0);
  labels_label v[] = {{"__block_id", "01HABCDEFGHJKMNPQRSTVWXYZ0"},
                      {"a", "x\xff\xfey"},
                      {"region", "eu-west"},
                      {"replica", "A"}};
  labels_set in = {v, sizeof v / sizeof *v}, out;
  int kept = a ? labels_relabel_apply(r, a, &in, &out) : ORR_ENOMEM;
  if (kept == 1) {
    for (size_t i = 0; i < out.n; i++) {
      if (!out.v[i].name || !out.v[i].value || !out.v[i].value[0]) abort();
      if (i && strcmp(out.v[i - 1].name, out.v[i].name) >= 0) abort();
    }
  } else if (kept != 0 && kept != ORR_ENOMEM) {
    abort();
  }
  orr_arena_destroy(a);
  labels_relabel_free(r);
  return 0;
}
