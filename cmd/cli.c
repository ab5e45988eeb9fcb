/* cli.c: dispatch of `orrery <command> [<subcommand>…] [<flags>] [<args>]`:
 * finds the command in the table, parses the shared and the command's own
 * flags, sets up logging and runs it. Usage errors are one line on stderr
 * and exit status 2; --help goes to stdout with status 0. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "daemon.h"

#ifndef ORRERY_REVISION
#define ORRERY_REVISION "unknown"
#endif
#ifndef ORRERY_BRANCH
#define ORRERY_BRANCH "unknown"
#endif
#ifndef ORRERY_BUILD_USER
#define ORRERY_BUILD_USER "unknown"
#endif
#ifndef ORRERY_BUILD_DATE
#define ORRERY_BUILD_DATE "unknown"
#endif

#if defined(__clang__)
#define CLI_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define CLI_COMPILER "gcc " __VERSION__
#else
#define CLI_COMPILER "cc"
#endif
#if defined(__x86_64__)
#define CLI_ARCH "amd64"
#elif defined(__aarch64__)
#define CLI_ARCH "arm64"
#elif defined(__i386__)
#define CLI_ARCH "386"
#else
#define CLI_ARCH "unknown"
#endif

static const cli_build_info build_info = {
    ORRERY_VERSION, ORRERY_REVISION, ORRERY_BRANCH, ORRERY_BUILD_USER,
    ORRERY_BUILD_DATE, CLI_COMPILER, "linux/" CLI_ARCH,
};

const cli_build_info *cli_build(void) { return &build_info; }

static const cli_command *const commands[] = {
    &cli_cmd_sidecar, &cli_cmd_store, &cli_cmd_compact, &cli_cmd_gateway, &cli_cmd_tools, NULL,
};

/* ---------------------------------------------------------------- shared flags */

static cli_common common;
static const char *log_level_s, *log_format_s;

const cli_common *cli_common_options(void) { return &common; }

