/* test_relabel.c: Prometheus relabel_configs (lib/labels/relabel.c): every
 * action, Go's regexp.Expand rules, validation errors, and a table of
 * results taken from a real Prometheus 2.42 (static targets with these
 * relabel_configs; the labels /api/v1/targets showed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "labels.h"

static labels_relabel *parse_ok(const char *yaml) {
  labels_relabel *r = NULL;
  char err[512] = "";
  int rc = labels_relabel_parse(yaml, strlen(yaml), &r, err, sizeof err);
  if (rc) fail_msg("parse failed: %s\n%s", err, yaml);
  return r;
}

static void parse_err(const char *yaml, const char *want) {
  labels_relabel *r = NULL;
  char err[512] = "";
  int rc = labels_relabel_parse(yaml, strlen(yaml), &r, err, sizeof err);
  assert_int_equal(rc, ORR_EINVAL);
  assert_null(r);
  if (!strstr(err, want)) fail_msg("error %s, want %s", err, want);
}

/* Builds a set from "n=v" strings (sorted by labels_sort). */
static labels_set mk(orr_arena *a, int n, ...) {
  va_list ap;
  labels_set s = {orr_arena_calloc(a, n ? (size_t)n : 1, sizeof(labels_label)), (size_t)n};
  va_start(ap, n);
  for (int i = 0; i < n; i++) {
    const char *kv = va_arg(ap, const char *);
    const char *eq = strchr(kv, '=');
    s.v[i].name = orr_arena_strndup(a, kv, (size_t)(eq - kv));
    s.v[i].value = orr_arena_strdup(a, eq + 1);
  }
  va_end(ap);
  assert_int_equal(labels_sort(&s), 0);
  return s;
}

/* Applies |yaml| to |in| and checks the text form of the result ("" for
 * dropped). */
static void check(const char *yaml, const labels_set *in, const char *want) {
  orr_arena *a = orr_arena_new(0);
  labels_relabel *r = parse_ok(yaml);
  labels_set out;
  int rc = labels_relabel_apply(r, a, in, &out);
  assert_true(rc >= 0);
  orr_buf b = {0};
  if (rc == 1) labels_format(&out, &b);
  orr_buf_putc(&b, 0);
  if (strcmp(b.data, want)) fail_msg("got %s want %s\nfor %s", b.data, want, yaml);
  orr_buf_free(&b);
  labels_relabel_free(r);
  orr_arena_destroy(a);
}

static const char prom_cfg[] =
    "- action: hashmod\n  source_labels: [__address__]\n  modulus: 2\n  target_label: shard2\n"
    "- action: hashmod\n  source_labels: [__address__, region]\n  modulus: 1000003\n"
    "  target_label: shardbig\n"
    "- action: hashmod\n  source_labels: [__block_id]\n  modulus: 7\n  target_label: blockshard\n"
    "- source_labels: [__address__]\n"
    "  regex: '(?P<host>h[0-9]+)\\.(?P<dom>\\w+):(\\d+)'\n  target_label: hp\n"
    "  replacement: '${host}-$3-$dom-$1x-$$-${9}'\n"
    "- source_labels: [region]\n  target_label: lower\n  action: lowercase\n"
    "- source_labels: [region]\n  target_label: upper\n  action: uppercase\n"
    "- source_labels: [region]\n  regex: 'eu-.*'\n  action: drop\n";

static const struct {
  int host;
  const char *shard2, *shardbig, *blockshard, *hp;
} prom_table[] = {
    {0, "0", "810732", "3", "h0-9100-example--$-"},
    {1, "1", "408932", "3", "h1-9101-example--$-"},
    {2, "1", "522628", "3", "h2-9102-example--$-"},
    {3, "1", "535080", "3", "h3-9103-example--$-"},
    {4, "0", "156831", "3", "h4-9104-example--$-"},
    {5, "0", "540289", "3", "h5-9105-example--$-"},
    {6, "0", "434598", "3", "h6-9106-example--$-"},
    {7, "1", "153430", "3", "h7-9107-example--$-"},
    {8, "0", "832267", "3", "h8-9108-example--$-"},
    {9, "1", "608426", "3", "h9-9109-example--$-"},
    {10, "1", "910210", "3", "h10-9110-example--$-"},
    {11, "1", "739306", "3", "h11-9111-example--$-"},
    {12, "1", "731679", "3", "h12-9112-example--$-"},
    {13, "0", "505096", "3", "h13-9113-example--$-"},
    {14, "1", "682508", "3", "h14-9114-example--$-"},
    {15, "1", "985849", "3", "h15-9115-example--$-"},
    {16, "1", "345708", "3", "h16-9116-example--$-"},
    {17, "1", "124044", "3", "h17-9117-example--$-"},
    {18, "0", "196552", "3", "h18-9118-example--$-"},
    {19, "1", "480520", "3", "h19-9119-example--$-"},
};

static void test_against_prometheus(void **state) {
  (void)state;
  labels_relabel *r = parse_ok(prom_cfg);
  assert_int_equal(labels_relabel_len(r), 7);
  for (size_t i = 0; i < sizeof prom_table / sizeof *prom_table; i++) {
    orr_arena *a = orr_arena_new(0);
    char addr[64];
    snprintf(addr, sizeof addr, "__address__=h%d.example:%d", prom_table[i].host,
             9100 + prom_table[i].host);
    labels_set in = mk(a, 3, addr, "region=Eu-West", "__block_id=01HABCDEFGHJKMNPQRSTVWXYZ0");
    labels_set out;
    assert_int_equal(labels_relabel_apply(r, a, &in, &out), 1);
    assert_string_equal(labels_get(&out, "shard2"), prom_table[i].shard2);
    assert_string_equal(labels_get(&out, "shardbig"), prom_table[i].shardbig);
    assert_string_equal(labels_get(&out, "blockshard"), prom_table[i].blockshard);
    assert_string_equal(labels_get(&out, "hp"), prom_table[i].hp);
    assert_string_equal(labels_get(&out, "lower"), "eu-west");
    assert_string_equal(labels_get(&out, "upper"), "EU-WEST");
    orr_arena_destroy(a);
  }
  labels_relabel_free(r);
}

