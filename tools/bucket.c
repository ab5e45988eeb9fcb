/* bucket.c: `orrery tools bucket ls|put|get|rm|check` — a small CLI
 * over the configured bucket (filesystem or S3), for users and tests. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "compact.h"
#include "objstore.h"
#include "tools.h"

static struct {
  const char *objstore_file, *objstore;
  int recursive;
  int64_t offset, length;
  const char *id, *marker, *details;
} opt;

static const orr_flag ls_flags[] = {
    CLI_OBJSTORE_FLAGS(&opt.objstore_file, &opt.objstore),
    {"recursive", ORR_FLAG_BOOL, &opt.recursive, "false",
     "List every object below the directory instead of one level.", NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};
static const orr_flag get_flags[] = {
    CLI_OBJSTORE_FLAGS(&opt.objstore_file, &opt.objstore),
    {"offset", ORR_FLAG_INT, &opt.offset, "0", "First byte to read.", NULL},
    {"length", ORR_FLAG_INT, &opt.length, "0", "Bytes to read (0: to the end).", NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};
static const orr_flag mark_flags[] = {
    CLI_OBJSTORE_FLAGS(&opt.objstore_file, &opt.objstore),
    {"id", ORR_FLAG_STRING, &opt.id, NULL, "ULID of the block to mark.", "<ulid>"},
    {"marker", ORR_FLAG_STRING, &opt.marker, NULL,
     "Marker to put: deletion-mark.json or no-compact-mark.json.", "<marker>"},
    {"details", ORR_FLAG_STRING, &opt.details, "", "Human readable details put in the marker.",
     "<text>"},
    {NULL, 0, NULL, NULL, NULL, NULL},
};
static const orr_flag plain_flags[] = {
    CLI_OBJSTORE_FLAGS(&opt.objstore_file, &opt.objstore),
    {NULL, 0, NULL, NULL, NULL, NULL},
};

/* Opens the configured bucket or prints why not; returns NULL on failure. */
static objstore_bucket *open_bucket(const char *cmd) {
  objstore_config cfg;
  objstore_bucket *b = NULL;
  char err[1024];
  int rc = objstore_config_load(opt.objstore_file, opt.objstore, &cfg, err, sizeof err);
  if (rc == 0) {
    rc = objstore_open(&cfg, &b, err, sizeof err);
    objstore_config_free(&cfg);
  }
  if (rc) fprintf(stderr, "%s: %s\n", cmd, err);
  return b;
}

static int print_name(const char *name, void *arg) {
  (void)arg;
  return puts(name) < 0 ? ORR_EIO : 0;
}

static int run_ls(int argc, char **argv) {
  if (argc > 2) {
    fprintf(stderr, "%s: at most one directory\n", argv[0]);
    return 2;
  }
  objstore_bucket *b = open_bucket(argv[0]);
  if (!b) return 1;
  char err[1024] = "";
  int rc = objstore_iter(b, argc > 1 ? argv[1] : "", opt.recursive ? OBJSTORE_ITER_RECURSIVE : 0,
                         print_name, NULL, err, sizeof err);
  if (rc) fprintf(stderr, "%s: %s\n", argv[0], *err ? err : orr_strerror(rc));
  objstore_close(b);
  return rc ? 1 : 0;
}

static int run_put(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "%s: want <key> <file>\n", argv[0]);
    return 2;
  }
  objstore_bucket *b = open_bucket(argv[0]);
  if (!b) return 1;
  char err[1024] = "";
  int rc = objstore_put_file(b, argv[1], argv[2], err, sizeof err);
  if (rc) fprintf(stderr, "%s: %s\n", argv[0], *err ? err : orr_strerror(rc));
  objstore_close(b);
  return rc ? 1 : 0;
}

static int write_out(const char *data, size_t n, void *arg) {
  return fwrite(data, 1, n, (FILE *)arg) == n ? 0 : ORR_EIO;
}

static int run_get(int argc, char **argv) {
  if (argc != 2 && argc != 3) {
    fprintf(stderr, "%s: want <key> [<file>]\n", argv[0]);
    return 2;
  }
  if (opt.offset < 0 || opt.length < 0) {
    fprintf(stderr, "%s: --offset and --length must not be negative\n", argv[0]);
    return 2;
  }
  objstore_bucket *b = open_bucket(argv[0]);
  if (!b) return 1;
  FILE *f = argc == 3 && strcmp(argv[2], "-") != 0 ? fopen(argv[2], "wb") : stdout;
  int rc = 0;
  char err[1024] = "";
  if (!f) {
    fprintf(stderr, "%s: %s: %s\n", argv[0], argv[2], strerror(errno));
    rc = ORR_EIO;
  } else {
    rc = objstore_get_stream(b, argv[1], (uint64_t)opt.offset, (uint64_t)opt.length, write_out,
                             f, err, sizeof err);
    if (rc) fprintf(stderr, "%s: %s\n", argv[0], *err ? err : orr_strerror(rc));
    if (f != stdout && fclose(f) != 0 && rc == 0) {
      fprintf(stderr, "%s: %s: %s\n", argv[0], argv[2], strerror(errno));
      rc = ORR_EIO;
    }
  }
  objstore_close(b);
  if (rc == ORR_ENOTFOUND) return 3; /* scripts can tell a missing object */
  return rc ? 1 : 0;
}

