#!/usr/bin/env bash
# End to end through the bai CLI: folders on the storage proxy of a dev environment
# (scripts/install-dev.sh --start starts it with one vfs volume). A tree goes up, a session
# reads it and writes a result, the result comes down with the same checksum; a read-only
# mount refuses writes in the kernel; another keypair sees nothing until the folder is
# shared; quotas refuse cleanly with exact usage; an upload survives a killed client and a
# SIGKILLed proxy; path attacks and forged grants are refused.
#
# usage: storage_e2e_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd) source_root=$(cd "$2" && pwd)
work=$(mktemp -d /tmp/bai-storage-e2e-XXXXXX)
env_id=st-$$
env_dir=$work/envs/$env_id
upload_pid=

# shellcheck source=e2e_lib.sh
. "$source_root/tests/e2e/e2e_lib.sh"
fail() { fail_with_logs "$@"; }
cleanup() {
  [ -z "$upload_pid" ] || kill "$upload_pid" 2>/dev/null || true
  delete_dev_env
}
trap cleanup EXIT

start_dev_env
volume=$env_dir/volumes/default
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
folder_id() { "$bai" vfolder info "$1" --json | json "d['id']"; }

# ---- a tree up, a session over it, the result down ----------------------------------------
mkdir -p "$work/tree/sub/deeper" "$work/tree/empty"
for i in 1 2 3; do head -c $((i * 70000)) /dev/urandom >"$work/tree/sub/file$i.bin"; done
printf 'line one\nline two\n' >"$work/tree/deeper.txt"
printf 'x' >"$work/tree/sub/deeper/tiny"
"$bai" vfolder create data >/dev/null || fail "creating a folder failed"
"$bai" vfolder upload data -r "$work/tree" >"$work/up.out" 2>&1 || fail "the tree upload failed: $(cat "$work/up.out")"
grep -q "(5 files)" "$work/up.out" || fail "the upload summary does not count 5 files: $(cat "$work/up.out")"
"$bai" vfolder ls data tree/empty --json >/dev/null || fail "the empty directory was not made"
out=$("$bai" session run --mount data -r cpu=1 -r mem=256m -- sh -c \
  'cd /home/work/data/tree && find . -type f | sort | xargs sha256sum > /home/work/data/sums.txt && id -u && stat -c %U:%a /home/work/data') ||
  fail "the session over the folder failed: $out"
uid=$("$bai" admin keypair info "$BAI_ACCESS_KEY" --json | json "d['uid']")
[ "$(echo "$out" | sed -n 1p)" = "$uid" ] || fail "the session did not run as the owner's uid $uid: $out"
"$bai" vfolder download data sums.txt --to "$work/down" >/dev/null 2>&1 || fail "downloading the result failed"
diff <(cd "$work/tree" && find . -type f | sort | xargs sha256sum) "$work/down/sums.txt" ||
  fail "the session read other bytes than were uploaded"
"$bai" vfolder download data tree -r --to "$work/back" >/dev/null 2>&1 || fail "the recursive download failed"
diff <(sums "$work/tree") <(sums "$work/back/tree") || fail "the tree came back different"
[ -d "$work/back/tree/empty" ] || fail "the empty directory did not come back"
# Folder directories are the owner's, 0700, on the volume.
[ "$(stat -c %u:%a "$volume/vfolders/$(folder_id data)")" = "$uid:700" ] || fail "the folder is not the owner's 0700"

# ---- a read-only mount ------------------------------------------------------------------
out=$("$bai" session run --mount data:/home/work/in:ro -r cpu=1 -r mem=256m -- sh -c \
  'cat /home/work/in/tree/deeper.txt; touch /home/work/in/new 2>&1; echo rc=$?') || fail "the read-only session failed: $out"
echo "$out" | grep -q "line one" || fail "the read-only mount is not readable: $out"
echo "$out" | grep -q "Read-only file system" || fail "the read-only mount did not refuse the write in the kernel: $out"
[ ! -e "$volume/vfolders/$(folder_id data)/new" ] || fail "a file appeared through the read-only mount"