static const orr_flag log_flags[] = {
    {"log.level", ORR_FLAG_STRING, &log_level_s, "info",
     "Only log messages with the given severity or above. One of: [debug, info, warn, error]",
     NULL},
    {"log.format", ORR_FLAG_STRING, &log_format_s, "logfmt",
     "Output format of log messages. One of: [logfmt, json]", NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

static const orr_flag http_flags[] = {
    {"http-address", ORR_FLAG_STRING, &common.http_address, "0.0.0.0:10902",
     "Listen host:port for HTTP endpoints.", NULL},
    {"http-grace-period", ORR_FLAG_DURATION, &common.http_grace_period_ms, "2m",
     "Time to wait after an interrupt received for HTTP Server.", NULL},
    {"http.config", ORR_FLAG_STRING, &common.http_config, "",
     "Path to the configuration file that can enable TLS or authentication for all HTTP "
     "endpoints (Prometheus's web configuration format; re-read on SIGHUP).",
     "<filename>"},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

static const orr_flag grpc_flags[] = {
    {"grpc-address", ORR_FLAG_STRING, &common.grpc_address, "0.0.0.0:10901",
     "Listen ip:port address for gRPC endpoints (StoreAPI). Make sure this address is routable "
     "from other components.",
     NULL},
    {"grpc-grace-period", ORR_FLAG_DURATION, &common.grpc_grace_period_ms, "2m",
     "Time to wait after an interrupt received for GRPC Server.", NULL},
    {"grpc-server-write-timeout", ORR_FLAG_DURATION, &common.grpc_write_timeout_ms, "1m",
     "A gRPC stream whose client takes none of its response for this long is reset, and a "
     "connection whose writes stall for this long is closed (0s: never).",
     NULL},
    {"grpc-server-tls-cert", ORR_FLAG_STRING, &common.grpc_tls_cert, "",
     "TLS Certificate for gRPC server, leave blank to disable TLS", NULL},
    {"grpc-server-tls-key", ORR_FLAG_STRING, &common.grpc_tls_key, "",
     "TLS Key for the gRPC server, leave blank to disable TLS", NULL},
    {"grpc-server-tls-client-ca", ORR_FLAG_STRING, &common.grpc_tls_client_ca, "",
     "TLS CA to verify clients against. If no client CA is specified, there is no client "
     "verification on server side. (tls.NoClientCert)",
     NULL},
    /* Thanos's default: TLS 1.3 */
    {"grpc-server-tls-min-version", ORR_FLAG_STRING, &common.grpc_tls_min_version, "1.3",
     "TLS supported minimum version for gRPC server. If no version is specified, it'll default "
     "to 1.3. Allowed values: [\"1.0\", \"1.1\", \"1.2\", \"1.3\"]",
     NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

static size_t count_flags(const orr_flag *f) {
  size_t n = 0;
  while (f && f[n].name) n++;
  return n;
}

/* The command's full flag table: shared groups first, then its own.
 * Caller frees with free(). */
static orr_flag *flag_table(const cli_command *c) {
  const orr_flag *groups[4] = {
      (c->shared & CLI_LOG) ? log_flags : NULL,
      (c->shared & CLI_HTTP) ? http_flags : NULL,
      (c->shared & CLI_GRPC) ? grpc_flags : NULL,
      c->flags,
  };
  size_t n = 0;
  for (int g = 0; g < 4; g++) n += count_flags(groups[g]);
  orr_flag *t = calloc(n + 1, sizeof(*t));
  if (!t) return NULL;
  n = 0;
  for (int g = 0; g < 4; g++)
    for (size_t i = 0; i < count_flags(groups[g]); i++) t[n++] = groups[g][i];
  return t;
}

/* ---------------------------------------------------------------- help */

/* Leaf commands under |cmds| as "path args", with their help; |width| is
 * the first column's width (0: just measure). Returns the widest path. */
static size_t list_commands(FILE *out, size_t width, const char *prefix,
                            const cli_command *const *cmds) {
  size_t widest = 0;
  for (size_t i = 0; cmds && cmds[i]; i++) {
    const cli_command *c = cmds[i];
    char path[160];
    snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? " " : "", c->name);
    size_t w;
    if (c->subcommands) {
      w = list_commands(out, width, path, c->subcommands);
    } else {
      char left[200];
      snprintf(left, sizeof(left), "%s%s%s", path, c->args ? " " : "", c->args ? c->args : "");
      w = strlen(left);
      if (width) fprintf(out, "  %-*s  %s\n", (int)width, left, c->help);
    }
    if (w > widest) widest = w;
  }
  return widest;
}

static void print_commands(FILE *out, const char *prefix, const cli_command *const *cmds) {
  size_t width = list_commands(out, 0, prefix, cmds);
  list_commands(out, width, prefix, cmds);
}

static void top_help(FILE *out) {
  fprintf(out,
          "usage: orrery [<flags>] <command> [<args> ...]\n"
          "\n"
          "A global view over many Prometheus servers, with long-term storage in a bucket.\n"
          "\n"
          "Flags:\n"
          "  -h, --help     Show context-sensitive help.\n"
          "      --version  Show application version.\n"
          "\n"
          "Commands:\n");
  print_commands(out, "", commands);
}

static void command_help(FILE *out, const char *path, const cli_command *c) {
  char usage[256];
  if (c->subcommands) {
    fprintf(out, "usage: %s <command> [<args> ...]\n\n%s\n\nFlags:\n", path, c->help);
    fprintf(out, "  -h, --help  Show context-sensitive help.\n\nSubcommands:\n");
    print_commands(out, path + strlen("orrery "), c->subcommands);
    return;
  }
  snprintf(usage, sizeof(usage), "%s [<flags>]%s%s\n\n%s", path, c->args ? " " : "",
           c->args ? c->args : "", c->help);
  orr_flag *t = flag_table(c);
  orr_flags_help(out, usage, t ? t : c->flags);
  free(t);
}

static void version(FILE *out) {
  const cli_build_info *b = cli_build();
  fprintf(out,
          "orrery, version %s (branch: %s, revision: %s)\n"
          "  build user:       %s\n"
          "  build date:       %s\n"
          "  compiler:         %s\n"
          "  platform:         %s\n",
          b->version, b->branch, b->revision, b->build_user, b->build_date, b->compiler,
          b->platform);
}

/* ---------------------------------------------------------------- dispatch */

static const cli_command *find(const cli_command *const *cmds, const char *name) {
  for (size_t i = 0; cmds && cmds[i]; i++)
    if (strcmp(cmds[i]->name, name) == 0) return cmds[i];
  return NULL;
}

static void names(char *out, size_t len, const cli_command *const *cmds) {
  size_t n = 0;
  out[0] = 0;
  for (size_t i = 0; cmds[i] && n < len; i++)
    n += (size_t)snprintf(out + n, len - n, "%s%s", i ? ", " : "", cmds[i]->name);
}

static int usage_error(const char *path, const char *msg) {
  fprintf(stderr, "%s: %s\n", path, msg);
  return 2;
}

int cli_not_implemented(const char *what) {
  orr_log_error("not implemented yet", "command", what, NULL);
  return 1;
}

int cli_main(int argc, char **argv) {
  char path[256] = "orrery", msg[512];
  const cli_command *const *level = commands;
  const cli_command *c = NULL;
  int i = 1;

  if (argc < 2) {
    names(msg, sizeof(msg), commands);
    fprintf(stderr, "orrery: expected a command (%s); try orrery --help\n", msg);
    return 2;
  }
  if (strcmp(argv[1], "--version") == 0) {
    version(stdout);
    return 0;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    top_help(stdout);
    return 0;
  }
  int help_cmd = strcmp(argv[1], "help") == 0; /* "orrery help gateway" */
  if (help_cmd) {
    i++;
    if (i >= argc) {
      top_help(stdout);
      return 0;
    }
  }
  /* Walk down the command tree. */
  for (;;) {
    const char *a = i < argc ? argv[i] : NULL;
    if (!a && help_cmd && c) {
      command_help(stdout, path, c);
      return 0;
    }
    if (!a) {
      names(msg, sizeof(msg), level);
      fprintf(stderr, "%s: expected a subcommand (%s); try %s --help\n", path, msg, path);
      return 2;
    }
    if (c && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
      command_help(stdout, path, c);
      return 0;
    }
    const cli_command *next = find(level, a);
    if (!next) {
      if (a[0] == '-')
        snprintf(msg, sizeof(msg), "unknown flag %s; try %s --help", a, path);
      else
        snprintf(msg, sizeof(msg), "unknown command \"%s\"; try %s --help", a, path);
      return usage_error(path, msg);
    }
    c = next;
    size_t pl = strlen(path);
    snprintf(path + pl, sizeof(path) - pl, " %s", c->name);
    if (!c->subcommands) break;
    level = c->subcommands;
    i++;
  }
  if (help_cmd) {
    command_help(stdout, path, c);
    return 0;
  }

  /* argv[i] is the command's name: orr_flags_parse skips it as argv[0]. */
  orr_flag *table = flag_table(c);
  orr_strings rest = {0};
  char **args = NULL;
  int status;
  if (!table) {
    fprintf(stderr, "%s: out of memory\n", path);
    return 1;
  }
  memset(&common, 0, sizeof(common));
  int rc = orr_flags_parse(table, argc - i, argv + i, &rest, msg, sizeof(msg));
  if (rc == ORR_EEOF) {
    command_help(stdout, path, c);
    status = 0;
    goto out;
  }
  if (rc) {
    status = rc == ORR_EINVAL ? usage_error(path, msg) : 1;
    goto out;
  }
  if (!c->args && rest.n > 0) {
    snprintf(msg, sizeof(msg), "unexpected argument \"%s\"", rest.v[0]);
    status = usage_error(path, msg);
    goto out;
  }
  if (c->shared & CLI_LOG) {
    if (orr_log_parse_level(log_level_s, &common.log_level) != 0) {
      snprintf(msg, sizeof(msg),
               "invalid value \"%s\" for --log.level: must be one of debug, info, warn, error",
               log_level_s);
      status = usage_error(path, msg);
      goto out;
    }
    if (orr_log_parse_format(log_format_s, &common.log_format) != 0) {
      snprintf(msg, sizeof(msg), "invalid value \"%s\" for --log.format: must be logfmt or json",
               log_format_s);
      status = usage_error(path, msg);
      goto out;
    }
  } else {
    common.log_level = ORR_LOG_INFO;
    common.log_format = ORR_LOG_LOGFMT;
  }
  orr_log_setup(common.log_level, common.log_format);

  args = calloc(rest.n + 2, sizeof(char *));
  if (!args) {
    status = 1;
    goto out;
  }
  args[0] = path;
  for (size_t k = 0; k < rest.n; k++) args[k + 1] = (char *)rest.v[k];
  /* A daemon's start-up checks (the sidecar's bucket) run before its loop
   * handles SIGHUP (cmd/daemon.c): a reload sent then must not kill it. */
  if (c->shared & CLI_HTTP) signal(SIGHUP, SIG_IGN);
  if ((c->shared & CLI_HTTP) && daemon_set_http_config_file(common.http_config) != 0) {
    status = 1;
    goto out;
  }
  status = c->run((int)rest.n + 1, args);
out:
  free(args);
  orr_strings_free(&rest);
  orr_flags_free(table);
  free(table);
  return status;
}
