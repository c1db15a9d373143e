#!/usr/bin/env bash
# Container sessions end to end through the bai CLI, on a real engine: a dev environment
# installed from this build (scripts/install-dev.sh --enable-containers=SOCKET) whose agent
# runs sessions in containers of the test image through Podman's Docker API service
# (scripts/container-engine.sh, started by scripts/test.sh: BAI_TEST_ENGINE_SOCKET and
# BAI_TEST_IMAGE). A second agent in its own scaling group has an engine that is down.
# Checked: identity, devices, env and working dir inside the container; exit codes; logs -f;
# destroy within the grace; the memory limit; a missing image, an image outside the
# allow-list and a down engine each with their reason; kill -9 of the agent with five
# containers running, then everything re-adopted, reported, and nothing left behind.
#
# usage: container_e2e_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd) source_root=$(cd "$2" && pwd)

socket=${BAI_TEST_ENGINE_SOCKET:-} image=${BAI_TEST_IMAGE:-}
if [ -z "$socket" ] || [ ! -S "$socket" ] || [ -z "$image" ]; then
  echo "SKIP: no container engine (BAI_TEST_ENGINE_SOCKET, BAI_TEST_IMAGE; scripts/test.sh starts one)"
  exit 77
fi
if [ "$(id -u)" != 0 ]; then echo "SKIP: containers as other uids and device nodes need root"; exit 77; fi

work=$(mktemp -d /tmp/bai-ctr-e2e-XXXXXX)
env_id=ctr-$$
env_dir=$work/envs/$env_id
extra_pids=()

