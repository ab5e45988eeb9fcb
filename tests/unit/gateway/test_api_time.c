/* test_api_time.c: the time parameters of the gateway's HTTP API as
 * Prometheus 2.42 reads them — any Go float is a timestamp (NaN, ±Inf,
 * 1e18), converted with Go's wrapping int64 arithmetic; each expected value
 * is what a real Prometheus 2.42 answered for /api/v1/query?time=X. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"
#include "gateway_int.h"

/* api.c's status handlers read these from the entry point (cmd/cli.c),
 * which a unit test does not link. */
const cli_common *cli_common_options(void) { return NULL; }
const cli_build_info *cli_build(void) { return NULL; }

static void test_query_time(void **state) {
  (void)state;
  static const struct {
    const char *in;
    int64_t ms;
  } ok[] = {
      {"1e18", -6930898827444},  {"-1e18", 6930898827444}, {"NaN", -9223372036854},
      {"nan", -9223372036854},   {"Inf", -9223372036854},  {"-Inf", -9223372036854},
      {"+Inf", -9223372036854},  {"1e19", 0},              {"9.3e15", 188263034714},
      {"1e10", -8446744073709},  {"1.5", 1500},            {"-1.5", -1500},
      {"1700000000.1234", 1700000000123},
      {"2023-11-14T22:13:20.5Z", 1700000000500},
  };
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    int64_t ms = 42;
    if (gw_api__parse_time(ok[i].in, &ms) != 0) fail_msg("time=%s refused", ok[i].in);
    if (ms != ok[i].ms) fail_msg("time=%s: %lld ms, want %lld", ok[i].in, (long long)ms,
                                 (long long)ok[i].ms);
  }
  /* Go's ParseFloat refuses these (1e400 is out of range), and they are not
   * RFC 3339 either: 400 there. */
  static const char *const bad[] = {"1e400", "", " 1", "abc", "1s", "nan(1)x"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int64_t ms;
    if (gw_api__parse_time(bad[i], &ms) == 0) fail_msg("time=\"%s\" accepted", bad[i]);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_query_time),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
