/* flags.c: GNU long flags with Prometheus/Thanos semantics (kingpin-like):
 * "--name=value", "--name value", "--bool", "--no-bool", "--bool=false",
 * repeatable string flags, byte sizes as alecthomas/units parses them.
 *
 * Conventions: argv[0] is the program (or command) name and is skipped, as
 * with getopt. Defaults are parsed into every |dst| first (a flag without a
 * default gets its type's zero value), so calling orr_flags_parse twice gives
 * the same result. A repeatable flag's default is used only when the flag is
 * not given at all. On any error (and on --help) everything this call
 * allocated is released again, so callers only free after success. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

void orr_strings_free(orr_strings *s) {
  if (!s) return;
  free(s->v);
  s->v = NULL;
  s->n = 0;
}

static int strings_push(orr_strings *s, const char *v) {
  /* Grow at powers of two; the capacity is implied by n. */
  size_t n = s->n;
  if ((n & (n - 1)) == 0) {
    size_t cap = n ? n * 2 : 4;
    if (n == 0 || n >= 4) {
      const char **nv = realloc(s->v, cap * sizeof(*nv));
      if (!nv) return ORR_ENOMEM;
      s->v = nv;
    }
  }
  s->v[s->n++] = v;
  return 0;
}

/* ---------------------------------------------------------------- byte sizes */

/* One pass of alecthomas/units.ParseUnit over |s| with the units of
 * |suffix| ("iB": KiB…EiB, or "B": KB…EB), all powers of 1024. */
static int parse_unit(const char *s, const char *suffix, int64_t *out) {
  int neg = 0;
  double f = 0;
  if (*s == '-' || *s == '+') neg = *s++ == '-';
  if (strcmp(s, "0") == 0) {
    *out = 0;
    return 0;
  }
  if (!*s) return ORR_EINVAL;
  while (*s) {
    if (!(*s == '.' || isdigit((unsigned char)*s))) return ORR_EINVAL;
    double g = 0;
    int pre = 0, post = 0;
    int64_t x = 0;
    for (; isdigit((unsigned char)*s); s++, pre = 1) {
      if (x >= (INT64_MAX - 10) / 10) return ORR_EINVAL;
      x = x * 10 + (*s - '0');
    }
    g = (double)x;
    if (*s == '.') {
      s++;
      double scale = 1;
      x = 0;
      for (; isdigit((unsigned char)*s); s++, post = 1) {
        if (x >= (INT64_MAX - 10) / 10) return ORR_EINVAL;
        x = x * 10 + (*s - '0');
        scale *= 10;
      }
      g += (double)x / scale;
    }
    if (!pre && !post) return ORR_EINVAL;
    const char *u = s;
    while (*s && *s != '.' && !isdigit((unsigned char)*s)) s++;
    size_t ulen = (size_t)(s - u);
    static const char prefixes[] = "KMGTPE";
    double mult = 0;
    if (ulen == 1 && u[0] == 'B') {
      mult = 1;
    } else if (ulen == 1 + strlen(suffix) && strncmp(u + 1, suffix, ulen - 1) == 0) {
      const char *pp = strchr(prefixes, u[0]);
      if (pp && u[0]) mult = ldexp(1, 10 * (int)(pp - prefixes + 1));
    }
    if (mult == 0) return ORR_EINVAL;
    f += g * mult;
  }
  if (neg) f = -f;
  if (f < -0x1p63 || f >= 0x1p63) return ORR_ERANGE;
  *out = (int64_t)f;
  return 0;
}

int orr_parse_bytes(const char *s, int64_t *out) {
  /* As Thanos (units.ParseBase2Bytes): "KiB" and "KB" are both 1024 (the
   * SI spelling "kB" is refused); numbers may carry a fraction and be
   * chained ("1GiB512MiB"). Unlike it, a bare integer means bytes. */
  int rc = parse_unit(s, "iB", out);
  if (rc == ORR_EINVAL) rc = parse_unit(s, "B", out);
  if (rc != ORR_EINVAL) return rc;
  const char *p = s;
  if (*p == '-' || *p == '+') p++;
  if (!*p) return ORR_EINVAL;
  for (const char *q = p; *q; q++)
    if (!isdigit((unsigned char)*q)) return ORR_EINVAL;
  errno = 0;
  long long v = strtoll(s, NULL, 10);
  if (errno == ERANGE) return ORR_ERANGE;
  *out = v;
  return 0;
}

/* ---------------------------------------------------------------- values */

/* Go's strconv.ParseBool. */
static int parse_bool(const char *s, int *out) {
  static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
  static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
  for (size_t i = 0; i < 6; i++) {
    if (strcmp(s, t[i]) == 0) {
      *out = 1;
      return 0;
    }
    if (strcmp(s, f[i]) == 0) {
      *out = 0;
      return 0;
    }
  }
  return ORR_EINVAL;
}

static size_t nflags(const orr_flag *flags) {
  size_t n = 0;
  while (flags && flags[n].name) n++;
  return n;
}

/* Stores |v| into |f|'s destination; on a bad value writes the reason to
 * |why| and returns ORR_EINVAL / ORR_ERANGE (or ORR_ENOMEM). */
