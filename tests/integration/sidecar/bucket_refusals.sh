#!/usr/bin/env bash
# bucket_refusals.sh ORRERY NODE_DIR: `orrery sidecar` with a bucket it cannot
# use stops at once with exactly one error line and exit 1 — a wrong S3
# endpoint, a bucket that does not exist (s3rver), refused credentials (the
# fake S3 of the objstore tests), a misspelt key — never a crash or a silent
# retry loop. The check runs before the sidecar waits for Prometheus, so no
# Prometheus is needed here.
set -uo pipefail
ORRERY=$1 NODE_DIR=$2
HERE=$(cd "$(dirname "$0")" && pwd)
FAKE_S3=$HERE/../objstore/fake_s3.py
S3RVER=$NODE_DIR/node_modules/.bin/s3rver
[ -e "$S3RVER" ] || { echo "FAIL: s3rver is not installed (scripts/bootstrap.sh installs it)"; exit 1; }

WORK=$(mktemp -d /tmp/sidecar-bucket-XXXXXX)
S3PID= FAKEPID=
cleanup() {
  for p in $FAKEPID $S3PID; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
fails=0
free_port() { # drawn below the kernel's ephemeral range (tests/integration/portpick.py)
  python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); from portpick import free_port; print(free_port())' \
    "$HERE/.."
}

# refuse NAME WANT YAML: the sidecar must exit 1 within 40 s with one stderr
# line, an error containing WANT.
refuse() {
  local name=$1 want=$2 yaml=$3 rc lines
  timeout 40 "$ORRERY" sidecar --prometheus.url=http://127.0.0.1:1 --tsdb.path="$WORK/tsdb" \
    --http-address=127.0.0.1:0 --grpc-address=127.0.0.1:0 --objstore.config="$yaml" \
    >"$WORK/out" 2>"$WORK/err"
  rc=$?
  lines=$(wc -l <"$WORK/err")
  if [ "$rc" = 1 ] && [ "$lines" = 1 ] && grep -q 'level=error' "$WORK/err" &&
    grep -qF -- "$want" "$WORK/err"; then
    echo "ok: $name: $(cat "$WORK/err")"
  else
    echo "FAIL: $name: exit $rc, $lines lines, want 1 line with '$want':"
    cat "$WORK/err"
    fails=$((fails + 1))
  fi
}

s3() { # endpoint bucket
  printf 'type: S3\nconfig:\n  bucket: %s\n  endpoint: %s\n  insecure: true\n  access_key: S3RVER\n  secret_key: S3RVER\n' "$2" "$1"
}

PORT=$(free_port)
mkdir -p "$WORK/data" "$WORK/tsdb"
node --openssl-legacy-provider "$S3RVER" -d "$WORK/data" -a 127.0.0.1 -p "$PORT" --silent \
  --configure-bucket bkt >"$WORK/s3rver.log" 2>&1 &
S3PID=$!
for _ in $(seq 1 200); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break
  kill -0 "$S3PID" 2>/dev/null || { echo "FAIL: s3rver did not start"; cat "$WORK/s3rver.log"; exit 1; }
  sleep 0.05 # polling s3rver's port until it answers
done
python3 "$FAKE_S3" denied "$WORK/fake.port" &
FAKEPID=$!
for _ in $(seq 1 200); do [ -s "$WORK/fake.port" ] && break; sleep 0.05; done

refuse "wrong endpoint" "cannot reach S3 endpoint" "$(s3 "127.0.0.1:1" bkt)"
refuse "wrong bucket" 'bucket \"nope\" does not exist (NoSuchBucket)' "$(s3 "127.0.0.1:$PORT" nope)"
refuse "wrong credentials" "access denied (InvalidAccessKeyId)" "$(s3 "127.0.0.1:$(cat "$WORK/fake.port")" bkt)"
refuse "misspelt key" 'unknown key \"bukcet\" in config (S3)' "$(printf 'type: S3\nconfig:\n  bukcet: b\n')"

[ "$fails" = 0 ] || exit 1
echo "bucket refusals: all passed"
