#!/usr/bin/env bash
# Runs one libFuzzer harness over its checked-in seeds and what earlier runs kept, then
# fuzzes for BAI_FUZZ_SECONDS (default 5). Fails on a crash, a sanitizer report, a leak,
# a broken property or an input that takes over 10 s; the input is kept under
# WORK/artifacts/ and named in the log.
#   run_fuzz.sh HARNESS SEEDS WORK [libFuzzer flags...]
set -euo pipefail
harness=$1 seeds=$2 work=$3
shift 3
seconds=${BAI_FUZZ_SECONDS:-5}
mkdir -p "$work/corpus" "$work/artifacts"
# New inputs go to WORK/corpus (the first folder); the seeds are only read.
exec "$harness" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -error_exitcode=1 -timeout_exitcode=1 \
  -artifact_prefix="$work/artifacts/" "$@" "$work/corpus" "$seeds"
