/* cli.h: the orrery command line — the table of commands and subcommands,
 * the options shared by the daemons (parsed and applied before a command
 * runs), and the build information (for --version and /status/buildinfo). */
#ifndef ORR_CLI_H
#define ORR_CLI_H

#include "base.h"

/* Groups of shared flags a command takes. */
enum {
  CLI_LOG = 1u << 0,  /* --log.level, --log.format */
  CLI_HTTP = 1u << 1, /* --http-address, --http-grace-period, --http.config */
  CLI_GRPC = 1u << 2, /* --grpc-address, --grpc-grace-period */
};

/* The shared options, valid while the command runs. The logger has already
 * been set up from log_level/log_format (orr_log_setup) when run is called.
 * Fields of groups the command does not take are zero/NULL. */
typedef struct cli_common {
  orr_log_level log_level;
  orr_log_format log_format;
  const char *http_address;     /* "0.0.0.0:10902" */
  int64_t http_grace_period_ms; /* time to finish requests on shutdown */
  const char *http_config;      /* --http.config: web config file, "" for none */
  const char *grpc_address;     /* "0.0.0.0:10901" */
  int64_t grpc_grace_period_ms;
  int64_t grpc_write_timeout_ms; /* 0: never */
  /* Thanos's --grpc-server-tls-*: NULL/"" cert and key: plaintext */
  const char *grpc_tls_cert, *grpc_tls_key, *grpc_tls_client_ca, *grpc_tls_min_version;
} cli_common;

typedef struct cli_command cli_command;
struct cli_command {
  const char *name; /* "gateway", or "ls" under "tools block" */
  const char *help; /* one line */
  const char *args; /* positional arguments for the usage line ("<block-dir>"); NULL: none taken */
  unsigned shared;  /* CLI_LOG | CLI_HTTP | CLI_GRPC */
  const orr_flag *flags; /* the command's own flags, NULL-terminated; NULL: none */
  /* Runs the command after its flags were parsed into the flag table's
   * destinations. |argv[0]| is the command path ("orrery tools block ls"),
   * argv[1..argc-1] the positional arguments, argv[argc] NULL. The shared
   * options are cli_common_options(). Returns the process exit status. */
  int (*run)(int argc, char **argv);
  /* Subcommands, NULL-terminated; a command that has them has no run. */
  const cli_command *const *subcommands;
};

/* The commands, each defined in its component's <component>/cmd.c. */
extern const cli_command cli_cmd_sidecar;
extern const cli_command cli_cmd_store;
extern const cli_command cli_cmd_compact;
extern const cli_command cli_cmd_gateway;
extern const cli_command cli_cmd_tools;

/* Shared options of the running command (borrowed, static). */
const cli_common *cli_common_options(void);

/* Runs the orrery command line; returns the exit status: 0, 1 when the
 * command failed, 2 for a usage error (one line on stderr). */
int cli_main(int argc, char **argv);

/* Logs that |what| is not built yet and returns 1, for commands to come. */
int cli_not_implemented(const char *what);

/* Build information, as Prometheus's version package reports it. */
typedef struct cli_build_info {
  const char *version;  /* "0.1.0" */
  const char *revision; /* git commit at configure time, or "unknown" */
  const char *branch;   /* "main", or "unknown" */
  const char *build_user; /* user@host */
  const char *build_date; /* "20261125-11:25:57" */
  const char *compiler;   /* "gcc 12.2.0" */
  const char *platform;   /* "linux/amd64" */
} cli_build_info;
const cli_build_info *cli_build(void);

/* The bucket configuration flags, as Thanos names them; |file| and |inline_|
 * are const char * destinations. */
#define CLI_OBJSTORE_FLAGS(file, inline_)                                                         \
  {"objstore.config-file", ORR_FLAG_STRING, (file), NULL,                                       \
   "Path to the YAML file with the bucket configuration (type: FILESYSTEM or S3).", "<file-path>"}, \
  {"objstore.config", ORR_FLAG_SECRET, (inline_), NULL,                                         \
   "Alternative to --objstore.config-file: the YAML content itself.", "<content>"}

#endif
