#!/usr/bin/env bash
# Installs what orrery needs to build, test and run, on Debian 12, as root.
# Idempotent: installs only what is missing. Used by the quickstart and the test command.
#   scripts/bootstrap.sh            build dependencies and test tools
#   scripts/bootstrap.sh --runtime  only what the quickstart needs to run
set -euo pipefail

BUILD_PKGS=(build-essential cmake pkg-config clang llvm libclang-rt-14-dev
  libuv1-dev libprotobuf-c-dev protobuf-c-compiler libsnappy-dev
  libcurl4-openssl-dev libssl-dev libnghttp2-dev libhttp-parser-dev libpcre2-dev
  libyaml-dev libjansson-dev zlib1g-dev libxxhash-dev libcmocka-dev)
TEST_PKGS=(prometheus wrk curl procps python3 memcached)

want=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}")
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from another repository that bundles npm (and conflicts with
# Debian's npm package): ask for Debian's node and npm only when the commands are absent.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm test peers (grpc-js, proto-loader, s3rver) live in tests/node/node_modules.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -f "$here/tests/node/package.json" ] && { [ ! -d "$here/tests/node/node_modules/@grpc/grpc-js" ] ||
  [ ! -d "$here/tests/node/node_modules/s3rver" ]; }; then
  echo "bootstrap: npm install in tests/node" >&2
  (cd "$here/tests/node" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
