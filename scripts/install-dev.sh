#!/usr/bin/env bash
# Installs a bai development environment: a manager and an agent with their own
# binaries, configs, database, keypair, ports, state and logs under DIR/ENV_ID, side by
# side with any others. Run with --help for the options.
set -euo pipefail

source_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/dev-env-lib.sh
source "$source_root/scripts/dev-env-lib.sh"

usage() {
  cat <<EOF
usage: ${0##*/} [-e ENV_ID] [--install-path DIR] [--enable-cuda] [--enable-cuda-fractional]
                [--enable-cuda-mock] [--enable-cuda-mig-mock] [--enable-rocm]
                [--enable-containers[=SOCKET]]
                [--manager-port N] [--agent-rpc-port N] [--build-dir DIR] [--jobs N]
                [--start] [--demo]

Builds bai once and installs it into DIR/ENV_ID with everything a manager, an agent and a
storage proxy (one vfs volume, for `bai vfolder`) need, listening on 127.0.0.1 only.
Several environments live side by side.

  -e, --env ENV_ID        environment id, [a-z0-9][a-z0-9-]{0,31}; default: 8 random
                          characters
  --install-path DIR      where environments live (default: \$XDG_DATA_HOME/bai-dev,
                          i.e. $(bai_dev_default_install_path))
  --enable-cuda           load the cuda-device plugin (NVIDIA GPUs, whole or MIG)
  --enable-cuda-fractional
                          load the cuda-fractional plugin (cuda.shares)
  --enable-cuda-mock      load the mock plugin with configs/accelerator/mock-fractional.toml:
                          three fake GPUs shared in cuda.shares, no NVIDIA driver needed
  --enable-cuda-mig-mock  load the mock plugin with configs/accelerator/mock-2gpu-mig.toml:
                          one whole fake GPU and one in MIG slices
  --enable-rocm           load the rocm plugin (AMD GPUs)
                          Without any of these the agent loads the cpu plugin only. At
                          most one of the cuda options: they all provide the cuda.* slots.
  --enable-containers[=SOCKET]
                          let the agent run sessions in containers (bai session run --image)
                          through the Docker Engine API at SOCKET (Docker, or
                          `podman system service`; default: /run/docker.sock, else
                          /run/podman/podman.sock)
  --manager-port N        the manager's API port (default: a free one, kept on re-runs)
  --agent-rpc-port N      the agent's RPC port (default: a free one, kept on re-runs)
  --build-dir DIR         install this existing meson build as it is (no build step, no
                          package check); default: configure and build
                          $source_root/build-dev (release)
  --jobs N                ninja -j N for the build (default: ninja's)
  --start                 start the manager, then the agent, in the background, and wait
                          until the manager answers and the agent has registered
  --demo                  --start, then run a first session (with -r cuda.shares=0.5 when
                          the environment has cuda.shares) and show the agents and its output;
                          then upload a file into a folder, run a session that reads it and
                          writes a result there, and download the result
  -h, --help              this text

Layout of DIR/ENV_ID: bin/ and lib/ (the installed build; binaries find bai's libraries
through their rpath), etc/ (manager.toml, agent.toml, storage-proxy.toml; cluster-token,
storage-token and admin.keypair, all 0600; mock configs), var/ (the SQLite database, the
agent's state), volumes/default (the storage proxy's volume), run/ (pid and ready files),
log/ (daemon logs), env.sh (source it to use the environment).

Re-running with the same ENV_ID reinstalls the binaries and rewrites the configs and
env.sh, and keeps the database, the admin keypair, the tokens, the folders and the ports.
If that environment's daemons are running, a re-run refuses unless --start is given,
in which case they are stopped, reinstalled and started again.

Remove an environment with: scripts/delete-dev.sh -e ENV_ID [--install-path DIR]
EOF
}

env_id='' install_path='' build_dir='' jobs='' manager_port='' agent_port=''
start=false demo=false
enable_cuda=false enable_cuda_fractional=false enable_cuda_mock=false enable_cuda_mig_mock=false enable_rocm=false
enable_containers=false engine_socket=
need_value() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"; }
while [ $# -gt 0 ]; do
  case $1 in
    -e|--env) need_value "$@"; env_id=$2; shift ;;
    --install-path) need_value "$@"; install_path=$2; shift ;;
    --build-dir) need_value "$@"; build_dir=$2; shift ;;
    --jobs) need_value "$@"; jobs=$2; shift ;;
    --manager-port) need_value "$@"; manager_port=$2; shift ;;
    --agent-rpc-port) need_value "$@"; agent_port=$2; shift ;;
    --enable-cuda) enable_cuda=true ;;
    --enable-cuda-fractional) enable_cuda_fractional=true ;;
    --enable-cuda-mock) enable_cuda_mock=true ;;
    --enable-cuda-mig-mock) enable_cuda_mig_mock=true ;;
    --enable-rocm) enable_rocm=true ;;
    --enable-containers) enable_containers=true ;;
    --enable-containers=*) enable_containers=true; engine_socket=${1#*=} ;;
    --start) start=true ;;
    --demo) demo=true; start=true ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done

