# Shared by the end-to-end scripts (sourced): waiting and reading the CLI's JSON.

# Waits up to $1 seconds for the command after it to succeed.
eventually() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

# Prints the Python expression $1 over the JSON document on stdin (as `d`).
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

# The dev environment of a test: $env_id under $work/envs, installed from $build and
# started (extra install-dev.sh flags as arguments); sources its env.sh and sets $bai.
start_dev_env() {
  "$source_root/scripts/install-dev.sh" -e "$env_id" --install-path "$work/envs" --build-dir "$build" \
    --start "$@" >"$work/install.log" 2>&1 || { cat "$work/install.log" >&2; fail "install-dev.sh failed"; }
  # shellcheck disable=SC1091
  . "$env_dir/env.sh"
  bai=$env_dir/bin/bai
}

# Stops and removes it (quietly: it runs from an EXIT trap), then the work dir.
delete_dev_env() {
  if [ -d "$env_dir" ]; then "$source_root/scripts/delete-dev.sh" -e "$env_id" --install-path "$work/envs" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}

# fail MESSAGE: says it with the last lines of the environment's daemon logs, then exits 1.
fail_with_logs() {
  echo "FAIL: $*" >&2
  for log in "$env_dir"/log/*.log; do
    [ -f "$log" ] && { echo "--- $log" >&2; tail -n 30 "$log" >&2; }
  done
  exit 1
}
