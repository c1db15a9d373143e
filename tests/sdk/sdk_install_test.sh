#!/usr/bin/env bash
# Installs bai into a temporary prefix, checks the installed file list, the installed
# headers and the symbols each library exports against the lists kept beside this script,
# builds and runs a client program against the installed libraries, then builds the plugin
# template and the plain-C example out of tree against it, as a vendor would, and runs
# both through bai-plugin-check and the agent's plugin host.
# Usage: sdk_install_test.sh BUILD_DIR SOURCE_ROOT PLUGIN_HOST_PROBE
set -euo pipefail
build=$1 source_root=$2 probe=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

meson install -C "$build" --destdir "$tmp/dest" --no-rebuild --quiet
pcfile=$(find "$tmp/dest" -name bai-sdk.pc) || true
[ -n "$pcfile" ] || fail "bai-sdk.pc is not installed"
pcdir=$(dirname "$pcfile")
libdir=$(dirname "$pcdir")
prefix=$(dirname "$(find "$tmp/dest" -path '*/include/bai' -type d)")
prefix=$(dirname "$prefix")

# What a vendor gets (and the daemons), and nothing of the agent's internals: no core headers or archives.
for f in bin/bai-plugin-check include/bai/accelerator.h include/bai/plugin.hpp include/bai/slots.hpp \
         include/bai/result.hpp; do
  [ -e "$prefix/$f" ] || fail "$f is not installed"
done
for lib in libbai libbai-client; do
  ls "$libdir/$lib".so.* >/dev/null 2>&1 || fail "$lib is not installed"
done
[ -e "$pcdir/bai.pc" ] || fail "bai.pc is not installed"
unexpected=$(cd "$tmp/dest" && find . -type f | grep -Ev '/bin/(bai|bai-plugin-check|bai-agent|bai-manager|bai-storage-proxy|bai-session-shim)$|/include/bai/[a-z_]+\.(h|hpp)$|/libbai(-client)?\.so\.[0-9.]+$|/pkgconfig/bai(-sdk)?\.pc$|/bai/(accelerators|policies)/[a-z0-9-]+\.so$|/share/bai/(template|examples|docs)/|/lib/systemd/system/bai-(manager|agent|storage-proxy)\.service$|/lib/sysusers\.d/bai\.conf$|/share/doc/bai/admin-guide\.md$' || true)
[ -z "$unexpected" ] || fail "unexpected installed files: $unexpected"
echo "installed file list OK"

# The public headers, exactly: an internal header installed by mistake becomes API.
diff -u "$source_root/tests/sdk/installed_headers.txt" <(cd "$prefix/include/bai" && LC_ALL=C ls) \
  || fail "the installed headers differ from tests/sdk/installed_headers.txt"
# Each library exports its public API and nothing else of namespace bai.
exported() {
  nm -D --defined-only -C "$1" | cut -d' ' -f3- | grep '^bai::' | LC_ALL=C sort -u | sed "s|^|$2: |"
}
diff -u "$source_root/tests/sdk/exported_symbols.txt" \
  <(for lib in libbai libbai-client; do exported "$(ls "$libdir/$lib".so.*.*.*)" "$lib"; done) \
  || fail "the exported symbols differ from tests/sdk/exported_symbols.txt"
# libbai is for everyone, plugins included: nothing beyond the C and C++ runtimes.
needed=$(readelf -d "$(ls "$libdir"/libbai.so.*.*.*)" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' \
  | grep -Ev '^(libstdc\+\+\.so\.6|libm\.so\.6|libgcc_s\.so\.1|libc\.so\.6)$' || true)
[ -z "$needed" ] || fail "libbai links more than the C++ runtime: $needed"
echo "installed headers, exported symbols and libbai's dependencies OK"

export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$tmp/dest"
# The template as installed, not from the sources: the guide tells vendors to copy it from there.
templatedir=$(pkg-config --variable=templatedir bai-sdk)  # pkgconf already prefixes the sysroot
[ -f "$templatedir/acme_plugin.cpp" ] || fail "the template is not installed at $templatedir"
for f in plugin-guide.md abi/list_devices.schema.json; do
  [ -f "$(pkg-config --variable=docdir bai-sdk)/$f" ] || fail "docs/$f is not installed"
done
cp -r "$templatedir" "$tmp/template-src"
meson setup "$tmp/template" "$tmp/template-src" >/dev/null || fail "template: meson setup"
ninja -C "$tmp/template" >/dev/null || fail "template: build"
meson setup "$tmp/c-example" "$source_root/sdk/examples/c-plugin" >/dev/null || fail "c example: meson setup"
ninja -C "$tmp/c-example" >/dev/null || fail "c example: build"
if readelf -d "$tmp/c-example/c-example.so" | grep -q 'libstdc++'; then fail "the C example links the C++ runtime"; fi

export LD_LIBRARY_PATH="$libdir"
# A user's program against the installed libraries alone.
# shellcheck disable=SC2046  # pkg-config's flags are meant to split
"${CXX:-c++}" -std=c++20 -o "$tmp/client-program" "$source_root/tests/sdk/installed_client_program.cpp" \
  $(pkg-config --cflags --libs bai) || fail "a client program does not build against the installed libraries"
printf 'endpoint = "http://127.0.0.1:1"\naccess-key = "AKTEST"\nsecret-key = "s3cret"\n' > "$tmp/client.toml"
chmod 600 "$tmp/client.toml"
"$tmp/client-program" "$tmp/client.toml" > "$tmp/client-program.txt" || { cat "$tmp/client-program.txt"; fail "the client program failed"; }
grep -qx 'quantity -2 negative' "$tmp/client-program.txt" && grep -qx 'endpoint http://127.0.0.1:1 key AKTEST' "$tmp/client-program.txt" \
  || { cat "$tmp/client-program.txt"; fail "the client program computed something else"; }
echo "a client program builds and runs against the installed libraries"

for plugin in "$tmp/template/acme.so" "$tmp/c-example/c-example.so"; do
  "$prefix/bin/bai-plugin-check" "$plugin" > "$tmp/check.txt" || { cat "$tmp/check.txt"; fail "bai-plugin-check $plugin"; }
  grep -q "17 passed, 0 failed, 0 skipped" "$tmp/check.txt" || { cat "$tmp/check.txt"; fail "not every check passed"; }
done
echo "bai-plugin-check passes the template and the C example"

mkdir "$tmp/plugins"
cp "$tmp/template/acme.so" "$tmp/c-example/c-example.so" "$tmp/plugins/"
"$probe" "$tmp/plugins" > "$tmp/probe.txt"
grep -q "loaded acme key=acme devices=2" "$tmp/probe.txt" || { cat "$tmp/probe.txt"; fail "the host did not load the template"; }
grep -q "loaded c-example key=cdev devices=1" "$tmp/probe.txt" || { cat "$tmp/probe.txt"; fail "the host did not load the C example"; }
echo "the agent's host loads both"
