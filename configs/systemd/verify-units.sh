#!/bin/sh
# Checks the systemd units of configs/systemd: with systemd-analyze, `verify` on copies
# whose ExecStart points at the built daemons (any warning fails); without it, that each
# unit names an existing daemon and carries the keys the admin guide relies on.
# Usage: verify-units.sh UNIT_DIR BAI_MANAGER BAI_AGENT BAI_STORAGE_PROXY [SYSTEMD_ANALYZE]
set -eu
units=$1 manager=$2 agent=$3 proxy=$4 analyze=${5:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/bin"
ln -s "$manager" "$work/bin/bai-manager"
ln -s "$agent" "$work/bin/bai-agent"
ln -s "$proxy" "$work/bin/bai-storage-proxy"
status=0
for unit in bai-manager.service bai-agent.service bai-storage-proxy.service; do
  sed -e "s|@BINDIR@|$work/bin|g" -e "s|@DOCDIR@|$work/doc|g" "$units/$unit" > "$work/$unit"
  for key in 'Type=notify' 'ExecReload=/bin/kill -HUP $MAINPID' 'Restart=on-failure'; do
    grep -qxF "$key" "$work/$unit" || { echo "$unit: missing '$key'"; status=1; }
  done
  binary=$(sed -n 's|^ExecStart=\([^ ]*\).*|\1|p' "$work/$unit")
  [ -x "$binary" ] || { echo "$unit: ExecStart $binary is not an executable"; status=1; }
done
grep -qxF 'Delegate=yes' "$work/bai-agent.service" || { echo "bai-agent.service: missing Delegate=yes"; status=1; }
grep -qxF 'KillMode=process' "$work/bai-agent.service" || { echo "bai-agent.service: missing KillMode=process"; status=1; }
grep -qxF 'StateDirectory=bai/manager' "$work/bai-manager.service" || { echo "bai-manager.service: no StateDirectory"; status=1; }
# The proxy chowns folders to their owners: a User= or a bounding set without CAP_CHOWN breaks it.
grep -q '^User=' "$work/bai-storage-proxy.service" && { echo "bai-storage-proxy.service: must run as root"; status=1; }
grep -q '^CapabilityBoundingSet=.*CAP_CHOWN' "$work/bai-storage-proxy.service" || { echo "bai-storage-proxy.service: no CAP_CHOWN"; status=1; }
"$proxy" --help | grep -q -- '--config' || { echo "bai-storage-proxy has no --config"; status=1; }
# The options the manager's unit passes must exist in the daemon.
"$manager" --help | grep -q -- '--cluster-token-file' || { echo "bai-manager has no --cluster-token-file"; status=1; }
if [ -n "$analyze" ]; then
  # verify resolves User=bai; where there is no such user it says so, which is not the unit's fault.
  out=$(cd "$work" && SYSTEMD_LOG_LEVEL=warning "$analyze" verify --man=no "$work/bai-manager.service" "$work/bai-agent.service" "$work/bai-storage-proxy.service" 2>&1) || {
    echo "$out"; echo "systemd-analyze verify failed"; exit 1; }
  if [ -n "$out" ]; then echo "$out"; echo "systemd-analyze verify warned"; status=1; fi
else
  echo "systemd-analyze not found: checked keys and binaries only"
fi
exit $status