static int set_value(const orr_flag *f, const char *v, const char **why) {
  int rc;
  switch (f->type) {
  case ORR_FLAG_STRING:
  case ORR_FLAG_SECRET:
    *(const char **)f->dst = v;
    return 0;
  case ORR_FLAG_BOOL:
    if ((rc = parse_bool(v, (int *)f->dst)) != 0) *why = "not a boolean";
    return rc;
  case ORR_FLAG_INT: {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || isspace((unsigned char)*v)) {
      *why = "not an integer";
      return ORR_EINVAL;
    }
    if (errno == ERANGE) {
      *why = "integer out of range";
      return ORR_ERANGE;
    }
    *(int64_t *)f->dst = x;
    return 0;
  }
  case ORR_FLAG_DURATION:
    rc = orr_parse_duration(v, strlen(v), (int64_t *)f->dst);
    if (rc == ORR_ERANGE) *why = "duration out of range";
    else if (rc) *why = "not a duration";
    return rc;
  case ORR_FLAG_FLOAT: {
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end || isspace((unsigned char)*v)) {
      *why = "not a number";
      return ORR_EINVAL;
    }
    *(double *)f->dst = x;
    return 0;
  }
  case ORR_FLAG_BYTES:
    rc = orr_parse_bytes(v, (int64_t *)f->dst);
    if (rc == ORR_ERANGE) *why = "byte size out of range";
    else if (rc) *why = "not a byte size";
    return rc;
  case ORR_FLAG_STRINGS:
    if ((rc = strings_push((orr_strings *)f->dst, v)) != 0) *why = "out of memory";
    return rc;
  }
  *why = "unknown flag type";
  return ORR_EINVAL;
}

static void set_zero(const orr_flag *f) {
  switch (f->type) {
  case ORR_FLAG_STRING:
  case ORR_FLAG_SECRET: *(const char **)f->dst = NULL; break;
  case ORR_FLAG_BOOL: *(int *)f->dst = 0; break;
  case ORR_FLAG_INT:
  case ORR_FLAG_DURATION:
  case ORR_FLAG_BYTES: *(int64_t *)f->dst = 0; break;
  case ORR_FLAG_FLOAT: *(double *)f->dst = 0; break;
  case ORR_FLAG_STRINGS: orr_strings_free((orr_strings *)f->dst); break;
  }
}

void orr_flags_free(const orr_flag *flags) {
  for (size_t i = 0; flags && flags[i].name; i++)
    if (flags[i].type == ORR_FLAG_STRINGS) orr_strings_free((orr_strings *)flags[i].dst);
}

/* Edit distance, for "did you mean"; names are short. */
static size_t edit_distance(const char *a, size_t la, const char *b) {
  size_t lb = strlen(b);
  if (la > 64 || lb > 64) return (size_t)-1;
  size_t row[65];
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

static const orr_flag *closest_flag(const orr_flag *flags, const char *name, size_t len) {
  const orr_flag *best = NULL;
  size_t bestd = (size_t)-1;
  for (size_t i = 0; flags && flags[i].name; i++) {
    size_t d = edit_distance(name, len, flags[i].name);
    if (d < bestd) {
      bestd = d;
      best = &flags[i];
    }
  }
  if (best && (bestd <= 2 || bestd * 4 <= len)) return best;
  return NULL;
}

int orr_flags_parse(const orr_flag *flags, int argc, char **argv, orr_strings *rest, char *err,
                    size_t errlen) {
  size_t n = nflags(flags);
  unsigned char *given = calloc(n ? n : 1, 1);
  const char *why = NULL;
  int rc = 0;
  if (err && errlen) err[0] = 0;
  if (rest) memset(rest, 0, sizeof(*rest));
  if (!given) {
    snprintf(err, errlen, "out of memory");
    return ORR_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    set_zero(&flags[i]);
    if (flags[i].def && (rc = set_value(&flags[i], flags[i].def, &why)) != 0) {
      snprintf(err, errlen, "invalid default \"%s\" for --%s: %s", flags[i].def, flags[i].name,
               why);
      goto out;
    }
  }
  int only_args = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (only_args || a[0] != '-' || a[1] == 0) { /* positional ("-" too) */
      if (rest && (rc = strings_push(rest, a)) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
      }
      continue;
    }
    if (strcmp(a, "--") == 0) {
      only_args = 1;
      continue;
    }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      rc = ORR_EEOF;
      goto out;
    }
    if (a[1] != '-') {
      snprintf(err, errlen, "unknown flag %s", a);
      rc = ORR_EINVAL;
      goto out;
    }
    const char *name = a + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const orr_flag *f = NULL;
    int negated = 0;
    for (size_t k = 0; k < n && !f; k++)
      if (strlen(flags[k].name) == len && strncmp(flags[k].name, name, len) == 0) f = &flags[k];
    if (!f && !eq && len > 3 && strncmp(name, "no-", 3) == 0) {
      for (size_t k = 0; k < n && !f; k++)
        if (flags[k].type == ORR_FLAG_BOOL && strcmp(flags[k].name, name + 3) == 0) f = &flags[k];
      negated = f != NULL;
    }
    if (!f) {
      const orr_flag *near = closest_flag(flags, name, len);
      if (near)
        snprintf(err, errlen, "unknown flag --%.*s (did you mean --%s?)", (int)len, name,
                 near->name);
      else
        snprintf(err, errlen, "unknown flag --%.*s", (int)len, name);
      rc = ORR_EINVAL;
      goto out;
    }
    size_t idx = (size_t)(f - flags);
    const char *v;
    if (eq) {
      v = eq + 1;
    } else if (f->type == ORR_FLAG_BOOL) {
      v = negated ? "false" : "true";
    } else if (i + 1 < argc) {
      v = argv[++i];
    } else {
      snprintf(err, errlen, "missing value for --%s", f->name);
      rc = ORR_EINVAL;
      goto out;
    }
    if (f->type == ORR_FLAG_STRINGS && !given[idx]) set_zero(f); /* drop the default */
    given[idx] = 1;
    if ((rc = set_value(f, v, &why)) != 0) {
      if (rc == ORR_ENOMEM)
        snprintf(err, errlen, "out of memory");
      else
        snprintf(err, errlen, "invalid value \"%s\" for --%s: %s", v, f->name, why);
      rc = rc == ORR_ENOMEM ? rc : ORR_EINVAL;
      goto out;
    }
  }
