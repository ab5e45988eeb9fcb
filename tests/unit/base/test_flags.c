/* test_flags.c: the long-flags parser (forms, defaults, repeatable flags,
 * the one-line errors a user sees), the help text and byte sizes. */
#include <stdlib.h>

#include "test_base.h"

static struct {
  const char *addr;
  int partial;
  int verbose;
  int64_t samples;
  int64_t timeout;
  double ratio;
  int64_t cache;
  orr_strings endpoints;
  orr_strings labels;
} o;

static const orr_flag flags[] = {
    {"http-address", ORR_FLAG_STRING, &o.addr, "0.0.0.0:10902", "Listen host:port for HTTP endpoints.", NULL},
    {"query.partial-response", ORR_FLAG_BOOL, &o.partial, "true", "Enable partial response.", NULL},
    {"verbose", ORR_FLAG_BOOL, &o.verbose, NULL, "Say more.", NULL},
    {"query.max-samples", ORR_FLAG_INT, &o.samples, "50000000", "Maximum samples per query.", NULL},
    {"query.timeout", ORR_FLAG_DURATION, &o.timeout, "2m", "Maximum query time.", NULL},
    {"ratio", ORR_FLAG_FLOAT, &o.ratio, "0.5", "A ratio.", NULL},
    {"cache-size", ORR_FLAG_BYTES, &o.cache, "250MB", "Cache size.", NULL},
    {"endpoint", ORR_FLAG_STRINGS, &o.endpoints, NULL, "StoreAPI endpoint (repeatable).", "<addr>"},
    {"label", ORR_FLAG_STRINGS, &o.labels, "replica", "Replica label (repeatable).", NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

static char err[256];

/* Parses a NULL-terminated list of arguments (argv[0] is added). */
static int parse(orr_strings *rest, ...) {
  char *argv[32];
  int argc = 0;
  argv[argc++] = "prog";
  va_list ap;
  va_start(ap, rest);
  for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 31;) argv[argc++] = a;
  va_end(ap);
  argv[argc] = NULL;
  return orr_flags_parse(flags, argc, argv, rest, err, sizeof(err));
}

static int teardown(void **state) {
  (void)state;
  orr_flags_free(flags);
  return 0;
}

static void test_defaults(void **state) {
  (void)state;
  orr_strings rest;
  assert_int_equal(parse(&rest, NULL), 0);
  assert_string_equal(o.addr, "0.0.0.0:10902");
  assert_int_equal(o.partial, 1);
  assert_int_equal(o.verbose, 0);
  assert_int_equal(o.samples, 50000000);
  assert_int_equal(o.timeout, 120000);
  assert_true(o.ratio == 0.5);
  assert_int_equal(o.cache, 250LL * 1024 * 1024);
  assert_int_equal(o.endpoints.n, 0);
  assert_int_equal(o.labels.n, 1);
  assert_string_equal(o.labels.v[0], "replica");
  assert_int_equal(rest.n, 0);
  orr_strings_free(&rest);
}

static void test_forms(void **state) {
  (void)state;
  orr_strings rest;
  assert_int_equal(parse(&rest, "pos1", "--http-address=127.0.0.1:1", "--query.timeout", "30s",
                         "--no-query.partial-response", "--verbose", "--endpoint", "a:1",
                         "--endpoint=b:2", "pos2", "--query.max-samples=-5", "--ratio", "1e3",
                         "--cache-size=1GiB", "--label=r1", "--label", "r2", "-", "--", "--verbose",
                         "-x", NULL),
                   0);
  assert_string_equal(o.addr, "127.0.0.1:1");
  assert_int_equal(o.timeout, 30000);
  assert_int_equal(o.partial, 0);
  assert_int_equal(o.verbose, 1);
  assert_int_equal(o.samples, -5);
  assert_true(o.ratio == 1000);
  assert_int_equal(o.cache, 1LL << 30);
  assert_int_equal(o.endpoints.n, 2);
  assert_string_equal(o.endpoints.v[0], "a:1");
  assert_string_equal(o.endpoints.v[1], "b:2");
  /* Given values replace the default of a repeatable flag. */
  assert_int_equal(o.labels.n, 2);
  assert_string_equal(o.labels.v[0], "r1");
  assert_string_equal(o.labels.v[1], "r2");
  assert_int_equal(rest.n, 5);
  assert_string_equal(rest.v[0], "pos1");
  assert_string_equal(rest.v[1], "pos2");
  assert_string_equal(rest.v[2], "-");
  assert_string_equal(rest.v[3], "--verbose");
  assert_string_equal(rest.v[4], "-x");
  orr_strings_free(&rest);
  /* Bool values spelled out, as Go's strconv.ParseBool reads them. */
  assert_int_equal(parse(NULL, "--verbose=true", "--query.partial-response=false", NULL), 0);
  assert_int_equal(o.verbose, 1);
  assert_int_equal(o.partial, 0);
  assert_int_equal(parse(NULL, "--verbose=T", "--query.partial-response=0", NULL), 0);
  assert_int_equal(o.verbose, 1);
  assert_int_equal(o.partial, 0);
  /* A bool flag does not take the next argument. */
  assert_int_equal(parse(&rest, "--verbose", "false", NULL), 0);
  assert_int_equal(o.verbose, 1);
  assert_int_equal(rest.n, 1);
  orr_strings_free(&rest);
  /* Many repeated values. */
  char *argv[202];
  argv[0] = "prog";
  for (int i = 1; i <= 200; i++) argv[i] = "--endpoint=x";
  argv[201] = NULL;
  assert_int_equal(orr_flags_parse(flags, 201, argv, NULL, err, sizeof(err)), 0);
  assert_int_equal(o.endpoints.n, 200);
  /* Parsing again starts from the defaults. */
  assert_int_equal(parse(NULL, NULL), 0);
  assert_int_equal(o.endpoints.n, 0);
  assert_int_equal(o.verbose, 0);
}

static void expect_error(const char *want, ...) {
  char *argv[8];
  int argc = 0;
  argv[argc++] = "prog";
  va_list ap;
  va_start(ap, want);
  for (char *a; (a = va_arg(ap, char *)) != NULL;) argv[argc++] = a;
  va_end(ap);
  orr_strings rest = {0};
  int rc = orr_flags_parse(flags, argc, argv, &rest, err, sizeof(err));
  assert_int_equal(rc, ORR_EINVAL);
  assert_string_equal(err, want);
  assert_null(strchr(err, '\n'));
  assert_int_equal(rest.n, 0); /* released on error */
  assert_null(rest.v);
}

static void test_errors(void **state) {
  (void)state;
  expect_error("unknown flag --bogus", "--bogus", NULL);
  expect_error("unknown flag --bogus", "--bogus=1", NULL);
  expect_error("unknown flag --query.timout (did you mean --query.timeout?)", "--query.timout=1s",
               NULL);
  expect_error("unknown flag --endpoints (did you mean --endpoint?)", "--endpoints", "x", NULL);
  expect_error("unknown flag -x", "-x", NULL);
  expect_error("unknown flag --no-endpoint", "--no-endpoint", NULL); /* not a bool */
  expect_error("invalid value \"abc\" for --query.timeout: not a duration",
               "--query.timeout=abc", NULL);
  expect_error("invalid value \"1000y\" for --query.timeout: duration out of range",
               "--query.timeout", "1000y", NULL);
  expect_error("invalid value \"1.5\" for --query.max-samples: not an integer",
               "--query.max-samples=1.5", NULL);
  expect_error("invalid value \"99999999999999999999\" for --query.max-samples: integer out of range",
               "--query.max-samples=99999999999999999999", NULL);
  expect_error("invalid value \"\" for --query.max-samples: not an integer",
               "--query.max-samples=", NULL);
  expect_error("invalid value \"x\" for --ratio: not a number", "--ratio=x", NULL);
  expect_error("invalid value \"1kB\" for --cache-size: not a byte size", "--cache-size=1kB", NULL);
  expect_error("invalid value \"yes\" for --verbose: not a boolean", "--verbose=yes", NULL);
  expect_error("missing value for --query.timeout", "--query.timeout", NULL);
  /* --help and -h ask the caller for help. */
  char *h1[] = {"prog", "--endpoint=a", "--help", NULL};
  assert_int_equal(orr_flags_parse(flags, 3, h1, NULL, err, sizeof(err)), ORR_EEOF);
  assert_int_equal(o.endpoints.n, 0);
  char *h2[] = {"prog", "-h", NULL};
  assert_int_equal(orr_flags_parse(flags, 2, h2, NULL, err, sizeof(err)), ORR_EEOF);
  /* A bad default is reported as such. */
  int64_t d;
  const orr_flag badf[] = {{"d", ORR_FLAG_DURATION, &d, "2x", "", NULL}, {NULL, 0, NULL, NULL, NULL, NULL}};
  char *a0[] = {"prog", NULL};
  assert_int_equal(orr_flags_parse(badf, 1, a0, NULL, err, sizeof(err)), ORR_EINVAL);
  assert_string_equal(err, "invalid default \"2x\" for --d: not a duration");
}

static void test_help(void **state) {
  (void)state;
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_non_null(f);
  orr_flags_help(f, "prog [<flags>]", flags);
  fclose(f);
  const char *want =
      "usage: prog [<flags>]\n"
      "\n"
      "Flags:\n"
      "  -h, --help                          Show context-sensitive help.\n"
      "      --http-address=\"0.0.0.0:10902\"  Listen host:port for HTTP endpoints.\n"
      "      --[no-]query.partial-response   Enable partial response. (default: enabled)\n"
      "      --[no-]verbose                  Say more.\n"
      "      --query.max-samples=50000000    Maximum samples per query.\n"
      "      --query.timeout=2m              Maximum query time.\n"
      "      --ratio=0.5                     A ratio.\n"
      "      --cache-size=250MB              Cache size.\n"
      "      --endpoint=<addr> ...           StoreAPI endpoint (repeatable).\n"
      "      --label=<string> ...            Replica label (repeatable). (default: replica)\n";
  assert_string_equal(text, want);
  free(text);
}

static void assert_bytes(const char *s, int64_t want) {
  int64_t v = -7;
  int rc = orr_parse_bytes(s, &v);
  if (rc) fail_msg("parse_bytes(%s) = %s", s, orr_err_name(rc));
  if (v != want) fail_msg("parse_bytes(%s) = %lld, want %lld", s, (long long)v, (long long)want);
}

static void test_bytes(void **state) {
  (void)state;
  assert_bytes("0", 0);
  assert_bytes("1024", 1024);
  assert_bytes("1B", 1);
  assert_bytes("1KB", 1024);
  assert_bytes("1KiB", 1024);
  assert_bytes("512MiB", 512LL << 20);
  assert_bytes("250MB", 250LL << 20);
  assert_bytes("1GB", 1LL << 30);
  assert_bytes("2GiB", 2LL << 30);
  assert_bytes("1TB", 1LL << 40);
  assert_bytes("1TiB", 1LL << 40);
  assert_bytes("1.5KB", 1536);
  assert_bytes("1GiB512MiB", (1LL << 30) + (512LL << 20));
  assert_bytes(".5KiB", 512);
  assert_bytes("7EiB", 7LL << 60);
  int64_t v;
  const char *bad[] = {"", "KB", "1kB", "1 KB", "1K", "1KiBB", "1xB", "abc", "1.5", "1KB5", "-", "."};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int rc = orr_parse_bytes(bad[i], &v);
    if (rc != ORR_EINVAL) fail_msg("\"%s\" gave %s", bad[i], orr_err_name(rc));
  }
  assert_int_equal(orr_parse_bytes("8EiB", &v), ORR_ERANGE);
  assert_int_equal(orr_parse_bytes("99999999999999999999", &v), ORR_ERANGE);
}

int test_flags_group(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_defaults, teardown),
      cmocka_unit_test_teardown(test_forms, teardown),
      cmocka_unit_test_teardown(test_errors, teardown),
      cmocka_unit_test(test_help),
      cmocka_unit_test(test_bytes),
  };
  return cmocka_run_group_tests_name("base_flags", tests, NULL, NULL);
}
