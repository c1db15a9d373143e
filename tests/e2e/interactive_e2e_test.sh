#!/usr/bin/env bash
# Interactive sessions end to end through the bai CLI on a dev environment from this build
# (the manager and an agent, process sessions): a terminal driven through a real
# pseudo-terminal (tests/e2e/pty_drive.py), stdin streamed, exec, re-attach after a client
# that was killed, a service reached through `bai session app` by 20 connections at once,
# and the refusals: another user's keypair, an unsigned upgrade, an undeclared service.
#
# usage: interactive_e2e_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd) source_root=$(cd "$2" && pwd)
if [ "$(id -u)" != 0 ]; then echo "SKIP: sessions run as their owners' uids: the agent needs root"; exit 77; fi
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || { echo "SKIP: busybox (busybox-static) serves the test's HTTP"; exit 77; }
work=$(mktemp -d /tmp/bai-it-e2e-XXXXXX)
env_id=it-$$
env_dir=$work/envs/$env_id
extra_pids=()

# shellcheck source=e2e_lib.sh
. "$source_root/tests/e2e/e2e_lib.sh"
fail() { fail_with_logs "$@"; }
cleanup() {
  for pid in "${extra_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  delete_dev_env
}
trap cleanup EXIT

start_dev_env
drive() { python3 "$source_root/tests/e2e/pty_drive.py" "$@"; }
script() { printf '%s\n' "$@" >"$work/steps"; echo "$work/steps"; }

# ---- a terminal: a shell, its window size, Ctrl-C, its exit code ------------------------
rc=0
out=$(drive "$(script 'expect $ ' 'send echo $((6*7))\r' 'expect 42' \
  'resize 33 101' 'send stty size\r' 'expect 33 101' \
  'send sleep 30; echo slept\r' 'sleep 1' 'send \x03' 'send echo after-ctrl-c\r' 'expect after-ctrl-c' \
  'absent \nslept' 'send exit 5\r')" -- "$bai" session run -it -r cpu=1 -- sh) || rc=$?
[ "$rc" = 5 ] || fail "bai session run -it should exit with the shell's 5, not $rc: $out"

# ---- stdin as a stream: EOF passed on, 50 MiB byte-exact -------------------------------
[ "$(echo hi | "$bai" session run -i -r cpu=1 -- cat)" = hi ] || fail "echo hi | bai session run -i -- cat did not print hi"
head -c 52428800 /dev/urandom >"$work/big"
want=$(sha256sum <"$work/big" | cut -d' ' -f1)
got=$("$bai" session run -i -r cpu=1 -- sha256sum <"$work/big" | cut -d' ' -f1) || fail "streaming 50 MiB failed"
[ "$got" = "$want" ] || fail "50 MiB through -i -- sha256sum: $got, locally $want"

# ---- exec: the session's env, files, uid; its own exit code ----------------------------
id=$("$bai" session create --json -r cpu=1 -e FOO=bar -- sh -c 'echo data > /home/work/f; sleep 300' | json "d['id']")
running() { [ "$("$bai" session info --json "$1" | json "d['status']")" = RUNNING ]; }
eventually 30 running "$id" || fail "the session is not RUNNING: $("$bai" session info "$id")"
uid=$("$bai" admin keypair info "$BAI_ACCESS_KEY" --json | json "d['uid']")
out=$("$bai" session exec "$id" -- sh -c 'echo $FOO; cat /home/work/f; id -u') || fail "exec failed: $out"
[ "$out" = "$(printf 'bar\ndata\n%s' "$uid")" ] || fail "exec saw '$out'"
"$bai" session exec "$id" -- sh -c 'exit 4' && rc=0 || rc=$?
[ "$rc" = 4 ] || fail "exec should exit with 4, not $rc"
out=$(drive "$(script 'send echo $((7*6))\r' 'expect 42' 'send exit\r')" -- "$bai" session exec -it "$id" -- sh) ||
  fail "exec -it failed: $out"

# ---- attach after a client that was killed, and detach ---------------------------------
tty_id=$("$bai" session create --json -t -r cpu=1 -- sh | json "d['id']")
eventually 30 running "$tty_id" || fail "the tty session is not RUNNING"
drive "$(script 'send export MARK=kept\r' 'sleep 1' 'kill KILL')" -- "$bai" session attach "$tty_id" >/dev/null 2>&1 || true
running "$tty_id" || fail "killing the client ended the session"
out=$(drive "$(script 'send echo $MARK\r' 'expect kept' 'send \x10\x11')" -- "$bai" session attach "$tty_id") ||
  fail "re-attach or detach failed ($?): $out"
running "$tty_id" || fail "a detach ended the session"
"$bai" session destroy "$tty_id" >/dev/null

# ---- a service through `bai session app`: 20 connections at once -----------------------
web=$("$bai" session create --json -r cpu=1 --port web:http:8080 -- sh -c \
  "echo hello-from-the-session > /home/work/index.html; exec $busybox httpd -f -p 127.0.0.1:\$BAI_SERVICE_PORT_WEB -h /home/work" |
  json "d['id']")
eventually 30 running "$web" || fail "the web session is not RUNNING"
"$bai" session app "$web" web --bind 127.0.0.1:0 >"$work/app.out" 2>"$work/app.err" &
app_pid=$!
extra_pids+=("$app_pid")
eventually 20 grep -q '^http://' "$work/app.out" || fail "bai session app printed no URL: $(cat "$work/app.err")"
url=$(grep -m1 '^http://' "$work/app.out")
eventually 20 curl -sf "$url/index.html" || fail "the tunnel does not reach the service: $(cat "$work/app.err")"
for i in $(seq 20); do curl -sf "$url/index.html" >"$work/got.$i" & done
wait_for_curls=0
for job in $(jobs -p); do [ "$job" = "$app_pid" ] || wait "$job" || wait_for_curls=1; done
[ "$wait_for_curls" = 0 ] || fail "a connection through the tunnel failed"
for i in $(seq 20); do grep -q hello-from-the-session "$work/got.$i" || fail "connection $i got: $(cat "$work/got.$i")"; done

# ---- refusals ---------------------------------------------------------------------------
"$bai" session app "$web" jupyter >/dev/null 2>"$work/undeclared.err" && fail "an undeclared service was tunnelled"
grep -q "jupyter" "$work/undeclared.err" || fail "the refusal does not name the service: $(cat "$work/undeclared.err")"
"$bai" admin keypair create --out "$work/other.keypair" >/dev/null || fail "creating a second keypair failed"
as_other() { env -u BAI_ACCESS_KEY -u BAI_SECRET_KEY -u BAI_KEYPAIR_FILE BAI_CONFIG="$work/other.keypair" "$@"; }
as_other "$bai" session exec "$web" -- true >/dev/null 2>"$work/other.err" && fail "another user's keypair could exec in the session"
as_other "$bai" session app "$web" web >/dev/null 2>>"$work/other.err" && fail "another user's keypair could open the tunnel"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
  -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "$BAI_ENDPOINT/v1/sessions/$web/attach")
[ "$code" = 401 ] || fail "an unsigned upgrade was answered $code, not 401"

# ---- the session's end closes the tunnel ------------------------------------------------
"$bai" session destroy "$web" >/dev/null
for _ in $(seq 100); do kill -0 "$app_pid" 2>/dev/null || break; sleep 0.2; done
kill -0 "$app_pid" 2>/dev/null && fail "bai session app still runs after its session ended"
wait "$app_pid" && fail "bai session app exited 0 although its session ended" || true
"$bai" session destroy "$id" >/dev/null
echo "interactive e2e: all checks passed"
