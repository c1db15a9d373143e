#!/usr/bin/env bash
# Upload and download throughput through `bai vfolder` and the storage proxy, beside `cp` on
# the same disk and `curl` against a plain static file server on loopback
# (static_file_server.py: Python's, plus a PUT that fsyncs like the proxy), side by side in
# one run: ROUNDS rounds, the three ways interleaved in each. A dev environment from BUILD_DIR
# is installed into a temporary directory on the same file system as the files.
#
# usage: storage_throughput.sh BUILD_DIR SOURCE_DIR [BIG_MIB [SMALL_FILES [ROUNDS]]]
#   defaults: a 1024 MiB file, 10000 files of 4 KiB, 3 rounds. Prints medians in MB/s.
set -euo pipefail
build=$(cd "$1" && pwd) source_root=$(cd "$2" && pwd)
big_mib=${3:-1024} small_files=${4:-10000} rounds=${5:-3}
work=$(mktemp -d /var/tmp/bai-storage-bench-XXXXXX)
env_id=sb-$$
env_dir=$work/envs/$env_id
server_pid=

cleanup() {
  [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
  if [ -d "$env_dir" ]; then "$source_root/scripts/delete-dev.sh" -e "$env_id" --install-path "$work/envs" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
die() { echo "storage_throughput: $*" >&2; exit 1; }

"$source_root/scripts/install-dev.sh" -e "$env_id" --install-path "$work/envs" --build-dir "$build" --start \
  >"$work/install.log" 2>&1 || { cat "$work/install.log" >&2; die "install-dev.sh failed"; }
# shellcheck disable=SC1091
. "$env_dir/env.sh"
bai vfolder create bench >/dev/null
volume_dir=$env_dir/volumes/default/vfolders/$(bai vfolder info bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

# The files: one big, many small, on the same file system as the volume and the server's root.
mkdir -p "$work/src/small" "$work/served" "$work/copies" "$work/down"
head -c $((big_mib << 20)) /dev/urandom >"$work/src/big.bin"
python3 - "$work/src/small" "$small_files" <<'PYEOF'
import os, sys
root, count = sys.argv[1], int(sys.argv[2])
for i in range(count):
    with open(os.path.join(root, "f%05d" % i), "wb") as f:
        f.write(os.urandom(4096))
PYEOF
small_bytes=$((small_files * 4096)) big_bytes=$((big_mib << 20))
python3 "$source_root/benchmarks/storage/static_file_server.py" "$work/port" "$work/served" &
server_pid=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
url=http://127.0.0.1:$(cat "$work/port")

# curl configs for the small files: one connection, one transfer per file.
for f in "$work"/src/small/*; do printf 'upload-file = "%s"\nurl = "%s/small/%s"\n' "$f" "$url" "${f##*/}"; done >"$work/up.curl"
for f in "$work"/src/small/*; do printf 'url = "%s/small/%s"\noutput = "%s/down/curl-small/%s"\n' "$url" "${f##*/}" "$work" "${f##*/}"; done >"$work/down.curl"

# seconds CMD...: the command's wall time in nanoseconds; record NAME NANOSECONDS BYTES.
seconds() {
  local start end
  start=$(date +%s%N)
  "$@" >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; die "failed: $*"; }
  end=$(date +%s%N)
  echo $((end - start))
}
record() { echo "$1 $2 $3" >>"$work/results"; }

for round in $(seq "$rounds"); do
  # one big file up
  record "big-up-bai" "$(seconds bai vfolder upload bench "$work/src/big.bin" --to "r$round")" "$big_bytes"
  record "big-up-curl" "$(seconds curl -fsS -T "$work/src/big.bin" "$url/big.bin")" "$big_bytes"
  record "big-up-cp" "$(seconds sh -c "cp '$work/src/big.bin' '$work/copies/big.bin' && sync '$work/copies/big.bin'")" "$big_bytes"
  # and down
  record "big-down-bai" "$(seconds bai vfolder download bench "r$round/big.bin" --to "$work/down/bai")" "$big_bytes"
  record "big-down-curl" "$(seconds curl -fsS -o "$work/down/big-curl.bin" "$url/big.bin")" "$big_bytes"
  record "big-down-cp" "$(seconds sh -c "cp '$volume_dir/r$round/big.bin' '$work/down/big-cp.bin' && sync '$work/down/big-cp.bin'")" "$big_bytes"
  cmp -s "$work/src/big.bin" "$work/down/bai/big.bin" || die "the big file came back different through bai"
  rm -rf "$work/down"/* "$work/copies"/* "$work/served/big.bin" "${volume_dir:?}/r$round"
  # many small files up
  record "small-up-bai" "$(seconds bai vfolder upload bench -r "$work/src/small" --to "s$round")" "$small_bytes"
  record "small-up-curl" "$(seconds curl -fsS -K "$work/up.curl")" "$small_bytes"
  record "small-up-cp" "$(seconds sh -c "cp -r '$work/src/small' '$work/copies/small' && find '$work/copies/small' -type f -exec sync {} +")" "$small_bytes"
  # and down
  mkdir -p "$work/down/curl-small"
  record "small-down-bai" "$(seconds bai vfolder download bench -r "s$round/small" --to "$work/down/bai")" "$small_bytes"
  record "small-down-curl" "$(seconds curl -fsS -K "$work/down.curl")" "$small_bytes"
  record "small-down-cp" "$(seconds sh -c "cp -r '$volume_dir/s$round/small' '$work/down/cp-small' && find '$work/down/cp-small' -type f -exec sync {} +")" "$small_bytes"
  [ "$(ls "$work/down/bai/small" | wc -l)" = "$small_files" ] || die "bai brought back $(ls "$work/down/bai/small" | wc -l) of $small_files small files"
  rm -rf "$work/down"/* "$work/copies"/* "$work/served/small" "${volume_dir:?}/s$round"
done

python3 - "$work/results" "$big_mib" "$small_files" "$rounds" <<'PYEOF'
import statistics, sys
results = {}
for line in open(sys.argv[1]):
    name, nanoseconds, size = line.split()
    results.setdefault(name, []).append(int(size) / int(nanoseconds) * 1000)  # MB/s
median = {name: statistics.median(rates) for name, rates in results.items()}
print(f"storage throughput, MB/s (median of {sys.argv[4]} rounds): a {sys.argv[2]} MiB file, {sys.argv[3]} files of 4 KiB")
print(f"{'':12} {'bai':>9} {'curl':>9} {'cp':>9} {'bai/curl':>9}")
for what in ("big-up", "big-down", "small-up", "small-down"):
    bai, curl, cp = (median[f"{what}-{way}"] for way in ("bai", "curl", "cp"))
    print(f"{what:12} {bai:9.1f} {curl:9.1f} {cp:9.1f} {bai / curl:9.2f}")
PYEOF
