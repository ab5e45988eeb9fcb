#!/usr/bin/env bash
# The README's first command: builds orrery and brings up a local global view on
# this machine, everything on 127.0.0.1, data under .orrery/quickstart:
#   two regions (eu, us), each an HA pair of Prometheus 2.42 (external labels
#   region and replica=a|b) scraping itself and the gateway every 5 s, an
#   `orrery sidecar` beside each (StoreAPI on its own gRPC port, finished blocks
#   uploaded to the filesystem bucket .orrery/quickstart/bucket), one
#   `orrery store` serving every block of that bucket (the history: it stays
#   queryable after Prometheus's 15 days), two regions with no sidecar at all
#   (ap: a plain Prometheus the gateway reads through remote read,
#   --endpoint.prometheus; sa: a Prometheus the gateway only scrapes through
#   its /federate, --endpoint.federate), and one `orrery gateway` over all of
#   them, deduplicating along `replica`.
# Ports are chosen at run time (the gateway prefers 10902). Ctrl-C stops it all.
# With --tls every StoreAPI connection is mutual TLS: certificates made with
# openssl under .orrery/quickstart/certs (one CA), the sidecars and the store
# requiring client certificates, the gateway presenting one.
set -euo pipefail
tls=0
for a in "$@"; do
  case "$a" in
  --tls) tls=1 ;;
  *) echo "usage: scripts/quickstart.sh [--tls]" >&2; exit 2 ;;
  esac
done
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/bootstrap.sh

build="$here/build/quickstart"
mkdir -p "$here/.orrery"
if ! { cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release -DORRERY_WERROR=OFF &&
  cmake --build "$build" -j "$(nproc)" --target orrery; } >"$here/.orrery/quickstart-build.log" 2>&1; then
  tail -30 "$here/.orrery/quickstart-build.log" >&2
  echo "quickstart: build failed; full log: .orrery/quickstart-build.log" >&2
  exit 1
fi
orrery="$build/cmd/orrery"

data="$here/.orrery/quickstart"
mkdir -p "$data/bucket"
server_tls=() client_tls=()
if ((tls)); then
  bash "$here/tests/integration/tls/mkcerts.sh" "$data/certs" >"$data/certs.log" 2>&1
  c="$data/certs"
  server_tls=(--grpc-server-tls-cert="$c/server.crt" --grpc-server-tls-key="$c/server.key"
    --grpc-server-tls-client-ca="$c/ca.crt")
  client_tls=(--grpc-client-tls-secure --grpc-client-tls-ca="$c/ca.crt"
    --grpc-client-tls-cert="$c/client.crt" --grpc-client-tls-key="$c/client.key")
fi

