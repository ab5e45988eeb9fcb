#!/usr/bin/env bash
# Builds orrery four ways, all with -Werror, and runs every test (the
# README's test command):
#   1. gcc:                 unit, integration and fuzz-seed replay tests
#   2. clang + ASan/UBSan:  the unit tests (and seed replays) and the
#                           integration tests labelled "sanitize", leak checks on
#   3. clang + libFuzzer:   every fuzz target for ORRERY_FUZZ_SECONDS (default 10)
#   4. gcc Release:         every benchmark in bench/ on a tiny data set (label
#                           "bench"): it must run and agree with Prometheus
# Each stage reports how many tests ran and fails when that is fewer than
# it registered or than its floor in scripts/test_floor (a lost test fails
# the run). Prints one closing line "total: N passed, N failed[, N skipped]"
# and exits non-zero on any failure. A skipped test is never a pass; with
# CI=true it is a failure.
# ORRERY_TEST_STAGES="gcc asan fuzz bench" picks stages; ORRERY_BUILD_ROOT
# moves the build trees; ORRERY_BOOTSTRAP=0 skips scripts/bootstrap.sh.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here" || exit 1
# ORRERY_BOOTSTRAP=0: the machine is prepared already (nothing is installed).
if [ "${ORRERY_BOOTSTRAP:-1}" != 0 ]; then
  bash scripts/bootstrap.sh || { echo "bootstrap failed" >&2; exit 1; }
fi

root="${ORRERY_BUILD_ROOT:-$here/build}"
stages="${ORRERY_TEST_STAGES:-gcc asan fuzz bench}"
jobs="$(nproc)"
passed=0
failed=0
skipped=0
status=0
summary=()

# floor STAGE: the committed minimum number of tests STAGE runs (0 if none).
floor() {
  awk -v s="$1" '!/^#/ && $1 == s {print $2; f = 1} END {if (!f) print 0}' "$here/scripts/test_floor"
}

