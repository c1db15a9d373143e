#!/bin/sh
# Builds the GPU bundle from BUILD_DIR into a temp dir and runs it: the checks on a GPU
# machine, exit 77 (skipped) elsewhere.
set -u
build=${1:?usage: gpu_bundle_test.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$here/bundle.sh" "$build" "$out/bundle" || exit 1
for required in bin/bai-plugin-check bin/cuda_probe run.sh; do
  [ -x "$out/bundle/$required" ] || { echo "bundle lacks $required"; exit 1; }
done
# What run.sh relies on: the bundled libraries alone, no build tree on the library path.
if ! env -i PATH=/usr/bin:/bin LD_LIBRARY_PATH="$out/bundle/lib" "$out/bundle/bin/bai-plugin-check" --help >/dev/null; then
  echo "bundle: bai-plugin-check does not run from the bundle"
  exit 1
fi
"$out/bundle/run.sh"