# ---- checks before anything is written ------------------------------------------------
if [ -n "$env_id" ] && ! bai_dev_valid_id "$env_id"; then
  die "invalid environment id '$env_id': use [a-z0-9][a-z0-9-]{0,31}"
fi
for port_var in manager_port agent_port; do
  port=${!port_var}
  if [ -n "$port" ] && { ! [[ $port =~ ^[1-9][0-9]{0,4}$ ]] || ((port > 65535)); }; then
    die "invalid port '$port'"
  fi
done
[ -z "$manager_port" ] || [ "$manager_port" != "$agent_port" ] || die "the manager and the agent need different ports"
[ -z "$jobs" ] || [[ $jobs =~ ^[1-9][0-9]*$ ]] || die "invalid --jobs '$jobs'"
cuda_providers=0
for flag in $enable_cuda $enable_cuda_fractional $enable_cuda_mock $enable_cuda_mig_mock; do
  [ "$flag" = false ] || cuda_providers=$((cuda_providers + 1))
done
((cuda_providers <= 1)) || die "choose one of --enable-cuda, --enable-cuda-fractional, --enable-cuda-mock and --enable-cuda-mig-mock: each provides the cuda.* slots"

install_path=$(realpath -m "${install_path:-$(bai_dev_default_install_path)}")
if [ -n "$build_dir" ]; then
  build_dir=$(realpath -m "$build_dir")
  [ -f "$build_dir/meson-private/install.dat" ] || die "$build_dir is not a configured meson build"
fi

# Which plugins the agent loads, and the mock config it gets.
plugins=(cpu) mock_config=
$enable_cuda && plugins+=(cuda-device)
$enable_cuda_fractional && plugins+=(cuda-fractional)
$enable_cuda_mock && { plugins+=(mock); mock_config=mock-fractional.toml; }
$enable_cuda_mig_mock && { plugins+=(mock); mock_config=mock-2gpu-mig.toml; }
$enable_rocm && plugins+=(rocm)

# ---- the build ---------------------------------------------------------------------------
if [ -z "$build_dir" ]; then
  "$source_root/scripts/install-deps.sh"
  build_dir=$source_root/build-dev
  if [ ! -f "$build_dir/build.ninja" ]; then
    note "configuring $build_dir (release, without tests and benchmarks)"
    meson setup "$build_dir" "$source_root" --buildtype=release -Dtests=false -Dbenchmarks=false
  fi
  note "building $build_dir"
  ninja -C "$build_dir" ${jobs:+-j "$jobs"}
fi

# ---- the environment's directory, id and ports (under a lock: ports are claimed in markers)
mkdir -p "$install_path"
exec 9>"$install_path/.lock"
flock 9

