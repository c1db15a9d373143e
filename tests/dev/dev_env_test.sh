#!/usr/bin/env bash
# Two dev environments side by side from one build (scripts/install-dev.sh --build-dir):
# distinct ports and files, both serve, a session runs in each; a re-run keeps the
# keypair, ports and database; deleting one leaves the other working; delete-dev.sh
# refuses what is not an environment.
# Usage: dev_env_test.sh BUILD_DIR SOURCE_ROOT
set -euo pipefail
build=$(realpath "$1") source_root=$(realpath "$2")
install_dev=$source_root/scripts/install-dev.sh
delete_dev=$source_root/scripts/delete-dev.sh
tmp=$(realpath "$(mktemp -d)")
envs=$tmp/envs

cleanup() {
  local marker pid exe pids cgroups
  pids=$(cat "$tmp/pids" "$envs"/*/run/*.pid 2>/dev/null || true)
  cgroups=$(cat "$tmp/cgroups" 2>/dev/null; sed -n 's/^cgroup_parent=//p' "$envs"/*/.bai-dev-env 2>/dev/null || true)
  for marker in "$envs"/*/.bai-dev-env; do
    [ -f "$marker" ] || continue
    "$delete_dev" -e "$(basename "$(dirname "$marker")")" --install-path "$envs" >/dev/null 2>&1 || true
  done
  # Whatever delete-dev left running (if it is broken), by pid file and executable.
  for pid in $pids; do
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
    [[ $exe == "$envs"/* ]] && kill -KILL "$pid" 2>/dev/null || true
  done
  for cgroup in $cgroups; do
    [[ $cgroup =~ ^bai-dev-(alpha|beta)-[0-9a-f]{8}$ ]] || continue
    find /sys/fs/cgroup/"$cgroup" /sys/fs/cgroup/*/"$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# Every daemon started and cgroup named, for the cleanup even after their files are gone.
remember_pids() {
  cat "$envs"/*/run/*.pid >>"$tmp/pids" 2>/dev/null || true
  sed -n 's/^cgroup_parent=//p' "$envs"/*/.bai-dev-env >>"$tmp/cgroups" 2>/dev/null || true
}
step() { echo "== $*"; }
marker_get() { sed -n "s/^$2=//p" "$envs/$1/.bai-dev-env"; }
api() {  # api ENV METHOD TARGET [BODY]
  local env=$1
  shift
  BAI_ENDPOINT=http://127.0.0.1:$(marker_get "$env" manager_port) \
    python3 "$source_root/scripts/bai-api.py" --keypair "$envs/$env/etc/admin.keypair" "$@"
}
json_field() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
listens_on_loopback_only() {  # PORT: listened on (by one socket per server thread), at 127.0.0.1 only
  local hex
  hex=$(printf '%04X' "$1")
  [ "$(awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { print $2 }' /proc/net/tcp /proc/net/tcp6 | sort -u)" = "0100007F:$hex" ]
}
# run_session ENV TEXT [RESOURCES_JSON]: a session echoing TEXT runs and ends with exit 0.
run_session() {
  local env=$1 text=$2 resources=${3:-'{"cpu": 1, "mem": "256m"}'} created id final logs
  created=$(api "$env" POST /v1/sessions "{\"name\": \"t\", \"command\": [\"sh\", \"-c\", \"echo $text; echo limits=\$BAI_MOCK_CUDA_MEM_LIMITS\"], \"resources\": $resources}") ||
    fail "$env: POST /v1/sessions: $created"
  id=$(json_field "$created" id)
  final=$(api "$env" GET "/v1/sessions/$id?wait=20") || fail "$env: GET session $id"
  [ "$(json_field "$final" status)" = TERMINATED ] && [ "$(json_field "$final" exit_code)" = 0 ] ||
    fail "$env: session did not end well: $final"
  logs=$(api "$env" GET "/v1/sessions/$id/logs") || fail "$env: no logs for $id"
  [[ $logs == *"$text"* ]] || fail "$env: session output lacks '$text': $logs"
  echo "$id $logs"
}
running_pid() {  # running_pid ENV DAEMON: the pid from its pid file, if that process runs the env's binary
  local pid
  pid=$(cat "$envs/$1/run/$2.pid" 2>/dev/null) || return 1
  [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$envs/$1/bin/bai-$2" ] && echo "$pid"
}

step "install and start two environments from $build"
"$install_dev" -e alpha --install-path "$envs" --build-dir "$build" --enable-cuda-mock --demo >"$tmp/alpha.out" 2>&1 ||
  { cat "$tmp/alpha.out"; fail "install-dev alpha --demo"; }
remember_pids
"$install_dev" -e beta --install-path "$envs" --build-dir "$build" --start >"$tmp/beta.out" 2>&1 ||
  { cat "$tmp/beta.out"; fail "install-dev beta --start"; }
remember_pids
grep -q "hello from session" "$tmp/alpha.out" || { cat "$tmp/alpha.out"; fail "the demo shows no session output"; }
grep -q "bai-manager --config $envs/alpha/etc/manager.toml" "$tmp/alpha.out" || fail "install-dev does not print how to start the manager"
grep -q "bai-agent --config $envs/alpha/etc/agent.toml" "$tmp/alpha.out" || fail "install-dev does not print how to start the agent"

step "distinct ports, loopback only, distinct files"
ports=()
for env in alpha beta; do
  for key in manager_port agent_rpc_port storage_manager_port storage_client_port; do
    port=$(marker_get "$env" "$key")
    [[ $port =~ ^[0-9]+$ ]] || fail "$env: no $key in its marker"
    listens_on_loopback_only "$port" || fail "$env: $key $port is not listened on at 127.0.0.1 only"
    ports+=("$port")
  done
done
[ "$(printf '%s\n' "${ports[@]}" | sort -u | wc -l)" = 8 ] || fail "ports are not distinct: ${ports[*]}"
for env in alpha beta; do
  for f in etc/admin.keypair etc/cluster-token; do
    [ "$(stat -c %a "$envs/$env/$f")" = 600 ] || fail "$env/$f is not mode 0600"
  done
  for f in etc/manager.toml etc/agent.toml var/manager.db env.sh log/manager.log log/agent.log; do
    [ -s "$envs/$env/$f" ] || fail "$env/$f is missing"
  done
  grep -q "127.0.0.1:$(marker_get "$env" manager_port)" "$envs/$env/env.sh" || fail "$env/env.sh has the wrong endpoint"
  # Relocatable: the installed binaries find bai's libraries through their rpath alone.
  env -i PATH=/usr/bin:/bin "$envs/$env/bin/bai-manager" --version >/dev/null || fail "$env: bin/bai-manager does not run without LD_LIBRARY_PATH"
  env -i PATH=/usr/bin:/bin "$envs/$env/bin/bai-agent" --help >/dev/null || fail "$env: bin/bai-agent does not run without LD_LIBRARY_PATH"
done
cmp -s "$envs/alpha/etc/admin.keypair" "$envs/beta/etc/admin.keypair" && fail "both environments have the same keypair"
cmp -s "$envs/alpha/etc/cluster-token" "$envs/beta/etc/cluster-token" && fail "both environments have the same cluster token"
grep -q "mock-fractional.toml" "$envs/alpha/etc/agent.toml" && [ -f "$envs/alpha/etc/mock-fractional.toml" ] ||
  fail "alpha (--enable-cuda-mock) has no mock-fractional.toml"
grep -q 'allow-plugins = \["cpu"\]' "$envs/beta/etc/agent.toml" || fail "beta does not load the cpu plugin only"
[ "$(. "$envs/beta/env.sh" && echo "$BAI_ACCESS_KEY")" = "$(sed -n 's/^access-key = "\(.*\)"$/\1/p' "$envs/beta/etc/admin.keypair")" ] ||
  fail "env.sh does not give BAI_ACCESS_KEY"

step "both serve: healthz, a registered agent, a session"
for env in alpha beta; do
  curl -fsS "http://127.0.0.1:$(marker_get "$env" manager_port)/healthz" | grep -q '"ok"' || fail "$env: /healthz"
  agents=$(api "$env" GET /v1/agents) || fail "$env: GET /v1/agents"
  [ "$(python3 -c 'import json, sys; print(",".join(a["id"] + ":" + a["status"] for a in json.loads(sys.argv[1])))' "$agents")" = "$env-agent:ALIVE" ] ||
    fail "$env: expected only $env-agent ALIVE: $agents"
done
api alpha GET /v1/agents/alpha-agent | grep -q '"cuda.shares"' || fail "alpha's agent has no cuda.shares"
api beta GET /v1/agents/beta-agent | grep -q '"cuda\.' && fail "beta's agent has cuda slots"
alpha_out=$(run_session alpha alpha-works '{"cpu": 1, "mem": "256m", "cuda.shares": "0.5"}')
[[ $alpha_out == *"limits=GPU-"* ]] || fail "alpha's session got no GPU shares: $alpha_out"
beta_session=$(run_session beta beta-works)
beta_session=${beta_session%% *}

step "a re-run of a running environment is refused without --start and keeps everything with it"
cp "$envs/beta/etc/admin.keypair" "$tmp/beta.keypair"
beta_ports="$(marker_get beta manager_port) $(marker_get beta agent_rpc_port)"
old_manager=$(running_pid beta manager) || fail "beta's manager is not running"
"$install_dev" -e beta --install-path "$envs" --build-dir "$build" >"$tmp/rerun.out" 2>&1 &&
  fail "install-dev re-ran over a running environment without --start"
grep -q "is running" "$tmp/rerun.out" || { cat "$tmp/rerun.out"; fail "the refusal does not say why"; }
[ "$(running_pid beta manager)" = "$old_manager" ] || fail "the refused re-run touched beta's manager"
"$install_dev" -e beta --install-path "$envs" --build-dir "$build" --start >"$tmp/rerun.out" 2>&1 ||
  { cat "$tmp/rerun.out"; fail "install-dev beta --start (re-run)"; }
remember_pids
cmp -s "$envs/beta/etc/admin.keypair" "$tmp/beta.keypair" || fail "the re-run changed beta's keypair"
[ "$(marker_get beta manager_port) $(marker_get beta agent_rpc_port)" = "$beta_ports" ] || fail "the re-run changed beta's ports"
new_manager=$(running_pid beta manager) || fail "beta's manager is not running after the re-run"
[ "$new_manager" != "$old_manager" ] || fail "the re-run with --start did not restart beta's manager"
readlink "/proc/$old_manager/exe" >/dev/null 2>&1 && fail "beta's old manager $old_manager still runs"
api beta GET "/v1/sessions/$beta_session" | grep -q TERMINATED || fail "the re-run lost beta's database"

step "a port in use or claimed is refused; no id gives a random one"
"$install_dev" -e gamma --install-path "$envs" --build-dir "$build" --manager-port "$(marker_get beta manager_port)" \
  >"$tmp/gamma.out" 2>&1 && fail "install-dev took beta's manager port"
[ ! -e "$envs/gamma" ] || fail "a refused install left $envs/gamma"
coproc listener { exec python3 -c 'import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(60)'; }
read -r busy_port <&"${listener[0]}"
"$install_dev" -e gamma --install-path "$envs" --build-dir "$build" --agent-rpc-port "$busy_port" \
  >"$tmp/gamma.out" 2>&1 && fail "install-dev took port $busy_port, which is in use"
grep -q "port $busy_port is in use" "$tmp/gamma.out" || { cat "$tmp/gamma.out"; fail "the refusal does not say the port is in use"; }
# shellcheck disable=SC2154  # coproc sets listener_PID
kill "$listener_PID"
"$install_dev" --install-path "$envs" --build-dir "$build" >"$tmp/random.out" 2>&1 || { cat "$tmp/random.out"; fail "install-dev without -e"; }
random_id=$(sed -n "s/^bai dev environment '\([^']*\)' installed.*/\1/p" "$tmp/random.out")
[[ $random_id =~ ^[a-z0-9]{8}$ ]] || fail "no random 8-character id: '$random_id'"
"$install_dev" -e gamma --install-path "$envs" --build-dir "$build" --agent-rpc-port "$(marker_get "$random_id" agent_rpc_port)" \
  >"$tmp/gamma.out" 2>&1 && fail "install-dev took the agent port of environment $random_id (installed, not running)"
grep -q "claimed by environment '$random_id'" "$tmp/gamma.out" || { cat "$tmp/gamma.out"; fail "the refusal does not name the claim"; }
"$install_dev" -e Bad_Id --install-path "$envs" --build-dir "$build" >/dev/null 2>&1 && fail "install-dev took an invalid id"
"$delete_dev" -e "$random_id" --install-path "$envs" >/dev/null || fail "delete-dev $random_id"

step "delete alpha; beta keeps working"
alpha_pids="$(running_pid alpha manager) $(running_pid alpha agent)"
alpha_cgroup=$(marker_get alpha cgroup_parent)
[[ $alpha_cgroup == bai-dev-alpha-* ]] || fail "alpha's marker names no cgroup parent of its own: '$alpha_cgroup'"
grep -q "cgroup-parent = \"$alpha_cgroup\"" "$envs/alpha/etc/agent.toml" || fail "alpha's agent.toml has another cgroup parent"
[ "$(echo "$alpha_pids" | wc -w)" = 2 ] || fail "alpha's daemons are not both running: $alpha_pids"
"$delete_dev" -e alpha --install-path "$envs" >"$tmp/delete.out" 2>&1 || { cat "$tmp/delete.out"; fail "delete-dev alpha"; }
for pid in $alpha_pids; do  # a zombie (not reaped by an init that does not) has no exe
  readlink "/proc/$pid/exe" >/dev/null 2>&1 && fail "alpha's daemon $pid still runs"
done
[ ! -e "$envs/alpha" ] || fail "$envs/alpha is still there"
for cgroup in /sys/fs/cgroup/"$alpha_cgroup" /sys/fs/cgroup/*/"$alpha_cgroup"; do
  [ ! -e "$cgroup" ] || fail "alpha's cgroup $cgroup is still there"
done
curl -fsS "http://127.0.0.1:$(marker_get beta manager_port)/healthz" >/dev/null || fail "beta stopped answering"
run_session beta beta-still-works >/dev/null

step "delete-dev refuses unknown, invalid and foreign ids"
"$delete_dev" -e nosuchenv --install-path "$envs" >/dev/null 2>&1 && fail "delete-dev accepted an unknown id"
"$delete_dev" -e ../envs --install-path "$envs" >/dev/null 2>&1 && fail "delete-dev accepted '../envs'"
"$delete_dev" --install-path "$envs" >/dev/null 2>&1 && fail "delete-dev ran without an id"
mkdir "$envs/notanenv"
"$delete_dev" -e notanenv --install-path "$envs" >/dev/null 2>&1 && fail "delete-dev accepted a directory without a marker"
[ -d "$envs/notanenv" ] && [ -d "$envs/beta" ] || fail "a refused delete-dev removed something"

step "delete beta"
"$delete_dev" -e beta --install-path "$envs" >/dev/null || fail "delete-dev beta"
[ "$(cd "$envs" && ls -A | sort | tr '\n' ' ')" = ".lock notanenv " ] || fail "left in $envs: $(ls -A "$envs")"
echo "PASS"
