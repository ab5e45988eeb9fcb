/* files.c: file-system helpers the daemons, the tsdb library and the tests
 * share (removing a directory tree). */
#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base.h"

/* nftw's callback has no argument: the walk's failure is the thread's. */
static _Thread_local bool remove_failed;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  int rc = flag == FTW_DP ? rmdir(path) : unlink(path);
  if (rc != 0 && errno != ENOENT) remove_failed = true;
  return 0; /* go on: remove what can be removed */
}

int orr_remove_tree(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : ORR_EIO;
  remove_failed = false;
  if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) return ORR_EIO;
  return remove_failed ? ORR_EIO : 0;
}
