#!/usr/bin/env bash
# Installs every Debian 12 package that bai's build and tests need. Idempotent.
set -euo pipefail

packages=(
  meson ninja-build g++ pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libfmt-dev libspdlog-dev
  libboost-dev libhwloc-dev libcurl4-openssl-dev libssl-dev
  libsqlite3-dev libtomlplusplus-dev libcli11-dev libsystemd-dev
  valgrind openssl
  clang libclang-rt-14-dev
  librocm-smi64-1 librocm-smi-dev
  podman runc conmon catatonit containernetworking-plugins busybox-static
  acl xfsprogs
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
