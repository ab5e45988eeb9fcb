#!/usr/bin/env bash
# The README's first command: builds orrery and brings up a local system on this
# machine, on a filesystem bucket under .orrery/quickstart. Ctrl-C stops it all.
#
# Today it starts what exists: a Prometheus 2.42 (external labels region=eu,
# replica=a) scraping itself and the orrery gateway, and the gateway's daemon
# endpoints. Sidecars, the bucket and PromQL through the gateway follow with
# their issues (see README "Status").
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/bootstrap.sh

build="$here/build/quickstart"
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release -DORRERY_WERROR=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target orrery >/dev/null
orrery="$build/src/orrery"

data="$here/.orrery/quickstart"
mkdir -p "$data/bucket" "$data/prom-eu-a"

# free_port: a TCP port nobody listens on, preferring $1.
free_port() {
  local p="$1"
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}
# wait_ready URL NAME PID: polls a readiness endpoint while the process lives.
wait_ready() {
  local url="$1" name="$2" pid="$3"
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { echo "quickstart: $name exited; its log: $data/$name.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "quickstart: $name not ready after 60 s; its log: $data/$name.log" >&2
  exit 1
}

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "quickstart: stopping"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "quickstart: stopped"
}
trap 'cleanup; exit 0' INT TERM
trap cleanup EXIT

gw_port=$(free_port 10902)
prom_port=$(free_port 9090)

cat >"$data/prom-eu-a.yml" <<YML
global:
  scrape_interval: 5s
  external_labels: {region: eu, replica: a}
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ['127.0.0.1:$prom_port']}]
  - job_name: orrery-gateway
    static_configs: [{targets: ['127.0.0.1:$gw_port']}]
YML

"$orrery" gateway --http-address="127.0.0.1:$gw_port" >"$data/gateway.log" 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:$gw_port/-/ready" gateway "${pids[-1]}"

prometheus --config.file="$data/prom-eu-a.yml" --storage.tsdb.path="$data/prom-eu-a" \
  --web.listen-address="127.0.0.1:$prom_port" --storage.tsdb.retention.time=100y \
  >"$data/prom-eu-a.log" 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:$prom_port/-/ready" prom-eu-a "${pids[-1]}"

cat <<MSG

orrery quickstart is up (logs and data in $data):
  gateway     http://127.0.0.1:$gw_port   (/metrics, /-/healthy, /-/ready, /api/v1/status/buildinfo)
  prometheus  http://127.0.0.1:$prom_port (region=eu, replica=a; scrapes itself and the gateway)

Try:
  curl -s http://127.0.0.1:$gw_port/api/v1/status/buildinfo
  curl -s http://127.0.0.1:$gw_port/metrics | head
  curl -s 'http://127.0.0.1:$prom_port/api/v1/query?query=up'

Coming with the next issues: sidecars shipping blocks to $data/bucket,
an HA pair per region, and PromQL through the gateway.
Ctrl-C stops everything.
MSG
wait -n "${pids[@]}" || true
echo "quickstart: a component exited; see the logs in $data" >&2
exit 1
