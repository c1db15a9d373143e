#!/usr/bin/env bash
# The plain-C path a vendor follows: install bai, copy the installed C example, build it
# against the SDK found through `pkg-config bai-sdk`, `meson install` it into the SDK's
# plugindir, and check the installed plugin with bai-plugin-check and the agent's host.
# Usage: c_example_install_test.sh BUILD_DIR PLUGIN_HOST_PROBE
set -euo pipefail
build=$1 probe=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A destdir stands in for a prefix of the vendor's own: nothing needs root.
meson install -C "$build" --destdir "$tmp/dest" --no-rebuild --quiet
pcfile=$(find "$tmp/dest" -name bai-sdk.pc)
[ -n "$pcfile" ] || fail "bai-sdk.pc is not installed"
export PKG_CONFIG_PATH=$(dirname "$pcfile") PKG_CONFIG_SYSROOT_DIR="$tmp/dest"
prefix=$(pkg-config --variable=prefix bai-sdk)  # pkgconf prefixes the sysroot
plugindir=$(pkg-config --variable=plugindir bai-sdk)
for header in accelerator.h json.h json_reader.h json_writer.h; do
  [ -f "$prefix/include/bai/$header" ] || fail "bai/$header is not installed"
done

cp -r "$prefix/share/bai/examples/c-plugin" "$tmp/c-plugin"
meson setup "$tmp/c-build" "$tmp/c-plugin" >/dev/null || fail "meson setup of the installed C example"
ninja -C "$tmp/c-build" >/dev/null || fail "the C example does not build"
needed=$(readelf -d "$tmp/c-build/c-example.so" | grep NEEDED || true)
if grep -qv 'libc\.so' <<<"$needed"; then fail "the C example needs more than libc: $needed"; fi
meson install -C "$tmp/c-build" --quiet || fail "meson install of the C example"
installed="$plugindir/c-example.so"
[ -f "$installed" ] || fail "meson install did not put c-example.so into the plugindir $plugindir"
echo "the C example builds against the SDK and installs into its plugindir"

export LD_LIBRARY_PATH=$(dirname "$(dirname "$pcfile")")
check=$(find "$tmp/dest" -path '*/bin/bai-plugin-check')
printf 'devices = 3\n' > "$tmp/three.toml"
for config in "" "$tmp/three.toml"; do
  "$check" ${config:+--config "$config"} "$installed" > "$tmp/check.txt" || { cat "$tmp/check.txt"; fail "bai-plugin-check ${config:+with $config}"; }
  grep -qE "^[0-9]+ passed, 0 failed, 0 skipped$" "$tmp/check.txt" || { cat "$tmp/check.txt"; fail "not every check passed"; }
done
"$check" --config "$tmp/three.toml" --show --session cdev.device=2 --env "$installed" > "$tmp/env.txt"
grep -q "CDEV_VISIBLE='\?0,1'\?" "$tmp/env.txt" || { cat "$tmp/env.txt"; fail "a session of two devices does not see 0,1"; }
echo "bai-plugin-check passes the installed C example, with and without a config"

"$probe" "$plugindir" > "$tmp/probe.txt" 2>&1 || true
grep -q "loaded c-example key=cdev devices=1" "$tmp/probe.txt" || { cat "$tmp/probe.txt"; fail "the host did not load the installed C example"; }
echo "the agent's host loads it from the plugindir"
