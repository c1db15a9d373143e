#!/usr/bin/env bash
# A private container engine for the tests: Podman's Docker Engine API service on a socket
# in a temp dir, with the test image (FROM scratch + Debian's static busybox) built into it.
#   scripts/container-engine.sh start DIR   starts it; prints the socket path
#   scripts/container-engine.sh stop DIR    stops it and removes DIR
# runc, not crun: crun refuses this kernel's hybrid cgroups. No registry is reachable from
# CI, so the image is built locally.
set -euo pipefail

image=localhost/bai-test/busybox:1
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

build_image() {
  if podman image exists "$image"; then return 0; fi
  local context
  context=$(mktemp -d)
  cp /bin/busybox "$context/busybox"
  cat > "$context/Containerfile" <<'CONTAINERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["/bin/sh"]
CONTAINERFILE
  podman --runtime runc build --quiet -t "$image" "$context" >/dev/null
  rm -rf "$context"
}

case "$cmd" in
  start)
    command -v podman >/dev/null || { echo "container-engine: podman is not installed" >&2; exit 1; }
    [ -x /bin/busybox ] || { echo "container-engine: /bin/busybox (busybox-static) is missing" >&2; exit 1; }
    mkdir -p "$dir"
    build_image
    socket="$dir/podman.sock"
    # In its own dir: conmon writes its OOM marker ("oom") into the service's working
    # directory, where Podman 4.3 then finds it for State.OOMKilled.
    (cd "$dir" && exec setsid podman --runtime runc system service --time=0 "unix://$socket" >"$dir/service.log" 2>&1) &
    echo $! > "$dir/service.pid"
    for _ in $(seq 1 100); do
      [ -S "$socket" ] && break
      sleep 0.1
    done
    [ -S "$socket" ] || { echo "container-engine: no socket after 10 s; see $dir/service.log" >&2; exit 1; }
    echo "$socket"
    ;;
  stop)
    if [ -f "$dir/service.pid" ]; then
      pid=$(cat "$dir/service.pid")
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