# ---- another keypair ---------------------------------------------------------------------
"$bai" admin keypair create --out "$work/other.keypair" >/dev/null || fail "creating a second keypair failed"
other_key=$(sed -n 's/^access-key *= *"\(.*\)"$/\1/p' "$work/other.keypair")
as_other() { env -u BAI_ACCESS_KEY -u BAI_SECRET_KEY -u BAI_KEYPAIR_FILE BAI_CONFIG="$work/other.keypair" "$@"; }
id=$(folder_id data)
[ "$(as_other "$bai" vfolder list --json | json "len(d['vfolders'])")" = 0 ] || fail "another keypair lists the folder"
as_other "$bai" vfolder ls "$id" >/dev/null 2>"$work/o1" && fail "another keypair listed the folder's files"
grep -q no-such-vfolder "$work/o1" || fail "the refusal is not no-such-vfolder: $(cat "$work/o1")"
as_other "$bai" vfolder download "$id" sums.txt --to "$work/stolen" >/dev/null 2>&1 && fail "another keypair downloaded from the folder"
as_other "$bai" session run --mount "$id" -r cpu=1 -- true >/dev/null 2>"$work/o2" && fail "another keypair mounted the folder"
grep -q no-such-vfolder "$work/o2" || fail "the mount refusal is not no-such-vfolder: $(cat "$work/o2")"
"$bai" vfolder share data "$other_key" --permission ro >/dev/null || fail "sharing failed"
as_other "$bai" vfolder download data sums.txt --to "$work/shared" >/dev/null 2>&1 || fail "the shared folder could not be downloaded"
cmp -s "$work/shared/sums.txt" "$work/down/sums.txt" || fail "the shared download differs"
printf 'x\n' >"$work/x.txt"
as_other "$bai" vfolder upload data "$work/x.txt" >/dev/null 2>"$work/o3" && fail "a read-only share accepted an upload"
grep -q vfolder-read-only "$work/o3" || fail "the upload refusal is not vfolder-read-only: $(cat "$work/o3")"
out=$(as_other "$bai" session run --mount data -r cpu=1 -r mem=256m -- sh -c \
  'head -c 8 /home/work/data/tree/deeper.txt; echo; touch /home/work/data/y 2>&1; echo rc=$?') ||
  fail "the other keypair's session over the shared folder failed: $out"
echo "$out" | grep -q "line one" || fail "the sharee's session cannot read the shared folder: $out"
echo "$out" | grep -q "Read-only file system" || fail "a ro share was mounted writable: $out"
"$bai" vfolder unshare data "$other_key" >/dev/null || fail "unsharing failed"
as_other "$bai" vfolder ls "$id" >/dev/null 2>&1 && fail "the folder is still visible after unshare"

# ---- quota --------------------------------------------------------------------------------
"$bai" vfolder create small --quota 1m >/dev/null || fail "creating a folder with a quota failed"
head -c 600000 /dev/urandom >"$work/600k"
head -c 500000 /dev/urandom >"$work/500k"
"$bai" vfolder upload small "$work/600k" >/dev/null 2>&1 || fail "an upload within the quota failed"
"$bai" vfolder upload small "$work/500k" >/dev/null 2>"$work/q.err" && fail "an upload past the quota was accepted"
grep -q quota-exceeded "$work/q.err" || fail "the quota refusal does not say quota-exceeded: $(cat "$work/q.err")"
small=$(folder_id small)
[ ! -e "$volume/vfolders/$small/500k" ] || fail "the refused upload left a file"
[ -z "$(ls -A "$volume/.bai/staging/$small" 2>/dev/null)" ] || fail "the refused upload left a partial file"
[ "$("$bai" vfolder info small --json | json "(d['used_bytes'], d['file_count'])")" = "(600000, 1)" ] ||
  fail "the usage is not exact: $("$bai" vfolder info small --json)"