static void test_actions(void **state) {
  (void)state;
  orr_arena *a = orr_arena_new(0);
  labels_set in = mk(a, 3, "a=foo", "b=bar", "region=eu");
  /* keep / drop on the joined values */
  check("- {action: keep, source_labels: [a, b], regex: 'foo;bar'}", &in, "{a=\"foo\", b=\"bar\", region=\"eu\"}");
  check("- {action: keep, source_labels: [a, b], regex: 'foo'}", &in, "");
  check("- {action: keep, source_labels: [a, b], separator: '-', regex: 'foo-ba.'}", &in,
        "{a=\"foo\", b=\"bar\", region=\"eu\"}");
  check("- {action: drop, source_labels: [region], regex: eu}", &in, "");
  check("- {action: drop, source_labels: [missing], regex: '.+'}", &in, "{a=\"foo\", b=\"bar\", region=\"eu\"}");
  /* replace: defaults, no match, empty result deletes, invalid target deletes */
  check("- {source_labels: [a], target_label: c}", &in, "{a=\"foo\", b=\"bar\", c=\"foo\", region=\"eu\"}");
  check("- {source_labels: [a], regex: 'x(.*)', target_label: a}", &in, "{a=\"foo\", b=\"bar\", region=\"eu\"}");
  check("- {source_labels: [missing], target_label: a}", &in, "{b=\"bar\", region=\"eu\"}");
  check("- {source_labels: [a], target_label: '${1}_x', replacement: v}", &in,
        "{a=\"foo\", b=\"bar\", foo_x=\"v\", region=\"eu\"}");
  check("- {source_labels: [b], target_label: '$1', regex: '(.*)', replacement: v}", &in,
        "{a=\"foo\", b=\"bar\", bar=\"v\", region=\"eu\"}");
  check("- {source_labels: [a], regex: '(f)(o+)', target_label: c, replacement: '$2$1$'}", &in,
        "{a=\"foo\", b=\"bar\", c=\"oof$\", region=\"eu\"}");
  /* labelmap, labeldrop, labelkeep */
  check("- {action: labelmap, regex: '(a|b)', replacement: 'x_$1'}", &in,
        "{a=\"foo\", b=\"bar\", region=\"eu\", x_a=\"foo\", x_b=\"bar\"}");
  check("- {action: labeldrop, regex: '[ab]'}", &in, "{region=\"eu\"}");
  check("- {action: labelkeep, regex: '[ab]'}", &in, "{a=\"foo\", b=\"bar\"}");
  check("- {action: labelkeep, regex: 'zzz'}", &in, "{}");
  /* keepequal / dropequal compare with target_label's value */
  labels_set eq = mk(a, 2, "a=x", "b=x");
  check("- {action: keepequal, source_labels: [a], target_label: b}", &eq, "{a=\"x\", b=\"x\"}");
  check("- {action: keepequal, source_labels: [a], target_label: c}", &eq, "");
  check("- {action: dropequal, source_labels: [a], target_label: b}", &eq, "");
  /* hashmod over __block_id with modulus 2 splits; rules chain */
  check("- {action: hashmod, source_labels: [a], modulus: 1, target_label: s}\n"
        "- {action: keep, source_labels: [s], regex: '0'}\n"
        "- {action: labeldrop, regex: s}",
        &in, "{a=\"foo\", b=\"bar\", region=\"eu\"}");
  /* no rules: unchanged */
  check("", &in, "{a=\"foo\", b=\"bar\", region=\"eu\"}");
  check("[]", &in, "{a=\"foo\", b=\"bar\", region=\"eu\"}");
  orr_arena_destroy(a);
}

static void test_errors(void **state) {
  (void)state;
  parse_err("- {action: hashmod, source_labels: [a], target_label: s}",
            "relabel configuration for hashmod requires non-zero modulus");
  parse_err("- {action: replace, source_labels: [a]}",
            "relabel configuration for replace action requires 'target_label' value");
  parse_err("- {action: lowercase, source_labels: [a], target_label: '${1}'}",
            "\"${1}\" is invalid 'target_label' for lowercase action");
  parse_err("- {action: labelmap, replacement: '1abc'}", "\"1abc\" is invalid 'replacement' for labelmap action");
  parse_err("- {action: keepequal, source_labels: [a], target_label: b, regex: x}",
            "keepequal action requires only 'source_labels' and `target_label`, and no other fields");
  parse_err("- {action: labeldrop, source_labels: [a], regex: x}",
            "labeldrop action requires only 'regex', and no other fields");
  parse_err("- {action: nope}", "unknown relabel action \"nope\"");
  parse_err("- {source_labels: ['1a'], target_label: b}", "\"1a\" is not a valid label name");
  parse_err("- {regex: '(?<=a)b', target_label: b}", "error parsing regexp");
  parse_err("- {source_labels: [a], source_labels: [b, c], target_label: d}",
            "field source_labels already set in type relabel.plain");
  parse_err("- {bogus: 1}", "field bogus not found in type relabel.plain");
  parse_err("- {action: hashmod, modulus: -1, target_label: s}", "modulus");
  parse_err("{a: b}", "expected a list");
  parse_err("- [", "invalid YAML");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_against_prometheus),
      cmocka_unit_test(test_actions),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