engine() { curl -sf --unix-socket "$socket" "http://d/v1.41$1"; }
our_containers() {  # the ids of containers labelled with agent $1
  engine "/containers/json?all=1&filters=$(python3 -c 'import json,sys,urllib.parse; print(urllib.parse.quote(json.dumps({"label": ["ai.bai.agent=" + sys.argv[1]]})))' "$1")" |
    python3 -c 'import json,sys; print(" ".join(c["Id"][:12] for c in json.load(sys.stdin)))'
}
fail() {
  echo "FAIL: $*" >&2
  for log in "$env_dir"/log/*.log "$work"/agent-*.log; do
    [ -f "$log" ] && { echo "--- $log" >&2; tail -n 30 "$log" >&2; }
  done
  exit 1
}
cleanup() {
  for pid in "${extra_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -d "$env_dir" ]; then "$source_root/scripts/delete-dev.sh" -e "$env_id" --install-path "$work/envs" >/dev/null 2>&1 || true; fi
  for id in $(our_containers "$env_id-agent" 2>/dev/null); do
    curl -sf -X DELETE --unix-socket "$socket" "http://d/v1.41/containers/$id?force=1" >/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=e2e_lib.sh
. "$source_root/tests/e2e/e2e_lib.sh"

# ---- the environment: mock GPUs with device nodes, containers through the engine --------
mkdir -p "$work/nodes"
for i in 0 1 2; do mknod "$work/nodes/bai-mock$i" c 1 3; chmod 0666 "$work/nodes/bai-mock$i"; done
"$source_root/scripts/install-dev.sh" -e "$env_id" --install-path "$work/envs" --build-dir "$build" \
  --enable-cuda-mock --enable-containers="$socket" --start >"$work/install.log" 2>&1 ||
  { cat "$work/install.log" >&2; fail "install-dev.sh failed"; }
etc=$env_dir/etc
grep -q 'kinds = \["process", "container"\]' "$etc/agent.toml" || fail "install-dev.sh --enable-containers did not enable them"
# Mock GPUs with device nodes and a 2 s destroy grace: the agent is restarted on them below.
sed -e "s|/dev/bai-mock{i}|$work/nodes/bai-mock{i}|" "$source_root/configs/accelerator/mock-device-nodes.toml" >"$etc/mock-nodes.toml"
sed -i -e "s|^config_file = .*|config_file = \"$etc/mock-nodes.toml\"|" -e 's|^\[runtime\]$|[runtime]\ndestroy-grace = 2|' "$etc/agent.toml"
# No network: these checks need none, and a CI machine may have no bridge to give.
sed -i -e 's|^engine-socket = .*|&\nnetwork = "none"|' "$etc/agent.toml"
grep -q '^network = "none"' "$etc/agent.toml" || fail "no [runtime.container] table to add network = none to"
# Five sessions of cpu=1 at once on a 2-core machine.
printf '\n[plugins.cpu]\ncpu_overcommit = "8"\n' >>"$etc/agent.toml"
# shellcheck disable=SC1091
. "$env_dir/env.sh"
bai=$env_dir/bin/bai
agent=$env_id-agent

stop_agent() {
  local pid
  pid=$(cat "$env_dir/run/agent.pid")
  kill "${1:--TERM}" "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; do sleep 0.1; done
}
start_agent() {
  setsid "$env_dir/bin/bai-agent" --config "$etc/agent.toml" >>"$env_dir/log/agent.log" 2>&1 &
  echo $! >"$env_dir/run/agent.pid"
}
stop_agent
start_agent
# The restarted agent (whole mock GPUs: cuda.device) with an available container runtime.
has_container_runtime() {
  [ "$("$bai" admin agent list --json | json "[r['available'] for a in d if a['id'] == '$agent' and a['status'] == 'ALIVE' and 'cuda.device' in a['slots'] for r in a.get('runtimes', []) if r['kind'] == 'container']")" = "[True]" ]
}
eventually 30 has_container_runtime || fail "the agent does not offer an available container runtime: $("$bai" admin agent list --json)"

# ---- images ----------------------------------------------------------------------------
"$bai" admin image list | grep -q "bai-test/busybox" || fail "bai admin image list does not show the test image: $("$bai" admin image list)"
agent_images() { "$bai" admin agent images "$agent" | grep -q "bai-test/busybox"; }
eventually 20 agent_images || fail "bai admin agent images does not show it: $("$bai" admin agent images "$agent" 2>&1)"

# ---- who, where, what: the owner's uid, the work dir, the env, only the granted node ----
uid=$("$bai" admin keypair info "$BAI_ACCESS_KEY" --json | json "d['uid']")
out=$("$bai" session run --image "$image" -r cuda.device=1 -e GREETING=hello -- sh -c \
  "id -u; echo \$HOME; pwd; echo \$GREETING; for i in 0 1 2; do [ -c $work/nodes/bai-mock\$i ] && echo node\$i && echo x > $work/nodes/bai-mock\$i && echo written; done; touch /home/work/mine && echo home-writable") ||
  fail "the container session failed ($?): $out"
echo "$out"
[ "$(echo "$out" | sed -n 1p)" = "$uid" ] || fail "the container ran as uid $(echo "$out" | sed -n 1p), not the keypair's $uid"
[ "$(echo "$out" | sed -n 2p)" = /home/work ] || fail "HOME is not /home/work: $out"
[ "$(echo "$out" | sed -n 3p)" = /home/work ] || fail "the working dir is not /home/work: $out"
[ "$(echo "$out" | sed -n 4p)" = hello ] || fail "the request's env did not reach the container: $out"
[ "$(echo "$out" | grep -c '^node')" = 1 ] || fail "the container should see exactly its one granted node: $out"
echo "$out" | grep -q '^written$' || fail "the container cannot use its granted node: $out"
echo "$out" | grep -q '^home-writable$' || fail "the owner cannot write its working dir: $out"

# ---- exit codes pass through, the image's default command runs --------------------------
for code in 0 7; do
  "$bai" session run --image "$image" -- sh -c "exit $code" >/dev/null 2>&1 && rc=0 || rc=$?
  [ "$rc" = "$code" ] || fail "exit $code came back as $rc"
done
"$bai" session run --image "$image" -- sh -c 'kill -9 $$' >/dev/null 2>&1 && rc=0 || rc=$?
[ "$rc" = 137 ] || fail "a SIGKILLed command should end with 137, not $rc"

# ---- interactive: a terminal in a container, stdin streamed, exec ----------------------
drive() { python3 "$source_root/tests/e2e/pty_drive.py" "$@"; }
printf '%s\n' 'send echo $((6*7))\r' 'expect 42' 'resize 30 90' 'send stty size\r' 'expect 30 90' 'send exit 6\r' >"$work/steps"
out=$(drive "$work/steps" -- "$bai" session run -it --image "$image" -- sh) && rc=0 || rc=$?
[ "$rc" = 6 ] || fail "bai session run -it --image should exit with the shell's 6, not $rc: $out"
[ "$(printf 'one\ntwo\n' | "$bai" session run -i --image "$image" -- wc -l | tr -d ' ')" = 2 ] ||
  fail "stdin did not reach a container session whole"
id=$("$bai" session create --json --image "$image" -e FOO=bar -- sleep 300 | json "d['id']")
running() { [ "$("$bai" session info --json "$1" | json "d['status']")" = RUNNING ]; }
eventually 30 running "$id" || fail "the exec target is not RUNNING: $("$bai" session info "$id")"
out=$("$bai" session exec "$id" -- sh -c 'echo $FOO; id -u; exit 3') && rc=0 || rc=$?
[ "$rc" = 3 ] || fail "exec in a container should exit 3, not $rc"
[ "$out" = "$(printf 'bar\n%s' "$uid")" ] || fail "exec in a container saw '$out'"
"$bai" session destroy "$id" >/dev/null

# ---- logs -f streams while it runs -----------------------------------------------------
id=$("$bai" session create --json --image "$image" -- sh -c 'for i in 1 2 3; do echo line$i; sleep 0.5; done' | json "d['id']")
streamed=$(timeout 30 "$bai" session logs -f "$id") || fail "logs -f failed or did not end: $streamed"
[ "$(echo "$streamed" | tr '\n' ' ')" = "line1 line2 line3 " ] || fail "logs -f printed '$streamed'"

# ---- destroy: SIGTERM, then SIGKILL after the grace (2 s) ------------------------------
id=$("$bai" session create --json --image "$image" -- sh -c 'trap "" TERM; sleep 1000' | json "d['id']")
ended() { [ "$("$bai" session info --json "$1" | json "d['status']")" = TERMINATED ]; }
eventually 30 running "$id" || fail "the sleeper is not RUNNING: $("$bai" session info "$id")"
start=$SECONDS
"$bai" session destroy "$id" >/dev/null || fail "destroy failed"
eventually 15 ended "$id" || fail "destroy did not end the container: $("$bai" session info "$id")"
[ $((SECONDS - start)) -le 8 ] || fail "destroy took $((SECONDS - start)) s with a 2 s grace"

# ---- the memory limit kills a hog, and the status says so ------------------------------
id=$("$bai" session create --json --image "$image" -r mem=64m -- sh -c 'tail /dev/zero' | json "d['id']")
failed() { [ "$("$bai" session info --json "$1" | json "d['status']")" = ERROR ]; }
eventually 60 failed "$id" || fail "the memory hog did not end in ERROR: $("$bai" session info "$id")"
"$bai" session info --json "$id" | json "d['status_reason']" | grep -q "out of memory" ||
  fail "the hog's reason does not say out of memory: $("$bai" session info --json "$id")"

# ---- a missing image, an image outside the allow-list, an engine that is down -----------
id=$("$bai" session create --json --image bai-test/absent:1 -- true | json "d['id']")
eventually 30 failed "$id" || fail "a missing image did not end the session: $("$bai" session info "$id")"
reason=$("$bai" session info --json "$id" | json "d['status_reason']")
echo "$reason" | grep -q "image bai-test/absent:1 not present on agent $agent; pull policy never" ||
  fail "the missing image's reason is '$reason'"

"$bai" admin scaling-group update default --allowed-image 'bai-test/*' >/dev/null || fail "setting the allow-list failed"
"$bai" session run --image other/thing:1 -- true 2>"$work/stderr" && rc=0 || rc=$?
[ "$rc" != 0 ] && grep -q "image-not-allowed" "$work/stderr" || fail "an image outside the allow-list was not refused: $(cat "$work/stderr")"
"$bai" session run --image "$image" -- true >/dev/null || fail "an allowed image was refused"
"$bai" admin scaling-group update default --allowed-image '' >/dev/null || fail "clearing the allow-list failed"

"$bai" admin scaling-group create nodocker >/dev/null || fail "creating the scaling group failed"
sed -e "s|^id = .*|id = \"down-agent\"|" -e "s|^rpc-listen-addr = .*|rpc-listen-addr = \"127.0.0.1:0\"|" \
    -e "s|^state-dir = .*|state-dir = \"$work/state-down\"|" -e "s|^engine-socket = .*|engine-socket = \"$work/no-engine.sock\"|" \
    -e "s|^\[agent\]$|[agent]\nscaling-group = \"nodocker\"|" "$etc/agent.toml" >"$work/agent-down.toml"
"$env_dir/bin/bai-agent" --config "$work/agent-down.toml" >"$work/agent-down.log" 2>&1 &
extra_pids+=($!)
grep_log() { grep -q "container runtime unavailable" "$work/agent-down.log"; }
eventually 20 grep_log || fail "an agent whose engine is down does not say so in its log"
alive_down() { [ "$("$bai" admin agent list --json | json "[a['status'] for a in d if a['id'] == 'down-agent']")" = "['ALIVE']" ]; }
eventually 20 alive_down || fail "the agent with no engine is not ALIVE (it should serve process sessions)"
"$bai" session run --scaling-group nodocker --image "$image" -- true 2>"$work/stderr" && rc=0 || rc=$?
[ "$rc" != 0 ] && grep -q "no-runtime" "$work/stderr" && grep -q "unreachable" "$work/stderr" ||
  fail "a container session in a group whose engine is down was not refused with the reason: $(cat "$work/stderr")"
"$bai" session run --scaling-group nodocker -r cpu=1 -- true >/dev/null || fail "the agent with no engine does not run process sessions"

# ---- kill -9 of the agent with five containers running ----------------------------------
# Three run on; two end while no agent listens (their exits and late output must arrive):
# the long ones first, then the short ones, and the agent is killed as soon as those run.
ids=()
for i in 3 4 5 1 2; do
  if [ "$i" -le 2 ]; then cmd="echo before-$i; sleep 8; echo after-$i; exit $((10 + i))"; else cmd="echo before-$i; sleep 1000"; fi
  ids[$((i - 1))]=$("$bai" session create --json --image "$image" -- sh -c "$cmd" | json "d['id']")
  eventually 60 running "${ids[$((i - 1))]}" || fail "session ${ids[$((i - 1))]} is not RUNNING: $("$bai" session info "${ids[$((i - 1))]}")"
done
stop_agent -KILL
sleep 10
start_agent
for i in 0 1; do
  eventually 30 ended "${ids[$i]}" || fail "a container that ended during the outage was not reported: $("$bai" session info "${ids[$i]}")"
  [ "$("$bai" session info --json "${ids[$i]}" | json "d['exit_code']")" = $((11 + i)) ] || fail "its exit code was lost"
  # (The agent answers 503 "starting" until its start-up ends.)
  logs_are() { [ "$("$bai" session logs "$1" 2>/dev/null | tr '\n' ' ')" = "$2" ]; }
  eventually 20 logs_are "${ids[$i]}" "before-$((i + 1)) after-$((i + 1)) " ||
    fail "its output around the outage is wrong: '$("$bai" session logs "${ids[$i]}")'"
done
for i in 2 3 4; do
  running "${ids[$i]}" || fail "session ${ids[$i]} was not re-adopted: $("$bai" session info "${ids[$i]}")"
done
"$bai" session destroy "${ids[2]}" "${ids[3]}" "${ids[4]}" >/dev/null || fail "destroying the adopted sessions failed"
for i in 2 3 4; do eventually 20 ended "${ids[$i]}" || fail "adopted session ${ids[$i]} did not end on destroy"; done

# ---- nothing left behind --------------------------------------------------------------
no_containers() { [ -z "$(our_containers "$agent")" ]; }
eventually 20 no_containers || fail "containers left behind: $(our_containers "$agent")"
all_free() { [ "$("$bai" admin agent list --json | json "sorted({s['used'] for a in d for s in a['slots'].values()})")" = "['0']" ]; }
eventually 20 all_free || fail "slots still used after every session ended: $("$bai" admin agent list)"
echo "container e2e: all checks passed"
