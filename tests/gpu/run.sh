#!/bin/sh
# The GPU checks, run from a folder made by bundle.sh on a machine with an NVIDIA GPU:
# bai-plugin-check on each CUDA plugin against the real driver, the devices each reports,
# and cuda_probe inside the environment a session gets (half a GPU from cuda-fractional,
# one GPU from cuda-device). Environment only: it starts no MPS daemon and changes no
# MIG or other device setting, so it is safe on a shared machine. NVML events are
# optional to the plugins. Exit 77: no NVIDIA GPU here; 1: a check failed.
here=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ ! -e /dev/nvidiactl ] && [ ! -e /dev/nvidia0 ]; then
  echo "run: no NVIDIA GPU here (no /dev/nvidiactl)"
  exit 77
fi
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L
status=0
for plugin in cuda-device cuda-fractional; do
  so="$here/plugins/$plugin.so"
  [ -f "$so" ] || continue
  echo "== bai-plugin-check $plugin"
  "$here/bin/bai-plugin-check" "$so" || status=1
  echo "== $plugin: what it reports"
  "$here/bin/bai-plugin-check" "$so" --show || status=1
done
echo "== cuda_probe with every GPU"
"$here/bin/cuda_probe" || status=1
for session in "cuda-fractional cuda.shares=0.5" "cuda-device cuda.device=1"; do
  set -- $session
  [ -f "$here/plugins/$1.so" ] || continue
  echo "== cuda_probe in a $1 session ($2)"
  environment=$("$here/bin/bai-plugin-check" "$here/plugins/$1.so" --show --session "$2" --env) || { status=1; continue; }
  echo "$environment"
  (eval "$environment" && "$here/bin/cuda_probe") || status=1
done
exit $status
