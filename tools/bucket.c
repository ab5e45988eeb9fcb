/* bucket.c: `orrery tools bucket ls|put|get|rm|check|inspect|mark` — a
 * small CLI over the configured bucket (filesystem or S3), for users and
 * tests — and `tools bucket web`, the blocks page as a daemon of its own
 * (Thanos's `tools bucket web`; the page is compact/web.c's). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "compact.h"
#include "daemon.h"
#include "objstore.h"
#include "web.h"
#include "tools.h"

static struct {
  const char *objstore_file, *objstore;
  int recursive;
  int64_t offset, length;
  const char *id, *marker, *details;
  int64_t refresh_ms, timeout_ms;
  const char *label, *route_prefix, *external_prefix;
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
static const orr_flag web_flags[] = {
    CLI_OBJSTORE_FLAGS(&opt.objstore_file, &opt.objstore),
    {"refresh", ORR_FLAG_DURATION, &opt.refresh_ms, "30m",
     "Refresh interval to download metadata from remote storage.", NULL},
    {"timeout", ORR_FLAG_DURATION, &opt.timeout_ms, "5m",
     "Timeout to download metadata from remote storage.", NULL},
    {"label", ORR_FLAG_STRING, &opt.label, "", "External block label to use as group title.",
     "<label>"},
    {"web.route-prefix", ORR_FLAG_STRING, &opt.route_prefix, "",
     "Prefix for API and UI endpoints (\"/orrery\": /orrery/blocks).", "<path>"},
    {"web.external-prefix", ORR_FLAG_STRING, &opt.external_prefix, "",
     "Path prefix a reverse proxy in front adds (and strips): redirects of the page go there. "
     "Defaults to --web.route-prefix.", "<path>"},
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

/* The blocks page (compact/web.c) on a daemon of its own: /blocks,
 * /api/v1/blocks, /metrics and the probes; ready once the bucket was read. */
static int run_web(int argc, char **argv) {
  (void)argc;
  if (compact_web_check_prefixes(argv[0], opt.route_prefix, opt.external_prefix)) return 2;
  if (opt.refresh_ms <= 0 || opt.timeout_ms <= 0) {
    fprintf(stderr, "%s: --refresh and --timeout must be above 0\n", argv[0]);
    return 2;
  }
  objstore_bucket *b = open_bucket(argv[0]);
  if (!b) return 1;
  char err[1024] = "";
  int rc = objstore_check(b, err, sizeof err);
  if (rc) {
    fprintf(stderr, "%s: %s\n", argv[0], *err ? err : orr_strerror(rc));
    objstore_close(b);
    return 1;
  }
  const cli_common *c = cli_common_options();
  daemon_config dc = {"bucket web", c->http_address, c->http_grace_period_ms, NULL};
  daemon_ctx *d = NULL;
  compact_web *w = NULL;
  int status = 1;
  if ((rc = daemon_new(&dc, &d)) == 0) {
    compact_web_config wc = {b, opt.label, opt.refresh_ms, opt.timeout_ms, opt.route_prefix,
                             opt.external_prefix, true, orr_registry_default()};
    rc = compact_web_start(d, &wc, &w);
  }
  if (rc) orr_log_error("cannot serve the blocks page", "err", orr_strerror(rc), NULL);
  else status = daemon_run(d);
  compact_web_free(w);
  daemon_free(d);
  objstore_close(b);
  return status;
}

static const cli_command bucket_web = {
    "web", "Web interface for the bucket's blocks (/blocks): a timeline grouped by external "
    "labels, marks, sizes, meta.json.",
    NULL, CLI_LOG | CLI_HTTP, web_flags, run_web, NULL,
};
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
                                                 &bucket_check, &bucket_inspect, &bucket_mark,
                                                 &bucket_web, NULL};
const cli_command tools_cmd_bucket = {
    "bucket", "List, upload, download and delete objects in the bucket.", NULL, 0, NULL, NULL,
    bucket_cmds,
};