# run_stage NAME CTEST_ARGS BUILD_TARGET -- CMAKE_ARGS...
run_stage() {
  local name="$1" ctest_args="$2" target="$3"
  shift 4
  local dir="$root/$name" log="$root/$name.ctest.log" t0=$SECONDS
  echo "=== stage $name: configure and build" >&2
  mkdir -p "$dir"
  if ! cmake -S "$here" -B "$dir" -DORRERY_WERROR=ON "$@" >"$root/$name.configure.log" 2>&1; then
    cat "$root/$name.configure.log" >&2
    echo "stage $name: configure failed" >&2
    failed=$((failed + 1)); status=1; summary+=("stage $name: configure failed"); return
  fi
  if ! cmake --build "$dir" -j "$jobs" --target "$target" >"$root/$name.build.log" 2>&1; then
    grep -E "error|Error" "$root/$name.build.log" | head -40 >&2
    echo "stage $name: build failed (full log: $root/$name.build.log)" >&2
    failed=$((failed + 1)); status=1; summary+=("stage $name: build failed"); return
  fi
  # What this stage should run: every test its label selection registers
  # (a missing tool registers a failing placeholder, so this does not shrink).
  local registered
  # shellcheck disable=SC2086
  registered=$(cd "$dir" && ctest -N $ctest_args | sed -nE 's/^Total Tests: ([0-9]+)$/\1/p')
  registered=${registered:-0}
  echo "=== stage $name: ctest $ctest_args ($registered tests)" >&2
  # shellcheck disable=SC2086
  (cd "$dir" && ctest --output-on-failure --timeout 600 $ctest_args) 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local line total=0 nfail=0 nskip=0
  line=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$log" | tail -1)
  if [ -n "$line" ]; then
    total=$(echo "$line" | sed -E 's/.*out of ([0-9]+).*/\1/')
    nfail=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed.*/\1/')
    # ctest counts a skipped test (SKIP_RETURN_CODE) among the passed ones;
    # here it counts as skipped, never as a pass.
    nskip=$(grep -cE "^[[:space:]]*[0-9]+ - .*\(Skipped\)" "$log")
    passed=$((passed + total - nfail - nskip))
    failed=$((failed + nfail))
    skipped=$((skipped + nskip))
  elif grep -q "No tests were found" "$log"; then
    echo "stage $name: no tests found" >&2
    failed=$((failed + 1))
  fi
  [ "$rc" -eq 0 ] || status=1
  # A placeholder for a missing tool fails without running anything: it is
  # counted as failed, and as not run.
  local ncannot
  ncannot=$(grep -oE "^[A-Za-z0-9_]+: cannot run: " "$log" | sort -u | wc -l)
  local ran=$((total - nskip - ncannot)) min
  min=$(floor "$name")
  local msg="stage $name: $ran tests run ($((total - nfail - nskip)) passed, $nfail failed, $nskip skipped, $ncannot could not run) of $registered registered, floor $min, $((SECONDS - t0)) s"
  echo "$msg" >&2
  summary+=("$msg")
  # Tests that could not run: a tool missing (the placeholder's message), a
  # test's own skip (exit 77), a cmocka skip.
  local cannot
  cannot=$(grep -hoE "^[A-Za-z0-9_]+: (cannot run: .*|skipped( under CI \(a failure\))?: .*)" "$log" | sort -u)
  if [ -n "$cannot" ]; then
    summary+=("stage $name: tests that could not run:")
    while IFS= read -r l; do summary+=("  $l"); done <<<"$cannot"
  fi
  if [ "$nskip" -gt 0 ]; then
    while IFS= read -r l; do summary+=("  skipped: $l"); done \
      < <(grep -E "^[[:space:]]*[0-9]+ - .*\(Skipped\)" "$log" | sed -E 's/^[[:space:]]*[0-9]+ - //')
    if [ "${CI:-}" = true ]; then
      summary+=("stage $name: FAIL: $nskip skipped under CI=true")
      status=1
    fi
  fi
  if [ "$ran" -lt "$registered" ] || [ "$registered" -lt "$min" ]; then
    summary+=("stage $name: FAIL: $ran tests ran; expected $registered registered and at least $min (scripts/test_floor)")
    status=1
  fi
}

mkdir -p "$root"
for s in $stages; do
  case "$s" in
  # Integration tests mostly wait on Prometheus, s3rver and timeouts: the
  # gcc stage runs more of them at once than there are cores.
  gcc) run_stage gcc "-j $((jobs + 1)) -LE ^bench$" all -- -DCMAKE_C_COMPILER=gcc \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo ;;
  # The sanitized integration tests wait on processes as much as they
  # compute: one more at once than there are cores, as in the gcc stage.
  asan) ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      run_stage asan "-j $((jobs + 1)) -L ^(unit|sanitize)$" all -- -DCMAKE_C_COMPILER=clang \
      -DCMAKE_BUILD_TYPE=Debug -DORRERY_SANITIZE=address,undefined ;;
  fuzz) run_stage fuzz "-j $jobs -L ^fuzz$" fuzz_targets -- -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DORRERY_FUZZ=ON -DORRERY_SANITIZE=address,undefined \
      -DORRERY_FUZZ_SECONDS="${ORRERY_FUZZ_SECONDS:-10}" ;;
  # The benchmarks as a user builds them (Release; this is also the suite's
  # check that a Release build is warning-free), one at a time.
  bench) run_stage bench "-L ^bench$" bench_targets -- -DCMAKE_C_COMPILER=gcc \
      -DCMAKE_BUILD_TYPE=Release ;;
  *) echo "unknown stage $s" >&2; exit 2 ;;
  esac
done

for l in "${summary[@]}"; do echo "$l"; done
if [ "$skipped" -gt 0 ]; then
  echo "total: $passed passed, $failed failed, $skipped skipped"
else
  echo "total: $passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] || status=1
exit "$status"
