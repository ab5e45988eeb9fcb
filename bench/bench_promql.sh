#!/usr/bin/env bash
# bench_promql.sh: times the query classes of bench_promql through our engine
# and through Prometheus 2.42 serving the same block, and prints the ratios
# (ours / Prometheus; < 1 means we are faster). Prometheus is timed with
# curl's time_total (HTTP and JSON included), ours inside the process
# (block reads and evaluation, no JSON); best of N repetitions each.
# Usage: bench/bench_promql.sh [BUILD_DIR] [SERIES] [HOURS] [REPS]
set -euo pipefail
BUILD=${1:-/work/main/build-engine}
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
END_S=$(python3 -c "print($END_MS/1000)")
START_S=$(python3 -c "print($END_MS/1000 - 3600)")

prom_time() { # $1 endpoint, rest: curl data args; prints best seconds
  local best=1e9 t
  curl -s -o /dev/null "http://127.0.0.1:$PORT/api/v1/$1" "${@:2}" # warm-up
  for _ in $(seq 1 "$REPS"); do
    t=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT/api/v1/$1" "${@:2}")
    best=$(python3 -c "print(min($best, $t))")
  done
  echo "$best"
}

OURS=$("$BENCH" --dir "$WORK/blocks" --hours "$HOURS" --reps "$REPS" --no-generate)
printf '%-20s %10s %10s %7s   %10s %10s %7s\n' class ours_inst prom_inst ratio ours_range prom_range ratio
"$BENCH" --hours "$HOURS" --list | grep '^Q ' | while IFS=$'\t' read -r head q; do
  cls=${head#Q }
  oi=$(echo "$OURS" | awk -v c="$cls" '$1 == c {print $2}')
  orr=$(echo "$OURS" | awk -v c="$cls" '$1 == c {print $3}')
  pi=$(prom_time query --data-urlencode "query=$q" --data-urlencode "time=$END_S")
  pr=$(prom_time query_range --data-urlencode "query=$q" --data-urlencode "start=$START_S" \
    --data-urlencode "end=$END_S" --data-urlencode "step=60")
  python3 - "$cls" "$oi" "$pi" "$orr" "$pr" <<'EOF'
import sys
c, oi, pi, orr, pr = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]) * 1000, float(sys.argv[4]), float(sys.argv[5]) * 1000
print(f"{c:<20} {oi:10.1f} {pi:10.1f} {oi/pi:7.2f}   {orr:10.1f} {pr:10.1f} {orr/pr:7.2f}")
EOF
done