out:
  free(given);
  if (rc) {
    orr_flags_free(flags);
    if (rest) orr_strings_free(rest);
  }
  return rc;
}

/* ---------------------------------------------------------------- help */

static void flag_column(const orr_flag *f, char *out, size_t outlen) {
  static const char *const type_ph[] = {"<string>", "", "<int>", "<duration>",
                                        "<float>",  "<bytes>", "<string>", "<string>"};
  if (f->type == ORR_FLAG_BOOL) {
    snprintf(out, outlen, "--[no-]%s", f->name);
  } else if (f->def && *f->def && f->type != ORR_FLAG_STRINGS) {
    /* As kingpin: the default stands in for the placeholder, quoted when
     * it is a string. */
    if (f->type == ORR_FLAG_STRING)
      snprintf(out, outlen, "--%s=\"%s\"", f->name, f->def);
    else
      snprintf(out, outlen, "--%s=%s", f->name, f->def);
  } else {
    snprintf(out, outlen, "--%s=%s%s", f->name, f->placeholder ? f->placeholder : type_ph[f->type],
             f->type == ORR_FLAG_STRINGS ? " ..." : "");
  }
}

/* Writes "  |help||extra|" wrapped at word boundaries so that lines stay
 * within HELP_WIDTH columns; continuation lines start at column |col|. */
#define HELP_WIDTH 100
static void help_text(FILE *out, size_t col, const char *help, const char *extra) {
  char text[1024];
  snprintf(text, sizeof(text), "%s%s", help, extra);
  size_t room = col + 20 < HELP_WIDTH ? HELP_WIDTH - col : 20;
  const char *p = text;
  fputs("  ", out);
  while (strlen(p) > room) {
    const char *cut = p + room;
    while (cut > p && *cut != ' ') cut--;
    if (cut == p) { /* one long word: break after it */
      cut = p + room;
      while (*cut && *cut != ' ') cut++;
      if (!*cut) break;
    }
    fprintf(out, "%.*s\n%*s", (int)(cut - p), p, (int)col, "");
    p = cut + 1;
  }
  fprintf(out, "%s\n", p);
}

void orr_flags_help(FILE *out, const char *usage, const orr_flag *flags) {
  enum { MAXCOL = 44 };
  char col[256];
  size_t width = strlen("-h, --help");
  for (size_t i = 0; flags && flags[i].name; i++) {
    flag_column(&flags[i], col, sizeof(col));
    size_t w = strlen(col) + 4; /* "    " where short flags would go */
    if (w > width && w <= MAXCOL) width = w;
  }
  if (usage) fprintf(out, "usage: %s\n\n", usage);
  fprintf(out, "Flags:\n");
  fprintf(out, "  %-*s", (int)width, "-h, --help");
  help_text(out, width + 4, "Show context-sensitive help.", "");
  for (size_t i = 0; flags && flags[i].name; i++) {
    const orr_flag *f = &flags[i];
    flag_column(f, col, sizeof(col));
    char left[300];
    snprintf(left, sizeof(left), "    %s", col);
    const char *help = f->help ? f->help : "";
    char extra[160] = "";
    int on = 0;
    if (f->type == ORR_FLAG_BOOL && f->def && parse_bool(f->def, &on) == 0 && on) {
      snprintf(extra, sizeof(extra), " (default: enabled)");
    } else if (f->type == ORR_FLAG_STRINGS && f->def) {
      snprintf(extra, sizeof(extra), " (default: %s)", f->def);
    }
    if (strlen(left) > width) fprintf(out, "  %s\n  %-*s", left, (int)width, "");
    else fprintf(out, "  %-*s", (int)width, left);
    help_text(out, width + 4, help, extra);
  }
}
