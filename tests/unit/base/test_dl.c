/* test_dl.c: the loader of the libraries opened on first use (dl.c): the
 * functions it finds are the library's, the first use from many threads
 * loads once, and a missing library or function exits 1 with a line that
 * names the library and the loader's reason. */
#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_base.h"

static const char *const m_syms[] = {"cos", "sqrt"};

static void test_forwards(void **state) {
  (void)state;
  orr_dl_fn fns[2];
  orr_dl_lib lib = ORR_DL_LIB("libm.so.6", "libm", "install libc6", m_syms, fns);
  assert_int_equal(lib.n, 2);
  double (*sq)(double) = (double (*)(double))orr_dl_get(&lib, 1);
  assert_true(sq(6.25) == 2.5);
  double (*co)(double) = (double (*)(double))orr_dl_get(&lib, 0);
  assert_true(co(0) == 1);
  assert_true(atomic_load(&lib.loaded));
}

static orr_dl_lib racing;
static orr_dl_fn racing_fns[2];

static void *race(void *arg) {
  (void)arg;
  return (void *)(size_t)(orr_dl_get(&racing, 1) != NULL && orr_dl_get(&racing, 0) != NULL);
}

static void test_threads_load_once(void **state) {
  (void)state;
  racing = (orr_dl_lib)ORR_DL_LIB("libm.so.6", "libm", "install libc6", m_syms, racing_fns);
  pthread_t th[8];
  for (int i = 0; i < 8; i++) assert_int_equal(pthread_create(&th[i], NULL, race, NULL), 0);
  for (int i = 0; i < 8; i++) {
    void *ok;
    assert_int_equal(pthread_join(th[i], &ok), 0);
    assert_true(ok != NULL);
  }
  double (*sq)(double) = (double (*)(double))orr_dl_get(&racing, 1);
  assert_true(sq(9) == 3);
}

/* Runs orr_dl_get(|lib|, 0) in a child; returns its exit status (-1 if it
 * did not exit) and its stderr in |err|. */
static int child_load(orr_dl_lib *lib, char *err, size_t errlen) {
  int p[2];
  assert_int_equal(pipe(p), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(p[1], 2);
    close(p[0]);
    orr_dl_get(lib, 0);
    _exit(0);
  }
  close(p[1]);
  size_t n = 0;
  ssize_t r;
  while (n + 1 < errlen && (r = read(p[0], err + n, errlen - 1 - n)) > 0) n += (size_t)r;
  err[n] = 0;
  close(p[0]);
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_missing_library(void **state) {
  (void)state;
  static const char *const syms[] = {"f"};
  orr_dl_fn fns[1];
  orr_dl_lib lib =
      ORR_DL_LIB("liborrery-test-absent.so.9", "libabsent", "install it", syms, fns);
  char err[1024];
  assert_int_equal(child_load(&lib, err, sizeof err), 1);
  assert_true(strncmp(err, "orrery: cannot load libabsent (", 31) == 0);
  assert_non_null(strstr(err, "liborrery-test-absent.so.9"));
  size_t n = strlen(err);
  assert_true(n > 14);
  assert_string_equal(err + n - 14, "): install it\n");
}

static void test_missing_function(void **state) {
  (void)state;
  static const char *const syms[] = {"sqrt", "orr_test_no_such_function"};
  orr_dl_fn fns[2];
  orr_dl_lib lib = ORR_DL_LIB("libm.so.6", "libm", "install libc6", syms, fns);
  char err[1024];
  assert_int_equal(child_load(&lib, err, sizeof err), 1);
  assert_true(strncmp(err, "orrery: cannot load libm (", 26) == 0);
  assert_non_null(strstr(err, "orr_test_no_such_function"));
}

int test_dl_group(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_forwards),
      cmocka_unit_test(test_threads_load_once),
      cmocka_unit_test(test_missing_library),
      cmocka_unit_test(test_missing_function),
  };
  return cmocka_run_group_tests_name("dl", tests, NULL, NULL);
}
