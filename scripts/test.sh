#!/usr/bin/env bash
# The one test command (README "Test", .ci/run): installs Debian packages, builds and
# runs every test and the benchmark smoke runs. The last line is "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

builddir=${BAI_BUILD_DIR:-build}

scripts/install-deps.sh || { echo "install-deps failed"; echo "0 passed, 1 failed"; exit 1; }

if [ -f "$builddir/build.ninja" ]; then
  meson setup --reconfigure "$builddir" >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
else
  meson setup "$builddir" || { echo "0 passed, 1 failed"; exit 1; }
fi
ninja -C "$builddir" || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }

rm -rf "$builddir/test-results"
# The container tests' engine (Podman's Docker API service on a private socket, with the
# test image); without one they skip, and the summary shows it.
engine_dir=$(mktemp -d /tmp/bai-engine.XXXXXX)
trap 'scripts/container-engine.sh stop "$engine_dir"' EXIT
if socket=$(scripts/container-engine.sh start "$engine_dir"); then
  export BAI_TEST_ENGINE_SOCKET=$socket BAI_TEST_IMAGE=localhost/bai-test/busybox:1
else
  echo "container engine did not start: container tests skip"
fi
meson test -C "$builddir" --num-processes "$(nproc)" --print-errorlogs

# The fuzzing build (clang, its own folder): each harness over its seeds, then a few
# seconds of fuzzing (BAI_FUZZ_SECONDS). A build that fails leaves no test log, which
# the summary counts as a failure.
fuzzdir=${BAI_FUZZ_BUILD_DIR:-build-fuzz}
rm -f "$fuzzdir/meson-logs/testlog.json"
if BAI_FUZZ_BUILD_DIR=$fuzzdir scripts/fuzz.sh --build; then
  meson test -C "$fuzzdir" --num-processes "$(nproc)" --print-errorlogs
else
  echo "fuzz build failed"
fi
python3 scripts/summarize-tests.py "$builddir" "$fuzzdir"
