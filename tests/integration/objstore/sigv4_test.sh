#!/usr/bin/env bash
# sigv4_test.sh ORRERY PYTHON3: the S3 client's requests as S3 checks them,
# against fake_s3.py on a free loopback port (needs only Python): every
# request's AWS Signature V4 and payload hash verified (put, get, ranged
# get, list, delete, a multipart upload, a key with characters that must be
# escaped), and the start-up check's line for refused credentials.
set -uo pipefail
ORRERY=$1 PYTHON=$2
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/objstore-sigv4-XXXXXX)
FAKEPID=
cleanup() {
  [ -n "$FAKEPID" ] && kill "$FAKEPID" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# Starts fake_s3.py in mode $1; sets FAKEPID and FAKEPORT once it listens.
start_fake() {
  rm -f "$WORK/port"
  "$PYTHON" "$HERE/fake_s3.py" "$1" "$WORK/port" 2>"$WORK/fake-$1.err" &
  FAKEPID=$!
  for _ in $(seq 1 400); do
    [ -s "$WORK/port" ] && { FAKEPORT=$(cat "$WORK/port"); return 0; }
    kill -0 "$FAKEPID" 2>/dev/null || break
    sleep 0.05 # until fake_s3.py has written its port
  done
  echo "FAIL: fake_s3.py $1 did not start: $(cat "$WORK/fake-$1.err")"
  exit 1
}
stop_fake() { kill "$FAKEPID"; wait "$FAKEPID" 2>/dev/null; FAKEPID=; }

printf 'hello, bucket' >"$WORK/small"
head -c $((12 * 1024 * 1024)) /dev/urandom >"$WORK/mid"

# ---- refused credentials: the start-up check's line
start_fake denied
printf 'type: S3\nconfig:\n  bucket: bkt\n  endpoint: 127.0.0.1:%s\n  insecure: true\n  access_key: S3RVER\n  secret_key: S3RVER\n' \
  "$FAKEPORT" >"$WORK/denied.yaml"
out=$("$ORRERY" tools bucket check --objstore.config-file="$WORK/denied.yaml" 2>&1)
[ "$out" = "objstore: access denied (InvalidAccessKeyId): The AWS Access Key Id you provided does not exist in our records." ] &&
  ok "check: bad credentials" || fail "check bad credentials: $out"
stop_fake

# ---- signatures as S3 checks them: fake_s3.py verify answers 403
# SignatureDoesNotMatch (and says why on stderr) to any request signed wrong
start_fake verify
printf 'type: S3\nconfig:\n  bucket: bkt\n  endpoint: 127.0.0.1:%s\n  insecure: true\n  access_key: AKID\n  secret_key: SECRET\n  region: eu-test-1\n' \
  "$FAKEPORT" >"$WORK/sig.yaml"
S=(--objstore.config-file="$WORK/sig.yaml")
key='sig/odd name+&=~%(ü).txt'
"$ORRERY" tools bucket put "${S[@]}" "$key" "$WORK/small" &&
  [ "$("$ORRERY" tools bucket get "${S[@]}" "$key")" = "hello, bucket" ] &&
  [ "$("$ORRERY" tools bucket get "${S[@]}" --offset 7 --length 6 "$key")" = "bucket" ] &&
  [ "$("$ORRERY" tools bucket ls "${S[@]}" --recursive sig)" = "$key" ] &&
  "$ORRERY" tools bucket rm "${S[@]}" "$key" && ok "SigV4 verified (put, get, range, list, rm)" ||
  fail "SigV4: $(cat "$WORK/fake-verify.err")"
printf '  part_size: 5242880\n' >>"$WORK/sig.yaml"
"$ORRERY" tools bucket put "${S[@]}" sig/mid "$WORK/mid" &&
  [ "$("$ORRERY" tools bucket get "${S[@]}" sig/mid | sha256sum)" = "$(sha256sum <"$WORK/mid")" ] &&
  ok "SigV4 verified (multipart, 3 parts)" || fail "SigV4 multipart: $(cat "$WORK/fake-verify.err")"
# the verifier itself refuses a wrong secret (so the checks above can fail)
sed 's/secret_key: SECRET/secret_key: WRONG/' "$WORK/sig.yaml" >"$WORK/wrong.yaml"
out=$("$ORRERY" tools bucket get --objstore.config-file="$WORK/wrong.yaml" sig/mid 2>&1 >/dev/null)
case $out in
  *SignatureDoesNotMatch*) ok "a wrong secret is refused" ;;
  *) fail "a wrong secret was not refused: $out" ;;
esac
stop_fake

if [ $fails -gt 0 ]; then
  echo "$fails check(s) failed"
  exit 1
fi
echo "all passed"
