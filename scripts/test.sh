#!/usr/bin/env bash
# Builds orrery three ways and runs every test (the README's test command):
#   1. gcc:                 unit, integration and fuzz-seed replay tests
#   2. clang + ASan/UBSan:  the unit tests (and seed replays) again
#   3. clang + libFuzzer:   every fuzz target for ORRERY_FUZZ_SECONDS (default 10)
# Prints one closing line "total: N passed, N failed[, N skipped]" and exits
# non-zero on any failure. A skipped test (a missing tool) is never a pass.
# ORRERY_TEST_STAGES="gcc asan fuzz" picks stages; ORRERY_BUILD_ROOT moves the build trees.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/bootstrap.sh || { echo "bootstrap failed" >&2; exit 1; }

root="${ORRERY_BUILD_ROOT:-$here/build}"
stages="${ORRERY_TEST_STAGES:-gcc asan fuzz}"
jobs="$(nproc)"
passed=0
failed=0
skipped=0
status=0

# run_stage NAME CTEST_ARGS BUILD_TARGET -- CMAKE_ARGS...
run_stage() {
  local name="$1" ctest_args="$2" target="$3"
  shift 4
  local dir="$root/$name" log="$root/$name.ctest.log"
  echo "=== stage $name: configure and build" >&2
  mkdir -p "$dir"
  if ! cmake -S "$here" -B "$dir" "$@" >"$root/$name.configure.log" 2>&1; then
    cat "$root/$name.configure.log" >&2
    echo "stage $name: configure failed" >&2
    failed=$((failed + 1)); status=1; return
  fi
  if ! cmake --build "$dir" -j "$jobs" --target "$target" >"$root/$name.build.log" 2>&1; then
    grep -E "error|Error" "$root/$name.build.log" | head -40 >&2
    echo "stage $name: build failed (full log: $root/$name.build.log)" >&2
    failed=$((failed + 1)); status=1; return
  fi
  echo "=== stage $name: ctest $ctest_args" >&2
  # shellcheck disable=SC2086
  (cd "$dir" && ctest --output-on-failure --timeout 600 $ctest_args) 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local line
  line=$(grep -E "tests passed, [0-9]+ tests failed out of [0-9]+" "$log" | tail -1)
  if [ -n "$line" ]; then
    local total nfail
    total=$(echo "$line" | sed -E 's/.*out of ([0-9]+).*/\1/')
    nfail=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed.*/\1/')
    # ctest counts a skipped test (SKIP_RETURN_CODE) among the passed ones;
    # here it counts as skipped, never as a pass.
    local nskip
    nskip=$(grep -cE "^[[:space:]]*[0-9]+ - .*\(Skipped\)" "$log")
    passed=$((passed + total - nfail - nskip))
    failed=$((failed + nfail))
    skipped=$((skipped + nskip))
  elif grep -q "No tests were found" "$log"; then
    echo "stage $name: no tests found" >&2
    failed=$((failed + 1))
  fi
  [ "$rc" -eq 0 ] || status=1
}

mkdir -p "$root"
for s in $stages; do
  case "$s" in
  # Integration tests mostly wait on Prometheus, s3rver and timeouts: the
  # gcc stage runs more of them at once than there are cores.
  gcc) run_stage gcc "-j $((jobs + 1))" all -- -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo ;;
  asan) ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      run_stage asan "-j $jobs -L unit" all -- -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
      -DORRERY_SANITIZE=address,undefined ;;
  fuzz) run_stage fuzz "-j $jobs -L ^fuzz$" fuzz_targets -- -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DORRERY_FUZZ=ON -DORRERY_SANITIZE=address,undefined \
      -DORRERY_FUZZ_SECONDS="${ORRERY_FUZZ_SECONDS:-10}" ;;
  *) echo "unknown stage $s" >&2; exit 2 ;;
  esac
done

if [ "$skipped" -gt 0 ]; then
  echo "total: $passed passed, $failed failed, $skipped skipped"
else
  echo "total: $passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] || status=1
exit "$status"