if [ -z "$env_id" ]; then
  alphabet=abcdefghijklmnopqrstuvwxyz0123456789
  while :; do
    env_id=
    for byte in $(od -An -tu1 -N8 /dev/urandom); do env_id+=${alphabet:byte % 36:1}; done
    [ -e "$install_path/$env_id" ] || break
  done
fi
env_dir=$install_path/$env_id

if [ -e "$env_dir" ]; then
  [ -f "$env_dir/$BAI_DEV_MARKER" ] || die "$env_dir exists but is not a bai dev environment (no $BAI_DEV_MARKER); choose another id"
  if bai_dev_running "$env_dir"; then
    $start || die "environment '$env_id' is running; stop it first (kill \$(cat $env_dir/run/*.pid)) or re-run with --start to restart it"
    for daemon in "${BAI_DEV_DAEMONS[@]}"; do bai_dev_stop_daemon "$env_dir" "$daemon"; done
  fi
  reinstall=true
  : "${manager_port:=$(bai_dev_marker_get "$env_dir" manager_port)}"
  : "${agent_port:=$(bai_dev_marker_get "$env_dir" agent_rpc_port)}"
  storage_manager_port=$(bai_dev_marker_get "$env_dir" storage_manager_port)
  storage_client_port=$(bai_dev_marker_get "$env_dir" storage_client_port)
else
  reinstall=false
fi

# Ports claimed by the other environments under this install path, running or not.
claimed=()
for marker in "$install_path"/*/"$BAI_DEV_MARKER"; do
  [ -f "$marker" ] || continue
  other=$(dirname "$marker")
  [ "$other" != "$env_dir" ] || continue
  for key in manager_port agent_rpc_port storage_manager_port storage_client_port; do
    value=$(bai_dev_marker_get "$other" "$key")
    [ -z "$value" ] || claimed+=("$value:${other##*/}")
  done
done
claimed_by() {
  local entry
  for entry in "${claimed[@]}"; do
    if [ "${entry%%:*}" = "$1" ]; then echo "${entry#*:}"; return; fi
  done
}
# Listening sockets of any address, from /proc/net (IPv4 and IPv6; state 0A is LISTEN).
listening() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v port=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == port { found = 1 } END { exit !found }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
check_port() {  # check_port PORT WHAT
  local owner
  owner=$(claimed_by "$1")
  [ -z "$owner" ] || die "$2 port $1 is claimed by environment '$owner' (see --help: --manager-port, --agent-rpc-port)"
  ! listening "$1" || die "$2 port $1 is in use"
}
pick_port() {  # pick_port FIRST LAST AVOID: a free, unclaimed port, from a random start
  local first=$1 last=$2 avoid=$3 span port i
  span=$((last - first + 1))
  port=$((first + $(od -An -tu4 -N4 /dev/urandom) % span))
  for ((i = 0; i < span; i++)); do
    if [ "$port" != "$avoid" ] && [ -z "$(claimed_by "$port")" ] && ! listening "$port"; then
      echo "$port"
      return
    fi
    port=$((port < last ? port + 1 : first))
  done
  die "no free port in $first-$last"
}
if [ -n "$manager_port" ]; then check_port "$manager_port" manager; else manager_port=$(pick_port 20000 24999 "$agent_port"); fi
if [ -n "$agent_port" ]; then check_port "$agent_port" "agent RPC"; else agent_port=$(pick_port 25000 29999 "$manager_port"); fi
[ "$manager_port" != "$agent_port" ] || die "the manager and the agent need different ports"
# The storage proxy's two listeners: above the agents' service ports (30000-30999) and below
# the kernel's ephemeral ports (32768 on), which outgoing connections may hold unseen.
[ -n "${storage_manager_port:-}" ] || storage_manager_port=$(pick_port 31000 31899 0)
[ -n "${storage_client_port:-}" ] || storage_client_port=$(pick_port 31900 32767 0)