# free_port PREF: sets $port to a TCP port nobody listens on and nobody here
# took, preferring PREF (no subshell, so $taken remembers).
taken=" "
free_port() {
  local p="$1"
  while [[ "$taken" == *" $p "* ]] || (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do
    p=$((p + 1))
  done
  taken+="$p "
  port=$p
}
# wait_ready URL NAME PID: polls a readiness endpoint while the process lives.
wait_ready() {
  local url="$1" name="$2" pid="$3"
  for _ in $(seq 1 600); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { echo "quickstart: $name exited; its log: $data/$name.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "quickstart: $name not ready after 120 s; its log: $data/$name.log" >&2
  exit 1
}

# Components run in their own sessions (setsid), so a Ctrl-C reaches only this
# script, which stops them in order: gateway, sidecars, then Prometheus.
pids=()
cleanup() {
  # A second Ctrl-C must not cut the stop short and leave components behind.
  trap "" INT TERM
  trap - EXIT
  echo
  echo "quickstart: stopping"
  # The gateway first, then the sidecars, then Prometheus (reverse start order).
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "quickstart: stopped (data kept in $data)"
}
trap 'cleanup; exit 0' INT TERM
trap cleanup EXIT

free_port 10902; gw_port=$port
free_port 10901; gw_grpc=$port
free_port 10905; store_grpc=$port
free_port 10906; store_http=$port
free_port 10907; blocks_http=$port
cat >"$data/bucket.yml" <<YML
type: FILESYSTEM
config:
  directory: $data/bucket
YML

replicas=(eu-a eu-b us-a us-b)
plain=(ap sa) # no sidecar: ap read by --endpoint.prometheus, sa by --endpoint.federate
declare -A prom_port side_grpc side_http
next_prom=9090
next_side=10911
for r in "${replicas[@]}"; do
  free_port $next_prom; prom_port[$r]=$port
  next_prom=$((port + 1))
  free_port $next_side; side_grpc[$r]=$port
  free_port $((port + 1)); side_http[$r]=$port
  next_side=$((port + 1))
done

for r in "${plain[@]}"; do
  free_port $next_prom; prom_port[$r]=$port
  next_prom=$((port + 1))
done

for r in "${replicas[@]}" "${plain[@]}"; do
  region=${r%-*} replica=${r#*-}
  ext="{region: $region, replica: $replica}"
  [[ "$r" == *-* ]] || ext="{region: $r}"
  mkdir -p "$data/prom-$r"
  cat >"$data/prom-$r.yml" <<YML
global:
  scrape_interval: 5s
  evaluation_interval: 5s
  external_labels: $ext
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ['127.0.0.1:${prom_port[$r]}']}]
  - job_name: orrery-gateway
    static_configs: [{targets: ['127.0.0.1:$gw_port']}]
YML
  # 2h blocks and no local compaction, as the sidecar requires for uploads.
  setsid prometheus --config.file="$data/prom-$r.yml" --storage.tsdb.path="$data/prom-$r" \
    --web.listen-address="127.0.0.1:${prom_port[$r]}" --storage.tsdb.retention.time=15d \
    --storage.tsdb.min-block-duration=2h --storage.tsdb.max-block-duration=2h \
    --web.enable-lifecycle >"$data/prom-$r.log" 2>&1 &
  pids+=($!)
done
i=0
for r in "${replicas[@]}" "${plain[@]}"; do
  wait_ready "http://127.0.0.1:${prom_port[$r]}/-/ready" "prom-$r" "${pids[$i]}"
  i=$((i + 1))
done

endpoints=()
for r in "${replicas[@]}"; do
  setsid "$orrery" sidecar --prometheus.url="http://127.0.0.1:${prom_port[$r]}" \
    --tsdb.path="$data/prom-$r" --objstore.config-file="$data/bucket.yml" \
    --grpc-address="127.0.0.1:${side_grpc[$r]}" --http-address="127.0.0.1:${side_http[$r]}" \
    ${server_tls[@]+"${server_tls[@]}"} >"$data/sidecar-$r.log" 2>&1 &
  pids+=($!)
  endpoints+=("--endpoint=127.0.0.1:${side_grpc[$r]}")
done
for r in "${replicas[@]}"; do
  wait_ready "http://127.0.0.1:${side_http[$r]}/-/ready" "sidecar-$r" "${pids[$i]}"
  i=$((i + 1))
done

# The store gateway over the same bucket (re-synced every 3 minutes; the
# sidecars upload each block as Prometheus finishes it).
setsid "$orrery" store --objstore.config-file="$data/bucket.yml" --data-dir="$data/store" \
  --grpc-address="127.0.0.1:$store_grpc" --http-address="127.0.0.1:$store_http" \
  ${server_tls[@]+"${server_tls[@]}"} >"$data/store.log" 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:$store_http/-/ready" store "${pids[$i]}"
i=$((i + 1))
endpoints+=("--endpoint=127.0.0.1:$store_grpc")
# The Blocks page over the same bucket (read-only; re-read every minute, so
# an uploaded block shows up soon after the sidecar ships it).
setsid "$orrery" tools bucket web --objstore.config-file="$data/bucket.yml" \
  --http-address="127.0.0.1:$blocks_http" --refresh=1m --label=region \
  >"$data/bucket-web.log" 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:$blocks_http/-/ready" bucket-web "${pids[$i]}"
i=$((i + 1))
# The regions without a sidecar: the gateway reads prom-ap itself (remote
# read; its external labels from its configuration) and scrapes prom-sa's
# /federate every 5 s (region=sa given on the flag).
endpoints+=("--endpoint.prometheus=http://127.0.0.1:${prom_port[ap]}")
endpoints+=("--endpoint.federate=http://127.0.0.1:${prom_port[sa]}/federate?match[]={job!=\"\"};region=sa"
  --federate.interval=5s)

setsid "$orrery" gateway --http-address="127.0.0.1:$gw_port" --grpc-address="127.0.0.1:$gw_grpc" \
  "${endpoints[@]}" ${client_tls[@]+"${client_tls[@]}"} --query.replica-label=replica \
  >"$data/gateway.log" 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:$gw_port/-/ready" gateway "${pids[$i]}"

gw="http://127.0.0.1:$gw_port"
cat <<MSG

orrery quickstart is up (logs and data in $data)$( ((tls)) && echo ", StoreAPI over mutual TLS (certificates in $data/certs)"):
  gateway      $gw   (Prometheus HTTP API, /federate; StoreAPI on 127.0.0.1:$gw_grpc)
MSG
for r in "${replicas[@]}"; do
  printf '  %-12s http://127.0.0.1:%s   (sidecar StoreAPI 127.0.0.1:%s)\n' "prom $r" "${prom_port[$r]}" "${side_grpc[$r]}"
done
printf '  %-12s http://127.0.0.1:%s   (no sidecar: read by the gateway through remote read)\n' "prom ap" "${prom_port[ap]}"
printf '  %-12s http://127.0.0.1:%s   (no sidecar: the gateway scrapes its /federate)\n' "prom sa" "${prom_port[sa]}"
cat <<MSG
  store        http://127.0.0.1:$store_http   (StoreAPI 127.0.0.1:$store_grpc: every block in the bucket)
  bucket       $data/bucket (blocks appear as Prometheus finishes them, every 2 h)
  blocks       http://127.0.0.1:$blocks_http/blocks   (the bucket's blocks on a timeline: orrery tools bucket web)

Point Grafana's Prometheus data source at $gw, or try (give the first scrapes ~10 s;
each Prometheus scrapes itself and the gateway, so up counts 3 targets in eu and us
after dedup, 2 in ap and sa):
  curl -s $gw/api/v1/query --data-urlencode 'query=sum by (region) (up)'
  curl -s $gw/api/v1/query --data-urlencode 'query=sum by (region) (rate(prometheus_http_requests_total[1m]))'
  curl -s $gw/api/v1/query --data-urlencode 'query=up{job="prometheus"}' --data-urlencode dedup=false
  curl -s -G $gw/federate --data-urlencode 'match[]={job="orrery-gateway"}'
  (and $gw/api/v1/stores: the four sidecars, the store, the prometheus and the federate
  source with their external labels)
Last week's data, from the bucket through the store (once blocks were uploaded):
  curl -s $gw/api/v1/query_range --data-urlencode 'query=sum by (region) (rate(prometheus_http_requests_total[1h]))' \\
    --data-urlencode "start=\$(date -d '7 days ago' +%s)" --data-urlencode "end=\$(date +%s)" --data-urlencode step=1h
Ctrl-C stops everything.
MSG
wait -n "${pids[@]}" || true
echo "quickstart: a component exited; see the logs in $data" >&2
exit 1
