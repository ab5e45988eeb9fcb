#!/usr/bin/env bash
# daemon_sighup.sh ORRERY: SIGHUP (systemd's ExecReload, logrotate) reloads
# every daemon instead of killing it (it used to exit 129 with no log line).
# Gateway: "Reloading configuration file" then "Completed loading of
# configuration file"; an SD file that does not parse gives "Error reloading
# config" naming the file, and the gateway keeps its endpoints. Sidecar
# (still waiting for Prometheus): reloads and stays up. Both then stop
# cleanly on SIGTERM with exit 0.
set -uo pipefail
ORRERY=$1
WORK=$(mktemp -d /tmp/daemon-sighup-XXXXXX)
PIDS=
cleanup() {
  for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# wait_log FILE TEXT: polls FILE (up to 20 s) until it holds TEXT.
wait_log() {
  for _ in $(seq 1 400); do
    grep -qF -- "$2" "$1" && return 0
    sleep 0.05 # polling the daemon's log
  done
  return 1
}
http_port() { grep -o "msg=listening component=$2 address=127.0.0.1:[0-9]*" "$1" | sed 's/.*://'; }

# stop NAME PID LOG: SIGTERM must end it with exit 0 and "stopped".
stop() {
  kill -TERM "$2"
  local rc
  wait "$2"
  rc=$?
  [ "$rc" = 0 ] || fail "$1: exit $rc after SIGTERM (want 0)"
  grep -q 'msg=stopped' "$3" || fail "$1: no 'stopped' line after SIGTERM"
}

# ---- gateway
echo '[{"targets":["127.0.0.1:1"]}]' >"$WORK/sd.json"
"$ORRERY" gateway --http-address=127.0.0.1:0 --grpc-address=127.0.0.1:0 \
  --store.sd-files="$WORK/sd.json" >"$WORK/gw.log" 2>&1 &
GW=$!
PIDS="$PIDS $GW"
wait_log "$WORK/gw.log" 'msg=listening component=gateway' || fail "gateway did not start"
GWP=$(http_port "$WORK/gw.log" gateway)
kill -HUP "$GW"
if wait_log "$WORK/gw.log" 'msg="Completed loading of configuration file" component=gateway'; then
  grep -q 'msg="Reloading configuration file" component=gateway signal=SIGHUP' "$WORK/gw.log" ||
    fail "gateway: no 'Reloading configuration file' line"
  echo "ok: gateway reloads on SIGHUP"
else
  kill -0 "$GW" 2>/dev/null || { wait "$GW"; echo "gateway exited with $?"; }
  fail "gateway: no 'Completed loading of configuration file' after SIGHUP"
  cat "$WORK/gw.log"
fi
echo '[{"targets": [' >"$WORK/sd.json" # cut short, as by an editor mid-write
kill -HUP "$GW"
if wait_log "$WORK/gw.log" 'msg="Error reloading config" component=gateway'; then
  grep 'msg="Error reloading config"' "$WORK/gw.log" | grep -qF "$WORK/sd.json" ||
    fail "gateway: the reload error does not name the SD file"
  stores=$(curl -s "http://127.0.0.1:$GWP/api/v1/stores")
  echo "$stores" | grep -q '"name":"127.0.0.1:1"' ||
    fail "gateway: lost its endpoint after a failed reload: $stores"
  curl -sf -o /dev/null "http://127.0.0.1:$GWP/-/ready" || fail "gateway: not ready after a failed reload"
  metrics=$(curl -s "http://127.0.0.1:$GWP/metrics") # whole, then grep (grep -q would cut the pipe)
  grep -q '^orrery_config_last_reload_successful 0' <<<"$metrics" ||
    fail "gateway: orrery_config_last_reload_successful is not 0 after a failed reload"
  echo "ok: gateway keeps its endpoints when the SD file does not parse"
else
  fail "gateway: no 'Error reloading config' for a broken SD file"
fi
stop gateway "$GW" "$WORK/gw.log"

# ---- sidecar (Prometheus unreachable: it keeps waiting, as at any start)
"$ORRERY" sidecar --prometheus.url=http://127.0.0.1:1 --tsdb.path="$WORK/tsdb" \
  --http-address=127.0.0.1:0 --grpc-address=127.0.0.1:0 >"$WORK/sc.log" 2>&1 &
SC=$!
PIDS="$PIDS $SC"
wait_log "$WORK/sc.log" 'msg=listening component=sidecar' || fail "sidecar did not start"
kill -HUP "$SC"
kill -HUP "$SC" # twice: the second must not count as a second stop signal
if wait_log "$WORK/sc.log" 'msg="Completed loading of configuration file" component=sidecar'; then
  n=$(grep -c 'msg="Reloading configuration file" component=sidecar' "$WORK/sc.log")
  kill -0 "$SC" 2>/dev/null || fail "sidecar exited after SIGHUP"
  echo "ok: sidecar reloads on SIGHUP ($n reloads)"
else
  kill -0 "$SC" 2>/dev/null || { wait "$SC"; echo "sidecar exited with $?"; }
  fail "sidecar: no 'Completed loading of configuration file' after SIGHUP"
  cat "$WORK/sc.log"
fi
stop sidecar "$SC" "$WORK/sc.log"

[ "$fails" = 0 ] && echo "ok: all SIGHUP checks passed" || echo "$fails checks failed"
[ "$fails" = 0 ]
