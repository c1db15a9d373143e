#!/usr/bin/env bash
# The libFuzzer harnesses of tests/fuzz, in their own clang build folder (build-fuzz, or
# BAI_FUZZ_BUILD_DIR):
#   scripts/fuzz.sh NAME SECONDS [libFuzzer flags]  fuzzes one harness for longer, e.g.
#                                                   scripts/fuzz.sh protocol 600
#   scripts/fuzz.sh --build                         sets up and builds the folder only
#   scripts/fuzz.sh --list                          names the harnesses
# What a run finds is kept in build-fuzz/tests/fuzz/runs/NAME/ (corpus/, artifacts/); copy
# an input worth keeping into tests/fuzz/corpus/NAME/. scripts/test.sh runs every harness
# for a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzzdir=${BAI_FUZZ_BUILD_DIR:-build-fuzz}

build() {
  if [ ! -f "$fuzzdir/build.ninja" ]; then
    CC=clang CXX=clang++ meson setup "$fuzzdir" -Dfuzz=true >/dev/null
  fi
  ninja -C "$fuzzdir" "$@"
}

harnesses() { sed -n "/^fuzz_harnesses = \[/,/\]/p" tests/fuzz/meson.build | grep -o "'[a-z_]*'" | tr -d "'"; }

case "${1:-}" in
  --build) build ;;
  --list) harnesses ;;
  "" | -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  *)
    name=$1 seconds=${2:?usage: scripts/fuzz.sh NAME SECONDS}
    shift 2
    if ! harnesses | grep -qx "$name"; then
      echo "no harness '$name'; these exist: $(harnesses | tr '\n' ' ')" >&2
      exit 2
    fi
    build "tests/fuzz/${name}_fuzz"
    BAI_FUZZ_SECONDS=$seconds exec tests/fuzz/run_fuzz.sh "$fuzzdir/tests/fuzz/${name}_fuzz" \
      "tests/fuzz/corpus/$name" "$fuzzdir/tests/fuzz/runs/$name" "$@"
    ;;
esac
