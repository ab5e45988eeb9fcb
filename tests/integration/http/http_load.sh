#!/usr/bin/env bash
# http_load.sh: the HTTP server under real clients — daemon endpoints, wrk
# with 1000 keep-alive connections (zero errors, flat RSS), slowloris and big
# streams (http_checks.py), then SIGTERM drains and exits 0.
# Usage: http_load.sh PATH/TO/http_echo_server   (env DURATION=10)
set -u
server=$1
duration=${DURATION:-10}
here=$(cd "$(dirname "$0")" && pwd)
command -v wrk >/dev/null || { echo "SKIP: wrk not installed"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 77; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ]; then
  echo "SKIP: cannot raise the fd limit (ulimit -n $(ulimit -n))"; exit 77
fi

work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- server log (tail)"; tail -20 "$work/server.log"; exit 1; }

# Header timeout 2 s for the slowloris check; ready 5 s after start, so that
# the endpoint check sees /-/ready answer 503 first even when python starts
# slowly on a loaded machine. Under ASan, a small quarantine
# so that freed memory is reused and RSS means something.
ASAN_OPTIONS="quarantine_size_mb=1:thread_local_quarantine_size_kb=64:${ASAN_OPTIONS:-}" \
  "$server" 127.0.0.1:0 2000 5000 2>"$work/server.log" &
pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*msg=listening .*address=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/server.log")
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || fail "server exited"
  sleep 0.1
done
[ -n "$port" ] || fail "server did not log listening"
url=http://127.0.0.1:$port
echo "server pid $pid on port $port"

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }

python3 "$here/http_checks.py" endpoints "$port" || fail "endpoint checks"

run_wrk() { # seconds, output file
  wrk -t2 -c1000 -d"$1"s --timeout 10s "$url/echo?a=1&b=two" >"$2" 2>&1 || fail "wrk failed: $(cat "$2")"
}
check_wrk() {
  cat "$1"
  grep -q "Socket errors" "$1" && fail "wrk reported socket errors"
  grep -q "Non-2xx" "$1" && fail "wrk reported non-2xx responses"
  grep -q "Requests/sec" "$1" || fail "no wrk summary"
}

run_wrk 2 "$work/warm.txt"
check_wrk "$work/warm.txt"
rss_warm=$(rss)
run_wrk "$duration" "$work/main.txt"
check_wrk "$work/main.txt"
rss_after=$(rss)
rps=$(awk '/Requests\/sec/ {print $2}' "$work/main.txt")
echo "requests/s: $rps  rss after warm-up: ${rss_warm} kB, after ${duration}s run: ${rss_after} kB"
# memory stays flat: at most 16 MiB more than after the warm-up
[ "$rss_after" -le $((rss_warm + 16384)) ] || fail "RSS grew from ${rss_warm} kB to ${rss_after} kB"

python3 "$here/http_checks.py" slowloris "$port" || fail "slowloris"
python3 "$here/http_checks.py" stream "$port" "$pid" || fail "stream"

# SIGTERM: drain and exit 0
kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "server still running 10 s after SIGTERM"
wait "$pid"
status=$?
pid=
[ "$status" -eq 0 ] || fail "exit status $status after SIGTERM"
grep -q 'msg="received signal, shutting down"' "$work/server.log" || fail "no shutdown log line"
grep -q 'msg="shutdown hook"' "$work/server.log" || fail "shutdown hook did not run"
echo "PASS"
