#!/usr/bin/env bash
# Removes one bai development environment made by install-dev.sh: stops its daemons and
# sessions, then deletes DIR/ENV_ID and nothing else.
set -euo pipefail

source_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/dev-env-lib.sh
source "$source_root/scripts/dev-env-lib.sh"

usage() {
  cat <<EOF
usage: ${0##*/} -e ENV_ID [--install-path DIR]

Stops the environment's agent and manager (found by their pid files, and only if the
process runs that environment's own binary), stops the sessions still running under
its bai-session-shim, removes the environment's empty cgroups (bai-dev-ENV_ID-*) if the
agent made them, and deletes DIR/ENV_ID. A directory without install-dev's marker
($BAI_DEV_MARKER) is refused.

  -e, --env ENV_ID     the environment to delete
  --install-path DIR   where environments live (default: $(bai_dev_default_install_path))
  -h, --help           this text
EOF
}

env_id='' install_path=''
need_value() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"; }
while [ $# -gt 0 ]; do
  case $1 in
    -e|--env) need_value "$@"; env_id=$2; shift ;;
    --install-path) need_value "$@"; install_path=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done

[ -n "$env_id" ] || die "which environment? -e ENV_ID (see --help)"
bai_dev_valid_id "$env_id" || die "invalid environment id '$env_id': use [a-z0-9][a-z0-9-]{0,31}"
install_path=$(realpath -m "${install_path:-$(bai_dev_default_install_path)}")
env_dir=$install_path/$env_id

[ -d "$env_dir" ] && [ ! -L "$env_dir" ] || die "no environment '$env_id' in $install_path"
[ -f "$env_dir/$BAI_DEV_MARKER" ] || die "$env_dir is not a bai dev environment (no $BAI_DEV_MARKER); not touching it"
[ "$(bai_dev_marker_get "$env_dir" env_id)" = "$env_id" ] ||
  die "$env_dir/$BAI_DEV_MARKER names another environment; not touching it"

for daemon in "${BAI_DEV_DAEMONS[@]}"; do bai_dev_stop_daemon "$env_dir" "$daemon"; done
bai_dev_stop_sessions "$env_dir"

# The agent's cgroup parent (runtime.cgroup-parent in agent.toml, named in the marker) and
# its empty session cgroups: rmdir cannot remove a cgroup that still has processes.
cgroup_parent=$(bai_dev_marker_get "$env_dir" cgroup_parent)
cgroups=()
if [[ $cgroup_parent =~ ^bai-dev-[a-z0-9-]+$ ]]; then
  cgroups=(/sys/fs/cgroup/"$cgroup_parent" /sys/fs/cgroup/*/"$cgroup_parent")
fi
for cgroup in "${cgroups[@]}"; do
  [ -d "$cgroup" ] || continue
  find "$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null || true
  [ ! -d "$cgroup" ] || warn "$cgroup still has processes; left in place"
done

rm -rf -- "$env_dir"
note "deleted environment '$env_id' ($env_dir)"