# Named after the directory too: the same id may live under two install paths.
cgroup_parent=bai-dev-$env_id-$(printf '%s' "$env_dir" | sha256sum | cut -c1-8)
mkdir -p "$env_dir"/{etc,var/agent,run,log,volumes/default}
chmod 0755 "$env_dir/volumes" "$env_dir/volumes/default"  # a volume root must not be writable by others
chmod 0700 "$env_dir/var"  # the database holds the keypairs
created=$(bai_dev_marker_get "$env_dir" created)
cat >"$env_dir/$BAI_DEV_MARKER" <<EOF
# A bai dev environment, made by scripts/install-dev.sh; remove it with scripts/delete-dev.sh.
env_id=$env_id
manager_port=$manager_port
agent_rpc_port=$agent_port
storage_manager_port=$storage_manager_port
storage_client_port=$storage_client_port
created=${created:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}
updated=$(date -u +%Y-%m-%dT%H:%M:%SZ)
source=$source_root
build=$build_dir
plugins=${plugins[*]}
cgroup_parent=$cgroup_parent
EOF
flock -u 9
exec 9>&-  # the daemons started below must not inherit it

# ---- the binaries: one build, installed into a staging dir, then moved in ------------------
# meson install --destdir keeps the build's prefix inside the stage; the tree under the
# prefix is what the environment gets. The binaries' rpath is relative to themselves.
read -r prefix libdir < <(python3 - "$build_dir" <<'EOF'
import json, subprocess, sys
options = {o["name"]: o["value"] for o in json.loads(subprocess.check_output(
    ["meson", "introspect", "--buildoptions", sys.argv[1]]))}
print(options["prefix"], options["libdir"])
EOF
)
[ -n "$prefix" ] && [ -n "$libdir" ] || die "cannot read the prefix and libdir of $build_dir (meson introspect)"
stage=$(mktemp -d "$install_path/.stage-$env_id.XXXXXX")
trap 'rm -rf "$stage"' EXIT
note "installing $build_dir into $env_dir"
if ! install_log=$(meson install -C "$build_dir" --destdir "$stage" --no-rebuild --quiet 2>&1); then
  echo "$install_log" >&2
  die "meson install from $build_dir failed (is it built? ninja -C $build_dir)"
fi
[ -x "$stage$prefix/bin/bai-manager" ] || die "the build installed no bin/bai-manager under $prefix"
for entry in "$stage$prefix"/*; do
  name=${entry##*/}
  case $name in etc|var|run|log|env.sh) die "the build installs $prefix/$name, which the environment uses for itself" ;; esac
  rm -rf "${env_dir:?}/$name"
  mv "$entry" "$env_dir/$name"
