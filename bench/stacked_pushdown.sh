#!/bin/sh
# stacked_pushdown.sh: stacked gateways (issue 16) — a global gateway over two
# regional gateways, each over a sidecar and a Prometheus 2.42 with its half
# of the series (external label region=eu|us). Asks
# sum by (region) (rate(http_requests_total[5m])) over a range of both
# global gateways, --query.mode=local (raw series cross from the regions)
# and --query.mode=distributed (the aggregation is pushed down through gRPC
# thanos.Query), and prints the bytes the global gateway received from the
# regions (orrery_gateway_endpoint_received_bytes_total, from /metrics) and
# their ratio, and the median wall time of each mode over N alternating
# rounds. Every answer is checked against a Prometheus over all the data
# (region as a plain label) and the modes against each other; a difference,
# or a bytes ratio under --min-ratio, makes it exit 1.
#
# Usage: bench/stacked_pushdown.sh [--orrery PATH] [--prometheus BIN] [--promtool BIN]
#          [--series N] [--minutes M] [--rounds N] [--min-ratio R]
# Defaults: build/rel/cmd/orrery, 100000 series in all, 20 minutes at 60 s,
# 5 rounds, ratio 50. The bench stage runs it on 40 series, 1 round.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
ORRERY=$ROOT/build/rel/cmd/orrery
PROMETHEUS=prometheus
PROMTOOL=promtool
SERIES=100000
MINUTES=20
ROUNDS=5
RATIO=50
while [ $# -gt 0 ]; do
  case $1 in
    --orrery) ORRERY=$2; shift 2 ;;
    --prometheus) PROMETHEUS=$2; shift 2 ;;
    --promtool) PROMTOOL=$2; shift 2 ;;
    --series) SERIES=$2; shift 2 ;;
    --minutes) MINUTES=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --min-ratio) RATIO=$2; shift 2 ;;
    *) echo "stacked_pushdown.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
echo "load: $(uptime)"
exec python3 "$ROOT/tests/integration/gateway/stacked_pushdown.py" --orrery "$ORRERY" \
  --prometheus "$PROMETHEUS" --promtool "$PROMTOOL" --series "$SERIES" --minutes "$MINUTES" \
  --bench "$ROUNDS" --min-ratio "$RATIO"
