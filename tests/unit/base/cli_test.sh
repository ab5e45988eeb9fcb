#!/bin/sh
# cli_test.sh ORRERY: the orrery command line as a user meets it — exit
# statuses, one-line errors on stderr, help on stdout, --version.
ORRERY=${1:?usage: cli_test.sh path/to/orrery}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fails=0

fail() {
  echo "FAIL: $*" >&2
  fails=$((fails + 1))
}

# expect STATUS STDERR_LINES STDERR_SUBSTRING ARGS...: runs orrery ARGS and
# checks the exit status, the number of lines on stderr and (if not empty)
# that stderr contains STDERR_SUBSTRING.
expect() {
  want_rc=$1 want_lines=$2 want_err=$3
  shift 3
  timeout 20 "$ORRERY" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  lines=$(wc -l <"$tmp/err")
  [ "$rc" = "$want_rc" ] || fail "orrery $*: exit $rc, want $want_rc (stderr: $(cat "$tmp/err"))"
  [ "$lines" = "$want_lines" ] || fail "orrery $*: $lines stderr lines, want $want_lines: $(cat "$tmp/err")"
  if [ -n "$want_err" ] && ! grep -qF -- "$want_err" "$tmp/err"; then
    fail "orrery $*: stderr lacks '$want_err': $(cat "$tmp/err")"
  fi
}

expect 0 0 "" --version
grep -Eq '^orrery, version [0-9]+\.[0-9]+\.[0-9]+ \(branch: [^,]+, revision: ([0-9a-f]+|unknown)\)$' "$tmp/out" ||
  fail "--version first line: $(head -1 "$tmp/out")"
grep -q '^  platform: ' "$tmp/out" || fail "--version lacks the platform line"

expect 2 1 "unknown flag --bogus" gateway --bogus
expect 2 1 "did you mean --query.timeout?" gateway --query.timout=1s
expect 2 1 'invalid value "abc" for --query.timeout: not a duration' gateway --query.timeout=abc
expect 2 1 'invalid value "x" for --query.max-samples: not an integer' gateway --query.max-samples x
expect 2 1 'for --log.level' gateway --log.level=verbose
expect 2 1 'missing value for --endpoint' gateway --endpoint
expect 2 1 'unknown command "nosuch"' nosuch
expect 2 1 "expected a command" 
expect 2 1 "unknown flag --bogus" --bogus
expect 2 1 "expected a subcommand (block, query" tools
expect 2 1 'unknown command "nope"' tools block nope
expect 2 1 'unexpected argument "extra"' store extra
expect 2 1 "unknown flag --grpc-address" compact --grpc-address=:1

expect 0 0 "" --help
for c in sidecar store compact gateway "tools block ls" "tools query"; do
  grep -qF "  $c" "$tmp/out" || fail "--help does not list $c"
done

expect 0 0 "" gateway --help
for f in --query.replica-label --endpoint --query.timeout=2m --query.max-samples=50000000 \
  --query.lookback-delta=5m '--[no-]query.partial-response' --store.response-timeout \
  '--http-address="0.0.0.0:10902"' '--grpc-address="0.0.0.0:10901"' --http-grace-period=2m \
  --log.level --log.format; do
  grep -qF -- "$f" "$tmp/out" || fail "gateway --help lacks $f"
done
expect 0 0 "" sidecar -h
grep -qF -- '--prometheus.url="http://localhost:9090"' "$tmp/out" || fail "sidecar --help lacks --prometheus.url"
grep -qF -- '--objstore.config-file' "$tmp/out" || fail "sidecar --help lacks --objstore.config-file"
expect 0 0 "" help tools block
grep -qF -- 'tools block verify' "$tmp/out" || fail "help tools block lacks verify"
expect 0 0 "" tools block dump --help
grep -qF -- '<block-dir>' "$tmp/out" || fail "tools block dump --help lacks <block-dir>"

# A daemon that cannot listen says so in one log line and fails.
timeout 20 "$ORRERY" gateway --http-address=256.1.1.1:1 --grpc-address=127.0.0.1:0 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 1 ] || fail "gateway on a bad address: exit $rc, want 1"
grep -qF 'msg="cannot listen" component=gateway address=256.1.1.1:1' "$tmp/err" ||
  fail "gateway on a bad address: no 'cannot listen' line: $(cat "$tmp/err")"
# Commands still to be built say so in one log line and fail.
expect 1 1 '"level":"error"' store --log.format=json

if [ "$fails" -ne 0 ]; then
  echo "$fails check(s) failed" >&2
  exit 1
fi
echo "cli: all checks passed"