# ---- an upload survives a killed client and a killed proxy --------------------------------
"$bai" vfolder create big >/dev/null || fail "creating the big folder failed"
big=$(folder_id big)
head -c $((160 << 20)) /dev/urandom >"$work/big.bin"
size=$((160 << 20))
# Stops the running upload (SIGSTOP) as soon as the proxy has staged more than 1 MiB of it, and
# checks that it was caught midway: loopback uploads are fast, so the poll does not sleep.
pause_midway() {
  local deadline=$((SECONDS + 60)) staged
  until staged=$(find "$volume/.bai/staging/$big" -type f -size +1024k -printf '%s\n' 2>/dev/null) && [ -n "$staged" ]; do
    kill -0 "$upload_pid" 2>/dev/null || fail "the upload ended before it could be interrupted"
    [ $SECONDS -lt $deadline ] || fail "the upload staged nothing"
  done
  kill -STOP "$upload_pid"
  staged=$(find "$volume/.bai/staging/$big" -type f -printf '%s\n' | sort -n | tail -1)
  [ -n "$staged" ] && [ "$staged" -lt "$size" ] || fail "the upload was not caught midway (staged: ${staged:-nothing})"
}
"$bai" vfolder upload big "$work/big.bin" >/dev/null 2>&1 &
upload_pid=$!
pause_midway
kill -9 "$upload_pid"; wait "$upload_pid" 2>/dev/null || true; upload_pid=
out=$("$bai" vfolder upload big "$work/big.bin" --json 2>&1) || fail "resuming after the killed client failed: $out"
moved=$(echo "$out" | json "d['bytes']")
((moved < size)) || fail "the second upload sent all $moved bytes instead of resuming"

"$bai" vfolder upload big "$work/big.bin" --to again >/dev/null 2>&1 &
upload_pid=$!
pause_midway
kill -9 "$(cat "$env_dir/run/storage-proxy.pid")"
kill -CONT "$upload_pid"
wait "$upload_pid" 2>/dev/null && fail "the upload succeeded although its proxy was killed" || true
upload_pid=
setsid "$env_dir/bin/bai-storage-proxy" --config "$env_dir/etc/storage-proxy.toml" \
  --ready-file "$env_dir/run/storage-proxy.ready" </dev/null >>"$env_dir/log/storage-proxy.log" 2>&1 &
echo $! >"$env_dir/run/storage-proxy.pid"
eventually 20 "$bai" vfolder hosts || fail "the proxy did not come back"
out=$("$bai" vfolder upload big "$work/big.bin" --to again --json 2>&1) || fail "resuming after the killed proxy failed: $out"
moved=$(echo "$out" | json "d['bytes']")
((moved < size)) || fail "the upload after the proxy's restart sent all $moved bytes instead of resuming"
for remote in big.bin again/big.bin; do
  rm -rf "$work/check"
  "$bai" vfolder download big "$remote" --to "$work/check" >/dev/null 2>&1 || fail "downloading $remote failed"
  cmp -s "$work/big.bin" "$work/check/big.bin" || fail "$remote differs from what was uploaded"
done

# ---- path attacks and forged grants -------------------------------------------------------
for bad in ../x /etc/passwd 'a/../../b'; do
  "$bai" vfolder ls data "$bad" >/dev/null 2>"$work/p.err" && fail "ls '$bad' was accepted"
  grep -q invalid-path "$work/p.err" || fail "ls '$bad' was not refused as invalid-path: $(cat "$work/p.err")"
done
# A symlink inside the folder to /etc, made by the owner's own session.
"$bai" session run --mount data -r cpu=1 -r mem=256m -- ln -s /etc /home/work/data/etc >/dev/null || fail "making the symlink failed"
"$bai" vfolder download data etc/passwd --to "$work/evil" >/dev/null 2>"$work/s.err" && fail "a download through a symlink to /etc succeeded"
grep -q path-escapes "$work/s.err" || fail "the escape was not refused as path-escapes: $(cat "$work/s.err")"
[ ! -e "$work/evil/passwd" ] || fail "/etc/passwd was written locally"
grant=$(python3 "$source_root/scripts/bai-api.py" --keypair "$BAI_KEYPAIR_FILE" POST /v1/vfolders/data/grants \
  '{"operation":"download","path":"sums.txt"}' | json "d['grant']") || fail "asking for a grant failed"
client_port=$(sed -n 's/^storage_client_port=//p' "$env_dir/.bai-dev-env")
[ -n "$client_port" ] || fail "the environment's marker names no storage client port"
code() { curl -s -o /dev/null -w '%{http_code}' -H "X-BAI-Grant: $1" "http://127.0.0.1:$client_port/v1/download?path=$2"; }
[ "$(code "$grant" sums.txt)" = 200 ] || fail "a fresh grant did not download"
[ "$(code "$grant" tree/deeper.txt)" = 403 ] || fail "a grant for sums.txt reached another file"
[ "$(code "${grant%?}0" sums.txt)" = 403 ] || [ "$(code "${grant%?}1" sums.txt)" = 403 ] || fail "a tampered grant was accepted"
echo "storage e2e: all checks passed"
