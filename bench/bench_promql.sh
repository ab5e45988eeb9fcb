#!/usr/bin/env bash
# bench_promql.sh: times the query classes of bench_promql through our engine
# and through Prometheus 2.42 serving the same block, and prints the ratios
# (ours / Prometheus; < 1 means we are faster). Prometheus is timed with
# curl's time_total (HTTP and JSON included), ours inside the process
# (block reads and evaluation, no JSON); best of N repetitions each.
# Each class's range answer is checked once: the same number of series from
# both, or the script reports the class and exits 1 after the table.
# Usage: bench/bench_promql.sh [BUILD_DIR] [SERIES] [HOURS] [REPS]
# Defaults: build/gcc, 100000 series, 3 h, 3 repetitions.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build/gcc}
SERIES=${2:-100000}
HOURS=${3:-3}
REPS=${4:-3}
BENCH=$BUILD/bench/bench_promql
WORK=$(mktemp -d /tmp/bench_promql.XXXXXX)
PROM_PID=
cleanup() {
  if [ -n "$PROM_PID" ]; then kill "$PROM_PID" 2>/dev/null || true; wait "$PROM_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BENCH" --dir "$WORK/blocks" --series "$SERIES" --hours "$HOURS" --generate-only
mkdir -p "$WORK/prom"
cp -r "$WORK/blocks"/* "$WORK/prom/"
echo 'global: {}' > "$WORK/prometheus.yml"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prom" \
  --storage.tsdb.retention.time=100y --web.listen-address="127.0.0.1:$PORT" \
  --query.max-samples=500000000 >"$WORK/prom.log" 2>&1 &
PROM_PID=$!
for _ in $(seq 1 300); do
  if curl -sf "http://127.0.0.1:$PORT/-/ready" >/dev/null; then break; fi
  sleep 0.2
done
curl -sf "http://127.0.0.1:$PORT/-/ready" >/dev/null || { echo "prometheus not ready"; cat "$WORK/prom.log"; exit 1; }

END_MS=$("$BENCH" --hours "$HOURS" --list | awk '/^END/ {print $2}')
# Arithmetic in awk: a python3 start per number costs seconds on a loaded
# machine (pyenv shims), which the smoke run in the test suite pays each time.
END_S=$(awk -v e="$END_MS" 'BEGIN {printf "%.3f", e / 1000}')
START_S=$(awk -v e="$END_MS" 'BEGIN {printf "%.3f", e / 1000 - 3600}')

prom_time() { # $1 endpoint, rest: curl data args; prints best seconds
  local best=1e9 t
  curl -s -o /dev/null "http://127.0.0.1:$PORT/api/v1/$1" "${@:2}" # warm-up
  for _ in $(seq 1 "$REPS"); do
    t=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT/api/v1/$1" "${@:2}")
    best=$(awk -v a="$best" -v b="$t" 'BEGIN {print (b + 0 < a + 0) ? b : a}')
  done
  echo "$best"
}

prom_series() { # the number of series of the range answer for query $1
  curl -sf "http://127.0.0.1:$PORT/api/v1/query_range" --data-urlencode "query=$1" \
    --data-urlencode "start=$START_S" --data-urlencode "end=$END_S" --data-urlencode "step=60" |
    grep -o '"metric":' | wc -l
}

OURS=$("$BENCH" --dir "$WORK/blocks" --hours "$HOURS" --reps "$REPS" --no-generate)
printf '%-20s %10s %10s %7s   %10s %10s %7s\n' class ours_inst prom_inst ratio ours_range prom_range ratio
"$BENCH" --hours "$HOURS" --list | grep '^Q ' | while IFS=$'\t' read -r head q; do
  cls=${head#Q }
  oi=$(echo "$OURS" | awk -v c="$cls" '$1 == c {print $2}')
  orr=$(echo "$OURS" | awk -v c="$cls" '$1 == c {print $3}')
  on=$(echo "$OURS" | awk -v c="$cls" '$1 == c {print $4}')
  pn=$(prom_series "$q")
  if [ "$on" != "$pn" ]; then
    echo "DIFF $cls: $on series here, $pn from Prometheus" >>"$WORK/diffs"
  fi
  pi=$(prom_time query --data-urlencode "query=$q" --data-urlencode "time=$END_S")
  pr=$(prom_time query_range --data-urlencode "query=$q" --data-urlencode "start=$START_S" \
    --data-urlencode "end=$END_S" --data-urlencode "step=60")
  awk -v c="$cls" -v oi="$oi" -v pi="$pi" -v orr="$orr" -v pr="$pr" 'BEGIN {
    pi *= 1000; pr *= 1000
    printf "%-20s %10.1f %10.1f %7.2f   %10.1f %10.1f %7.2f\n", c, oi, pi, oi / pi, orr, pr, orr / pr }'
done
if [ -s "$WORK/diffs" ]; then
  cat "$WORK/diffs" >&2
  exit 1
fi
