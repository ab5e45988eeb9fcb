/* test_files.c: orr_remove_tree removes a tree, a lone file and nothing
 * at all without error, and removes a link without following it. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_base.h"

static void touch(const char *path) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("x", f);
  fclose(f);
}

static bool exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

static void test_remove_tree(void **state) {
  (void)state;
  char root[] = "/tmp/orr_files_XXXXXX";
  assert_non_null(mkdtemp(root));
  char p[256], outside[128], q[320];
  snprintf(outside, sizeof outside, "%s/outside", root);
  assert_int_equal(mkdir(outside, 0755), 0);
  snprintf(p, sizeof p, "%s/keep", outside);
  touch(p);
  /* tree/a/b/c with files on every level and a link to |outside| */
  snprintf(p, sizeof p, "%s/tree/a/b/c", root);
  char *slash = p + strlen(root) + 1;
  for (char *s = slash;; s++) {
    if (*s == '/' || !*s) {
      char c = *s;
      *s = 0;
      assert_int_equal(mkdir(p, 0755), 0);
      snprintf(q, sizeof q, "%s/f", p);
      touch(q);
      *s = c;
      if (!c) break;
    }
  }
  snprintf(q, sizeof q, "%s/tree/a/link", root);
  assert_int_equal(symlink(outside, q), 0);
  snprintf(p, sizeof p, "%s/tree", root);
  assert_int_equal(orr_remove_tree(p), 0);
  assert_false(exists(p));
  snprintf(p, sizeof p, "%s/keep", outside);
  assert_true(exists(p)); /* the link went, not what it pointed to */
  assert_int_equal(orr_remove_tree(p), 0); /* a lone file */
  assert_false(exists(p));
  snprintf(p, sizeof p, "%s/never", root);
  assert_int_equal(orr_remove_tree(p), 0); /* nothing there */
  assert_int_equal(orr_remove_tree(root), 0);
  assert_false(exists(root));
}

int test_files_group(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_remove_tree),
  };
  return cmocka_run_group_tests_name("files", tests, NULL, NULL);
}
