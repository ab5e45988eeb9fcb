/* test_base.c: the lib/base unit test program; runs every group and fails
 * if any test in any group failed. */
#include "test_base.h"

int main(void) {
  int failed = 0;
  failed += test_mem_group();
  failed += test_log_group();
  failed += test_time_group();
  failed += test_float_group();
  failed += test_crc32c_group();
  failed += test_flags_group();
  failed += test_metrics_group();
  failed += test_dl_group();
  failed += test_files_group();
  return failed ? 1 : 0;
}
