#!/bin/sh
# Makes a self-contained folder for checking the CUDA plugins on a machine with an NVIDIA
# GPU and none of bai's build dependencies:
#   tests/gpu/bundle.sh BUILD_DIR OUT_DIR  &&  (on the GPU machine)  OUT_DIR/run.sh
# It holds bai-plugin-check, the CUDA plugins, cuda_probe and the shared libraries they
# link (found with ldd), except glibc's own, which every Linux machine has. The vendor
# libraries (NVML, libcuda) are never bundled: they come with the driver.
set -eu
build=${1:?usage: bundle.sh BUILD_DIR OUT_DIR}
out=${2:?usage: bundle.sh BUILD_DIR OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
limit_kib=$((64 * 1024))

rm -rf "$out"
mkdir -p "$out/bin" "$out/plugins" "$out/lib"
binaries="$build/core/bai-plugin-check $build/tests/gpu/cuda_probe"
cp $binaries "$out/bin/"
for plugin in cuda-device cuda-fractional; do
  if [ -f "$build/accelerators/$plugin/$plugin.so" ]; then
    cp "$build/accelerators/$plugin/$plugin.so" "$out/plugins/"
    binaries="$binaries $build/accelerators/$plugin/$plugin.so"
  else
    echo "bundle: $plugin is not built in $build; left out" >&2
  fi
done
cp "$here/run.sh" "$out/"

# Libraries by their resolved path (ldd on the build tree's files, where their rpaths
# hold); glibc's own (libc, libm, libpthread, libdl, librt, libresolv, libutil, ld-linux)
# stay the machine's.
for binary in $binaries; do
  ldd "$binary" | awk '/=> not found/ { print "bundle: " $1 " not found" > "/dev/stderr"; exit 1 }
                       /=> \// { print $3 }' | while read -r library; do
    case $(basename "$library") in
      libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|libresolv.so.*|libutil.so.*|ld-linux*) continue ;;
    esac
    [ -f "$out/lib/$(basename "$library")" ] || cp -L "$library" "$out/lib/"
  done
done
strip --strip-unneeded "$out"/bin/* "$out"/plugins/*.so "$out"/lib/* 2>/dev/null || true

size_kib=$(du -sk "$out" | cut -f1)
echo "bundle: $out, ${size_kib} KiB"
if [ "$size_kib" -gt "$limit_kib" ]; then
  echo "bundle: larger than 64 MiB" >&2
  exit 1
fi
