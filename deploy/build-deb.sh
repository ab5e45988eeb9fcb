#!/usr/bin/env bash
# Builds the orrery .deb from a clean copy of a commit (default HEAD): `git
# archive` into a temporary directory, deploy/debian copied to debian/ at its
# root (where dpkg-buildpackage wants it), `dpkg-buildpackage -us -uc -b`,
# then lintian on the result. Needs debhelper and lintian (scripts/bootstrap.sh).
#   deploy/build-deb.sh [-o OUTDIR] [COMMIT]
# The .deb (and its -dbgsym, .buildinfo, .changes) land in OUTDIR (default
# build/deb). Exits non-zero when the build fails or lintian reports an error.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$here/build/deb"
if [ "${1:-}" = "-o" ]; then out="$2"; shift 2; fi
rev="${1:-HEAD}"
for t in dpkg-buildpackage dh lintian git; do
  command -v "$t" >/dev/null || { echo "build-deb: $t not found (scripts/bootstrap.sh installs it)" >&2; exit 1; }
done
work="$(mktemp -d)"
# On failure the tree is kept: after fixing debian/ there, `dpkg-buildpackage
# -us -uc -b -nc` in it resumes without compiling again.
ok=0
trap '[ "$ok" = 1 ] && rm -rf "$work"' EXIT
mkdir -p "$work/orrery" "$out"
git -C "$here" archive --format=tar "$rev" | tar -x -C "$work/orrery"
cp -r "$work/orrery/deploy/debian" "$work/orrery/debian"
(cd "$work/orrery" && DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=2}" \
  nice -n 10 dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1 || {
  tail -40 "$out/build.log" >&2
  echo "build-deb: dpkg-buildpackage failed; log: $out/build.log; tree kept: $work/orrery" >&2
  exit 1
}
rm -f "$out"/orrery_*.deb "$out"/orrery-dbgsym_*.deb
mv "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out"/
deb="$(ls "$out"/orrery_*.deb)"
echo "build-deb: $deb"
# lintian: errors fail the build; warnings are listed (deploy/README.md says why each is kept).
lintian --tag-display-limit 0 "$out"/*.changes | tee "$out/lintian.txt" || true
ok=1
if grep -q '^E: ' "$out/lintian.txt"; then
  echo "build-deb: lintian reports errors" >&2
  exit 1
fi
