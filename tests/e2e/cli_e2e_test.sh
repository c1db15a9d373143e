#!/usr/bin/env bash
# End to end through the bai CLI: a dev environment installed from this build into a
# temporary directory (scripts/install-dev.sh --enable-cuda-mock --start: the manager and
# an agent with fractional mock GPUs), two more agents (discrete mock GPUs; a vendor's
# acme.device), and sessions of every kind run and checked through `bai`; then every slot
# is free again and scripts/delete-dev.sh removes the environment.
#
# usage: cli_e2e_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd) source_root=$(cd "$2" && pwd)
work=$(mktemp -d /tmp/bai-e2e-XXXXXX)
env_id=e2e-$$
env_dir=$work/envs/$env_id
extra_pids=()

fail() {
  echo "FAIL: $*" >&2
  for log in "$env_dir"/log/*.log "$work"/agent-*.log; do
    [ -f "$log" ] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }
  done
  exit 1
}
cleanup() {
  for pid in "${extra_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -d "$env_dir" ]; then "$source_root/scripts/delete-dev.sh" -e "$env_id" --install-path "$work/envs" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=e2e_lib.sh
. "$source_root/tests/e2e/e2e_lib.sh"

# ---- the environment ------------------------------------------------------------------
"$source_root/scripts/install-dev.sh" -e "$env_id" --install-path "$work/envs" --build-dir "$build" \
  --enable-cuda-mock --start >"$work/install.log" 2>&1 || { cat "$work/install.log" >&2; fail "install-dev.sh failed"; }
# shellcheck disable=SC1091
. "$env_dir/env.sh"
bai=$env_dir/bin/bai
[ "$(command -v bai)" = "$bai" ] || fail "env.sh does not put the environment's bai first on PATH"

# Two more agents from the environment's own agent config.
start_agent() {  # NAME MOCK_CONFIG
  local name=$1 config=$work/agent-$1.toml
  cp "$source_root/configs/accelerator/$2" "$work/$2"
  sed -e "s|^id = .*|id = \"$name\"|" \
      -e "s|^rpc-listen-addr = .*|rpc-listen-addr = \"127.0.0.1:0\"|" \
      -e "s|^state-dir = .*|state-dir = \"$work/state-$name\"|" \
      -e "s|^cgroup-parent = .*|cgroup-parent = \"bai-e2e-$name-$$\"|" \
      -e "s|^config_file = .*|config_file = \"$work/$2\"|" \
      "$env_dir/etc/agent.toml" >"$config"
  grep -q "config_file = \"$work/$2\"" "$config" || fail "the environment's agent.toml has no mock config to replace"
  "$env_dir/bin/bai-agent" --config "$config" >"$work/agent-$name.log" 2>&1 &
  extra_pids+=($!)
}
start_agent gpu mock-4xa100.toml
start_agent acme mock-acme.toml
alive() { [ "$("$bai" admin agent list --json | json "sorted(a['id'] for a in d if a['status'] == 'ALIVE')")" = "$1" ]; }
eventually 20 alive "$(python3 -c "print(sorted(['acme', 'gpu', '$env_id-agent']))")" || fail "the three agents are not ALIVE: $("$bai" admin agent list)"

table=$("$bai" admin agent list)
echo "$table"
echo "$table" | grep -Eq "cuda\.shares +0 " || fail "the agent table lacks the fractional agent's cuda.shares: $table"
echo "$table" | grep -Eq "acme\.device +0 +2 +2 " || fail "the agent table lacks acme.device 0/2/2: $table"
echo "$table" | grep -Eq 'mem +0 +[0-9.]+[kmgt] ' || fail "memory is not shown in binary units: $table"

# ---- a whole GPU ----------------------------------------------------------------------
out=$("$bai" session run -r cuda.device=1 -- sh -c 'echo "gpus=$BAI_MOCK_CUDA_DEVICES count=$BAI_MOCK_CUDA_DEVICE_COUNT"') ||
  fail "the whole-GPU session failed ($?): $out"
echo "$out" | grep -Eq '^gpus=GPU-[0-9a-f-]+ count=1$' || fail "a whole-GPU session should see exactly one GPU: $out"

# ---- whose session it is ----------------------------------------------------------------
# It runs as the keypair's own uid, in its sandbox: never root, and nothing of the node's
# secrets in sight.
uid=$("$bai" admin keypair info "$BAI_ACCESS_KEY" --json | json "d['uid']")
[ "$uid" -ge 200000 ] || fail "the keypair's uid $uid is not one of the session range"
out=$("$bai" session run -r cpu=1 -- sh -c "id -u; echo \$HOME; cat '$env_dir/etc/admin.keypair' 2>/dev/null | wc -c; touch /usr/x 2>/dev/null || echo ro") ||
  fail "the identity session failed ($?): $out"
[ "$(echo "$out" | sed -n 1p)" = "$uid" ] || fail "the session ran as uid $(echo "$out" | sed -n 1p), not the keypair's $uid"
[ "$(echo "$out" | sed -n 2p)" = /home/work ] || fail "the session's HOME is not /home/work: $out"
[ "$(echo "$out" | sed -n 3p)" = 0 ] || fail "the session read the admin keypair: $out"
[ "$(echo "$out" | sed -n 4p)" = ro ] || fail "the session could write to the host's /usr: $out"

# ---- 0.5 + 0.5 shares on one device ---------------------------------------------------
ids=()
for i in 1 2; do
  ids+=("$("$bai" session create --json -r cuda.shares=0.5 -- sh -c 'echo "mem=$BAI_MOCK_CUDA_MEM_LIMITS proc=$BAI_MOCK_CUDA_PROC_LIMITS"; sleep 60' | json "d['id']")")
done
running() { [ "$("$bai" session info --json "$1" | json "d['status']")" = RUNNING ]; }
for id in "${ids[@]}"; do eventually 20 running "$id" || fail "shares session $id is not RUNNING: $("$bai" session info "$id")"; done
holders=$("$bai" admin agent alloc-map --json "$env_id-agent" |
  json "[sorted(dev['sessions'].items()) for m in d['maps'] if m['slot'] == 'cuda.shares' for dev in m['devices'] if dev['sessions']]")
[ "$holders" = "[[('${ids[0]}', '0.5'), ('${ids[1]}', '0.5')]]" ] ||
  [ "$holders" = "[[('${ids[1]}', '0.5'), ('${ids[0]}', '0.5')]]" ] || fail "0.5 + 0.5 should share one device: $holders"
has_limits() { "$bai" session logs "$1" | grep -Eq '^mem=GPU-[0-9a-f-]+:[0-9]+ proc=GPU-[0-9a-f-]+:[0-9]+$'; }
for id in "${ids[@]}"; do eventually 10 has_limits "$id" || fail "session $id did not see its MPS-style limits: $("$bai" session logs "$id")"; done
[ "$("$bai" session logs "${ids[0]}" | cut -d: -f1)" = "$("$bai" session logs "${ids[1]}" | cut -d: -f1)" ] ||
  fail "both halves should be limited on the same GPU"
"$bai" session destroy "${ids[@]}" >/dev/null || fail "destroy failed"

# ---- a vendor's slot ------------------------------------------------------------------
out=$("$bai" session run -r acme.device=1 -- sh -c 'echo "acme=$BAI_MOCK_ACME_DEVICES"; echo to-stderr >&2; exit 7' 2>"$work/stderr") && rc=0 || rc=$?
[ "$rc" = 7 ] || fail "bai session run should exit with the command's code 7, not $rc"
echo "$out" | grep -Eq '^acme=ACME-NPU-000[12]$' || fail "the acme session did not see one NPU: $out"
grep -q '^to-stderr$' "$work/stderr" || fail "the command's stderr was not streamed to bai's"

# ---- logs longer than one page (1 MiB), and --tail in lines ----------------------------
long=$("$bai" session create --json -r cpu=1 -- seq 1 300000 | json "d['id']")
ended() { [ "$("$bai" session info --json "$1" | json "d['status']")" = TERMINATED ]; }
eventually 30 ended "$long" || fail "the long-log session did not end: $("$bai" session info "$long")"
"$bai" session logs "$long" >"$work/long.log" || fail "session logs failed ($?)"
[ "$(wc -l <"$work/long.log")" = 300000 ] && [ "$(tail -n 1 "$work/long.log")" = 300000 ] ||
  fail "session logs should print all 300000 lines (1.9 MB), got $(wc -c <"$work/long.log") bytes ending '$(tail -c 20 "$work/long.log")'"
[ "$("$bai" session logs --tail 3 "$long" | tr '\n' ' ')" = "299998 299999 300000 " ] ||
  fail "--tail 3 should print the last 3 lines: '$("$bai" session logs --tail 3 "$long")'"
[ "$("$bai" session logs --tail 200000 "$long" | wc -l)" = 200000 ] || fail "--tail 200000 should page back past 1 MiB"

# ---- requests that cannot run ---------------------------------------------------------
"$bai" session run -r cpu -- true 2>"$work/stderr" && rc=0 || rc=$?
[ "$rc" = 2 ] || fail "a malformed -r should be a usage error (2), not $rc: $(cat "$work/stderr")"
# Refused at submission or failed on the agent before it started: either way its logs
# were never there to miss, and only the reason is printed.
"$bai" session run -r cpu=0.5 -- true 2>"$work/stderr" && rc=0 || rc=$?
[ "$rc" = 125 ] || fail "a session that never started should end run with 125, not $rc"
! grep -q "logs could not be read" "$work/stderr" || fail "run blamed the logs of a session that never started: $(cat "$work/stderr")"
stuck=$("$bai" session create --json -r cuda.device=5 -- true | json "d['id']")
reason() { "$bai" session info --json "$stuck" | json "d['status'] + ': ' + d['status_reason']"; }
has_reason() { reason | grep -Eq '^PENDING: .*cuda\.device'; }
eventually 10 has_reason || fail "a request that fits nowhere should wait naming cuda.device: $(reason)"
"$bai" session destroy "$stuck" >/dev/null
"$bai" session run -r gpu=1 -- true 2>"$work/stderr" && rc=0 || rc=$?
[ "$rc" = 125 ] || fail "an unknown slot should end run with 125, not $rc"
grep -q "unknown-slot" "$work/stderr" || fail "the unknown slot's error is not shown: $(cat "$work/stderr")"
"$bai" session info no-such-session 2>/dev/null && rc=0 || rc=$?
[ "$rc" = 1 ] || fail "info of an unknown session should exit 1, not $rc"
BAI_ENDPOINT=http://127.0.0.1:1 "$bai" session list 2>/dev/null && rc=0 || rc=$?
[ "$rc" = 3 ] || fail "an unreachable manager should exit 3, not $rc"

# ---- everything is free again ---------------------------------------------------------
all_free() { [ "$("$bai" admin agent list --json | json "sorted({s['used'] for a in d for s in a['slots'].values()})")" = "['0']" ]; }
eventually 20 all_free || fail "slots are still used after every session ended: $("$bai" admin agent list)"

# ---- delete ---------------------------------------------------------------------------
for pid in "${extra_pids[@]}"; do kill "$pid"; done
extra_pids=()
"$source_root/scripts/delete-dev.sh" -e "$env_id" --install-path "$work/envs" >"$work/delete.log" 2>&1 ||
  { cat "$work/delete.log" >&2; fail "delete-dev.sh failed"; }
[ ! -e "$env_dir" ] || fail "delete-dev.sh left $env_dir"
echo "cli e2e: all checks passed"
