#!/usr/bin/env bash
# Installs what orrery needs to build, test and run, on Debian 12, as root.
# Idempotent: installs only what is missing. Used by the quickstart and the test command.
#   scripts/bootstrap.sh            build dependencies and test tools
#   scripts/bootstrap.sh --runtime  only what the quickstart needs to run
set -euo pipefail

BUILD_PKGS=(build-essential cmake pkg-config clang llvm libclang-rt-14-dev
  libuv1-dev libprotobuf-c-dev protobuf-c-compiler libsnappy-dev
  libcurl4-openssl-dev libssl-dev libnghttp2-dev libhttp-parser-dev libpcre2-dev
  libyaml-dev libjansson-dev zlib1g-dev libxxhash-dev libcmocka-dev libcrypt-dev)
TEST_PKGS=(prometheus wrk curl procps python3 memcached openssl python3-yaml
  debhelper lintian dpkg-dev systemd chromium victoria-metrics valgrind)

want=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}")
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from another repository that bundles npm (and conflicts with
# Debian's npm package): ask for Debian's node and npm only when the commands are absent.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# kubectl (deploy/ tests: `kubectl kustomize`): Debian's kubernetes-client,
# unless a kubectl is already installed (e.g. Google Cloud SDK's, whose file
# the Debian package would conflict with).
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm test peers (grpc-js, proto-loader, s3rver) live in tests/node/node_modules,
# pinned by tests/node/package-lock.json (committed). `npm ci` installs exactly
# the lock when node_modules is missing or stale: a package of the lock absent
# or at another version in npm's record of what it installed
# (node_modules/.package-lock.json).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for node_dir in "$here/tests/node" "$here/deploy/kubernetes/validate" "$here/web"; do
if [ -f "$node_dir/package-lock.json" ] && ! (cd "$node_dir" && node -e '
const fs = require("fs");
const want = JSON.parse(fs.readFileSync("package-lock.json")).packages;
const have = JSON.parse(fs.readFileSync("node_modules/.package-lock.json")).packages;
for (const [k, v] of Object.entries(want))
  if (k && !v.optional && (!have[k] || have[k].version !== v.version)) process.exit(1);
' 2>/dev/null); then
  echo "bootstrap: npm ci in ${node_dir#"$here"/}" >&2
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
done
