# shellcheck shell=bash
# Shared by install-dev.sh and delete-dev.sh (sourced, not run): what an environment is,
# and how its daemons are found and stopped, by pid file and verified executable only.

# The file that makes a directory a bai dev environment; install-dev.sh writes it first,
# delete-dev.sh removes nothing without it. key=value lines (env_id, ports, created).
readonly BAI_DEV_MARKER=.bai-dev-env
readonly BAI_DEV_DAEMONS=(agent manager storage-proxy)  # the order they are stopped in
readonly BAI_DEV_STOP_TIMEOUT=${BAI_DEV_STOP_TIMEOUT:-15}

die() { echo "${0##*/}: error: $*" >&2; exit 1; }
warn() { echo "${0##*/}: warning: $*" >&2; }
note() { echo "${0##*/}: $*"; }

bai_dev_default_install_path() { echo "${XDG_DATA_HOME:-$HOME/.local/share}/bai-dev"; }

bai_dev_valid_id() { [[ $1 =~ ^[a-z0-9][a-z0-9-]{0,31}$ ]]; }

# bai_dev_marker_get ENV_DIR KEY: the value of KEY in the environment's marker, or nothing.
bai_dev_marker_get() {
  local line
  [ -f "$1/$BAI_DEV_MARKER" ] || return 0
  while IFS= read -r line; do
    if [[ $line == "$2="* ]]; then echo "${line#*=}"; return 0; fi
  done <"$1/$BAI_DEV_MARKER"
}

# bai_dev_pid ENV_DIR DAEMON: the pid of that environment's running daemon, or nothing.
# A pid file alone is not trusted (pids are reused): the process must be running the
# environment's own binary, with the environment's own config.
bai_dev_pid() {
  local env_dir=$1 daemon=$2 pid exe want cmdline
  [ -f "$env_dir/run/$daemon.pid" ] || return 0
  pid=$(<"$env_dir/run/$daemon.pid")
  [[ $pid =~ ^[1-9][0-9]*$ ]] || return 0
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 0
  want=$(realpath -m "$env_dir/bin/bai-$daemon")
  [ "$exe" = "$want" ] || [ "$exe" = "$want (deleted)" ] || return 0
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
  [[ $cmdline == *" --config $env_dir/etc/$daemon.toml"* ]] || return 0
  echo "$pid"
}

bai_dev_running() {
  local daemon
  for daemon in "${BAI_DEV_DAEMONS[@]}"; do
    [ -z "$(bai_dev_pid "$1" "$daemon")" ] || return 0
  done
  return 1
}

# bai_dev_wait_gone PID SECONDS: 0 once the process is gone, 1 if it outlives SECONDS.
bai_dev_wait_gone() {
  local pid=$1 deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    # A zombie child of ours is gone for every purpose here.
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 0
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
  return 0
}

# bai_dev_stop_daemon ENV_DIR DAEMON: SIGTERM, then SIGKILL after BAI_DEV_STOP_TIMEOUT.
bai_dev_stop_daemon() {
  local env_dir=$1 daemon=$2 pid
  pid=$(bai_dev_pid "$env_dir" "$daemon")
  if [ -z "$pid" ]; then
    rm -f "$env_dir/run/$daemon.pid" "$env_dir/run/$daemon.ready"
    return 0
  fi
  note "stopping bai-$daemon (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  if ! bai_dev_wait_gone "$pid" "$BAI_DEV_STOP_TIMEOUT"; then
    warn "bai-$daemon (pid $pid) still runs ${BAI_DEV_STOP_TIMEOUT}s after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    bai_dev_wait_gone "$pid" 5 || die "bai-$daemon (pid $pid) survives SIGKILL"
  fi
  rm -f "$env_dir/run/$daemon.pid" "$env_dir/run/$daemon.ready"
}

# Sessions outlive a stopped agent by design. When an environment goes away, so do its
# sessions: each runs under the environment's own bai-session-shim (found by that exact
# executable, not by name), whose command leads a process group of its own.
bai_dev_stop_sessions() {
  local env_dir=$1 shim proc pid children child shims=()
  shim=$(realpath -m "$env_dir/bin/bai-session-shim")
  for proc in /proc/[0-9]*; do
    local exe
    exe=$(readlink "$proc/exe" 2>/dev/null) || continue
    [ "$exe" = "$shim" ] || [ "$exe" = "$shim (deleted)" ] || continue
    pid=${proc#/proc/}
    shims+=("$pid")
    children=$(cat "$proc"/task/*/children 2>/dev/null || true)
    for child in $children; do
      note "stopping session process group $child (shim $pid)"
      kill -TERM -- "-$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null || true
    done
  done
  for pid in "${shims[@]}"; do
    if ! bai_dev_wait_gone "$pid" "$BAI_DEV_STOP_TIMEOUT"; then
      for child in $(cat "/proc/$pid"/task/*/children 2>/dev/null || true); do
        kill -KILL -- "-$child" 2>/dev/null || kill -KILL "$child" 2>/dev/null || true
      done
      kill -KILL "$pid" 2>/dev/null || true
      bai_dev_wait_gone "$pid" 5 || warn "session shim $pid survives SIGKILL"
    fi
  done
}