done
rm -rf "$stage"
trap - EXIT
case $libdir in /*) libdir=${libdir#"$prefix"/} ;; esac
plugin_dir=$env_dir/$libdir/bai/accelerators
policy_dir=$env_dir/$libdir/bai/policies
[ -d "$policy_dir" ] || die "no policies installed at $policy_dir"
for plugin in "${plugins[@]}"; do
  [ -f "$plugin_dir/$plugin.so" ] || die "the build has no $plugin plugin ($plugin_dir/$plugin.so); enable it in the meson option 'accelerators'"
done
case " ${plugins[*]} " in *" cuda-"*)
  if [ ! -e /proc/driver/nvidia/version ]; then
    warn "no NVIDIA driver on this node: the CUDA plugins load with zero devices (use --enable-cuda-mock for fake GPUs)"
  fi ;;
esac
if $enable_rocm && [ ! -e /dev/kfd ]; then
  warn "no AMD GPU driver on this node (/dev/kfd): the rocm plugin loads with zero devices"
fi

# ---- configs --------------------------------------------------------------------------------
etc=$env_dir/etc
rm -f "$etc"/mock-*.toml
if [ -n "$mock_config" ]; then
  cp "$source_root/configs/accelerator/$mock_config" "$etc/$mock_config"
fi
toml_list() { local out='' item; for item in "$@"; do out+="${out:+, }\"$item\""; done; echo "[$out]"; }

cat >"$etc/manager.toml" <<EOF
# bai-manager of dev environment '$env_id', written by scripts/install-dev.sh (re-runs
# rewrite it). Every key: bai-manager --print-config-reference
[manager]
listen = "127.0.0.1:$manager_port"
db = "sqlite://$env_dir/var/manager.db"
cluster-token-file = "$etc/cluster-token"
log-level = "info"

[scheduler]
policy-path = ["$policy_dir"]

[storage-proxies.local]
manager-url = "http://127.0.0.1:$storage_manager_port"
client-url = "http://127.0.0.1:$storage_client_port"
token-file = "$etc/storage-token"

[storage]
default-host = "local:default"
EOF

cat >"$etc/storage-proxy.toml" <<EOF
# bai-storage-proxy of dev environment '$env_id', written by scripts/install-dev.sh (re-runs
# rewrite it). Every key: bai-storage-proxy --print-config-reference
[proxy]
log-level = "info"

[api]
manager-listen = "127.0.0.1:$storage_manager_port"
client-listen = "127.0.0.1:$storage_client_port"
token-file = "$etc/storage-token"

[volumes.default]
backend = "vfs"
path = "$env_dir/volumes/default"
EOF

{
  cat <<EOF
# bai-agent of dev environment '$env_id', written by scripts/install-dev.sh (re-runs
# rewrite it). Every key: bai-agent --print-config-reference
[agent]
id = "$env_id-agent"
rpc-listen-addr = "127.0.0.1:$agent_port"
manager-url = "http://127.0.0.1:$manager_port"
cluster-token-file = "$etc/cluster-token"
state-dir = "$env_dir/var/agent"
plugin-path = ["$plugin_dir"]
allow-plugins = $(toml_list "${plugins[@]}")

[runtime]
shim-path = "$env_dir/bin/bai-session-shim"
# Its own cgroup, so that environments do not share one (limits are advisory where the
# cgroup file system is not writable; the agent's log says which).
cgroup-parent = "$cgroup_parent"
# Sessions run as their owners' uids (the manager gives each keypair one of 200000-299999)
# in a sandbox that does not show these: the keypairs, configs, token and the manager's
# database of this environment.
hidden-paths = ["$etc", "$env_dir/var"]
EOF
  if $enable_containers; then
    printf 'kinds = ["process", "container"]\n'
    if [ -n "$engine_socket" ]; then printf '\n[runtime.container]\nengine-socket = "%s"\n' "$engine_socket"; fi
  fi
  # The storage proxy's volume: folders are bound into sessions from below it.
  printf '\n[storage]\nmount-roots = ["%s"]\n' "$env_dir/volumes/default"
  if [ -n "$mock_config" ]; then
    printf '\n[plugins.mock]\nconfig_file = "%s"\n' "$etc/$mock_config"
  fi
} >"$etc/agent.toml"

# The database, the admin keypair and the cluster token: made once, kept on re-runs
# (init only brings the schema up to date when the keypair file exists).
db_file=$env_dir/var/manager.db keypair=$etc/admin.keypair
if [ -f "$db_file" ] && [ ! -f "$keypair" ]; then
  die "$db_file exists without $keypair: restore the keypair file or delete the environment"
fi
if [ ! -f "$db_file" ] && [ -f "$keypair" ]; then
  die "$keypair exists without its database $db_file: delete the environment and install it again"
fi
"$env_dir/bin/bai-manager" init --db "sqlite://$db_file" --admin-keypair-out "$keypair" \
  --cluster-token-out "$etc/cluster-token" >"$env_dir/log/init.log" 2>&1 ||
  { cat "$env_dir/log/init.log" >&2; die "bai-manager init failed"; }
chmod 0600 "$keypair" "$etc/cluster-token"
# The token the manager and the storage proxy share: made once, kept on re-runs.
if [ ! -s "$etc/storage-token" ]; then
  (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$etc/storage-token")
fi
chmod 0600 "$etc/storage-token"

cat >"$env_dir/env.sh" <<EOF
# Source this to use bai dev environment '$env_id': . $env_dir/env.sh
export BAI_ENDPOINT=http://127.0.0.1:$manager_port
export BAI_KEYPAIR=$keypair   # for scripts/bai-api.py
export BAI_KEYPAIR_FILE=$keypair
# The keys are read from the keypair file (0600) when sourced; this file holds no secret.
BAI_ACCESS_KEY=\$(sed -n 's/^access-key *= *"\\(.*\\)"\$/\\1/p' "\$BAI_KEYPAIR_FILE")
BAI_SECRET_KEY=\$(sed -n 's/^secret-key *= *"\\(.*\\)"\$/\\1/p' "\$BAI_KEYPAIR_FILE")
export BAI_ACCESS_KEY BAI_SECRET_KEY
export BAI_DEV_ENV=$env_id
case ":\$PATH:" in *":$env_dir/bin:"*) ;; *) export PATH="$env_dir/bin:\$PATH" ;; esac
EOF

storage_cmd=("$env_dir/bin/bai-storage-proxy" --config "$etc/storage-proxy.toml" --ready-file "$env_dir/run/storage-proxy.ready")
manager_cmd=("$env_dir/bin/bai-manager" --config "$etc/manager.toml" --ready-file "$env_dir/run/manager.ready")
agent_cmd=("$env_dir/bin/bai-agent" --config "$etc/agent.toml" --ready-file "$env_dir/run/agent.ready")

$reinstall && what=updated || what=installed
cat <<EOF

bai dev environment '$env_id' $what in $env_dir
  manager API  http://127.0.0.1:$manager_port
  agent RPC    http://127.0.0.1:$agent_port  (agent id $env_id-agent; plugins: ${plugins[*]})
  storage      http://127.0.0.1:$storage_client_port for clients, :$storage_manager_port for the manager; volume $env_dir/volumes/default
  admin keypair $keypair (0600)

Start the daemons (each in its own terminal, in this order):
  ${storage_cmd[*]}
  ${manager_cmd[*]}
  ${agent_cmd[*]}
or in the background: $source_root/scripts/install-dev.sh -e $env_id --install-path $install_path --build-dir $build_dir --start

Use it:
  . $env_dir/env.sh
  bai admin agent list
  bai session run -r cpu=1 -r mem=1g -- echo hello
  $source_root/scripts/bai-api.py GET /v1/agents      # the raw API, signed with \$BAI_KEYPAIR

Remove it: $source_root/scripts/delete-dev.sh -e $env_id --install-path $install_path
EOF

$start || exit 0

# ---- --start ----------------------------------------------------------------------------------
tail_log() { echo "---- last lines of $1 ----" >&2; tail -n 40 "$1" >&2 || true; echo "----" >&2; }
fail_start() {  # fail_start WHAT LOG
  tail_log "$2"
  for daemon in "${BAI_DEV_DAEMONS[@]}"; do bai_dev_stop_daemon "$env_dir" "$daemon"; done
  die "$1; the daemons are stopped again"
}
# start_daemon NAME CMD...: in the background, in a session of its own, pid file and log.
start_daemon() {
  local name=$1 pid
  shift
  rm -f "$env_dir/run/$name.ready"
  echo "==== $(date -u +%Y-%m-%dT%H:%M:%SZ) started by install-dev.sh" >>"$env_dir/log/$name.log"
  # Not a process group leader, so setsid execs in place and $! is the daemon itself.
  setsid "$@" </dev/null >>"$env_dir/log/$name.log" 2>&1 &
  pid=$!
  echo "$pid" >"$env_dir/run/$name.pid"
  local deadline=$((SECONDS + 30))
  until [ -s "$env_dir/run/$name.ready" ]; do
    kill -0 "$pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] ||
      fail_start "bai-$name exited during start" "$env_dir/log/$name.log"
    ((SECONDS < deadline)) || fail_start "bai-$name did not get ready within 30 s" "$env_dir/log/$name.log"
    sleep 0.1
  done
}
api() { BAI_ENDPOINT=http://127.0.0.1:$manager_port python3 "$source_root/scripts/bai-api.py" --keypair "$keypair" "$@"; }

note "starting bai-storage-proxy"
start_daemon storage-proxy "${storage_cmd[@]}"
note "starting bai-manager"
start_daemon manager "${manager_cmd[@]}"
curl -fsS --max-time 5 "http://127.0.0.1:$manager_port/healthz" >/dev/null ||
  fail_start "the manager does not answer /healthz on port $manager_port" "$env_dir/log/manager.log"
note "starting bai-agent"
start_daemon agent "${agent_cmd[@]}"
deadline=$((SECONDS + 30))
until api GET "/v1/agents/$env_id-agent" 2>/dev/null | grep -q '"status":"ALIVE"'; do
  [ -n "$(bai_dev_pid "$env_dir" agent)" ] || fail_start "bai-agent exited before it registered" "$env_dir/log/agent.log"
  ((SECONDS < deadline)) || fail_start "the agent did not register with the manager within 30 s" "$env_dir/log/agent.log"
  sleep 0.2
done
cat <<EOF
bai dev environment '$env_id' is running:
  bai-manager pid $(<"$env_dir/run/manager.pid"), log $env_dir/log/manager.log
  bai-agent   pid $(<"$env_dir/run/agent.pid"), log $env_dir/log/agent.log
  bai-storage-proxy pid $(<"$env_dir/run/storage-proxy.pid"), log $env_dir/log/storage-proxy.log
Stop it: kill \$(cat $env_dir/run/agent.pid) \$(cat $env_dir/run/manager.pid) \$(cat $env_dir/run/storage-proxy.pid)
EOF

$demo || exit 0

# ---- --demo -------------------------------------------------------------------------------------
# A first session through the bai CLI.
resources=(cpu=1 mem=1g)
agent_json=$(api GET "/v1/agents/$env_id-agent")
if [[ $agent_json == *'"cuda.shares"'* ]]; then
  resources+=(cuda.shares=0.5)
elif [[ $agent_json == *'"cuda.device":{'* ]]; then
  resources+=(cuda.device=1)
fi
demo_command=(sh -c 'echo "hello from session on $(hostname)"; env | grep "^BAI_\|CUDA" | sort')
echo
# shellcheck disable=SC1091
. "$env_dir/env.sh"
echo "\$ bai admin agent list"
bai admin agent list
run_args=()
for r in "${resources[@]}"; do run_args+=(-r "$r"); done
echo "\$ bai session run ${run_args[*]} -- ${demo_command[*]@Q}"
bai session run "${run_args[@]}" -- "${demo_command[@]}" || die "the demo session did not succeed (exit $?)"

# A folder: a file goes in, a session reads it and writes a result beside it, the result
# comes out. The folder is kept, so a re-run finds it.
demo_files=$(mktemp -d)
trap 'rm -rf "$demo_files"' EXIT
printf 'hello from a folder\n' >"$demo_files/input.txt"
echo
if ! bai vfolder info demo >/dev/null 2>&1; then
  echo "\$ bai vfolder create demo"
  bai vfolder create demo || die "the demo folder could not be created (exit $?)"
fi
echo "\$ bai vfolder upload demo input.txt"
bai vfolder upload demo "$demo_files/input.txt" || die "the upload into the demo folder failed (exit $?)"
folder_command=(sh -c 'tr a-z A-Z </home/work/demo/input.txt >/home/work/demo/result.txt && ls -l /home/work/demo')
echo "\$ bai session run --mount demo -r cpu=1 -r mem=1g -- ${folder_command[*]@Q}"
bai session run --mount demo -r cpu=1 -r mem=1g -- "${folder_command[@]}" ||
  die "the demo folder session did not succeed (exit $?)"
echo "\$ bai vfolder download demo result.txt"
bai vfolder download demo result.txt --to "$demo_files" || die "the download from the demo folder failed (exit $?)"
echo "\$ cat result.txt"
cat "$demo_files/result.txt"
