#!/usr/bin/env bash
# The kill loops at length: the real manager SIGKILLed during 100 bursts of submissions
# and a real agent SIGKILLed under running sessions 100 times (the meson test
# `kill-loops`, which runs 10 of each). Its last line is "soak: PASS ..." or "soak: FAIL ...".
#   BAI_KILL_LOOPS   loops of each kind (100)
#   BAI_KILL_SEED    replays the loops of a seed that an earlier run printed
#   BAI_BUILD_DIR    the meson build dir (build)
set -uo pipefail
cd "$(dirname "$0")/.."

builddir=${BAI_BUILD_DIR:-build}
export BAI_KILL_LOOPS=${BAI_KILL_LOOPS:-100}

if [ ! -f "$builddir/build.ninja" ]; then
  meson setup "$builddir" >/dev/null || { echo "soak: FAIL (meson setup)"; exit 1; }
fi
started=$(date +%s)
# No time limit: 100 loops take minutes. meson builds what the test needs first.
meson test -C "$builddir" --timeout-multiplier 0 --verbose kill-loops
status=$?
elapsed=$(($(date +%s) - started))
log="$builddir/meson-logs/testlog.txt"
grep -E '^kill loops: seed|^(manager|agent) kill loops:|^  [0-9]+ x|^kill loops failed' "$log"
if [ "$status" -eq 0 ]; then
  echo "soak: PASS, $BAI_KILL_LOOPS loops of each kind in ${elapsed} s"
else
  echo "soak: FAIL after ${elapsed} s (the seeds above replay it with BAI_KILL_SEED; the log: $log)"
fi
exit "$status"