static int run_rm(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "%s: want <key>...\n", argv[0]);
    return 2;
  }
  objstore_bucket *b = open_bucket(argv[0]);
  if (!b) return 1;
  int status = 0;
  for (int i = 1; i < argc; i++) {
    char err[1024] = "";
    int rc = objstore_delete(b, argv[i], err, sizeof err);
    if (rc) {
      fprintf(stderr, "%s: %s\n", argv[0], *err ? err : orr_strerror(rc));
      status = rc == ORR_ENOTFOUND && status == 0 ? 3 : 1;
    }
  }
  objstore_close(b);
  return status;
}

static int run_check(int argc, char **argv) {
  objstore_bucket *b = open_bucket(argv[0]);
  if (!b) return 1;
  char err[1024] = "";
  int rc = objstore_check(b, err, sizeof err);
  if (rc) fprintf(stderr, "%s\n", *err ? err : orr_strerror(rc));
  else printf("bucket %s (%s) is reachable\n", objstore_name(b), objstore_type_name(b));
  objstore_close(b);
  return rc ? 1 : 0;
}

static int run_inspect(int argc, char **argv) {
  (void)argc;
  objstore_bucket *b = open_bucket(argv[0]);
  if (!b) return 1;
  char err[1024] = "";
  int rc = compact_bucket_inspect(b, stdout, err, sizeof err);
  if (rc) fprintf(stderr, "%s: %s\n", argv[0], *err ? err : orr_strerror(rc));
  objstore_close(b);
  return rc ? 1 : 0;
}

static int run_mark(int argc, char **argv) {
  (void)argc;
  if (!opt.id || !opt.marker) {
    fprintf(stderr, "%s: --id and --marker are required\n", argv[0]);
    return 2;
  }
  objstore_bucket *b = open_bucket(argv[0]);
  if (!b) return 1;
  char err[1024] = "";
  int rc = compact_bucket_mark(b, opt.id, opt.marker, opt.details, err, sizeof err);
  if (rc) fprintf(stderr, "%s: %s\n", argv[0], *err ? err : orr_strerror(rc));
  objstore_close(b);
  return rc == ORR_EINVAL ? 2 : rc ? 1 : 0;
}

static const cli_command bucket_inspect = {
    "inspect",
    "Table of the bucket's blocks: ULID, time range, level, resolution, series, samples, size, "
    "marks, labels.",
    NULL, CLI_LOG, plain_flags, run_inspect, NULL,
};
static const cli_command bucket_mark = {
    "mark", "Put a deletion-mark.json or no-compact-mark.json on a block.", NULL, CLI_LOG,
    mark_flags, run_mark, NULL,
};
static const cli_command bucket_ls = {
    "ls", "List objects and directories (\"dir/\") in the bucket, in lexical order.", "[<dir>]",
    CLI_LOG, ls_flags, run_ls, NULL,
};
static const cli_command bucket_put = {
    "put", "Upload a file as an object (multipart above the part size on S3).", "<key> <file>",
    CLI_LOG, plain_flags, run_put, NULL,
};
static const cli_command bucket_get = {
    "get", "Download an object (or a byte range) to a file or stdout. Exit status 3: not found.",
    "<key> [<file>]", CLI_LOG, get_flags, run_get, NULL,
};
static const cli_command bucket_rm = {
    "rm", "Delete objects. Exit status 3: an object was not found.", "<key>...", CLI_LOG,
    plain_flags, run_rm, NULL,
};
static const cli_command bucket_check = {
    "check", "Check that the bucket is reachable and exists, as daemons do at start-up.", NULL,
    CLI_LOG, plain_flags, run_check, NULL,
};
static const cli_command *const bucket_cmds[] = {&bucket_ls, &bucket_put, &bucket_get, &bucket_rm,
                                                 &bucket_check, &bucket_inspect, &bucket_mark, NULL};
const cli_command tools_cmd_bucket = {
    "bucket", "List, upload, download and delete objects in the bucket.", NULL, 0, NULL, NULL,
    bucket_cmds,
};
