#!/usr/bin/env bash
# The benchmarks in one go: a release build, every suite under benchmarks/ with JSON
# output, the Slurm peer on this same machine (benchmarks/peers/slurm.sh), and the page
# docs/benchmarks.md with bai and Slurm side by side (scripts/bench-report.py).
#
#   scripts/bench.sh [--quick] [--no-slurm] [--no-deps] [--build-dir DIR] [--results DIR] [--out FILE]
#
#   --quick       short runs without the LARGE fixtures (minutes instead of a quarter hour)
#   --no-slurm    skip the Slurm peer (its column then reads "not measured")
#   --no-deps     do not install Debian packages (build tools, Slurm and munge)
#   --build-dir   the release build (default build-bench; reused when present)
#   --results     where the JSON files go (default BUILD-DIR/bench-results)
#   --out         the page to write (default docs/benchmarks.md)
#
# Close other work first: the suites share the machine's cores with whatever else runs,
# and the page records the load average at the start.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0 slurm=1 deps=1 builddir=build-bench results="" out=docs/benchmarks.md
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --no-slurm) slurm=0 ;;
    --no-deps) deps=0 ;;
    --build-dir) builddir=$2; shift ;;
    --results) results=$2; shift ;;
    --out) out=$2; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
results=$(realpath -m "${results:-$builddir/bench-results}")

if [ "$deps" = 1 ]; then
  scripts/install-deps.sh
  if [ "$slurm" = 1 ] && ! command -v slurmctld >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge
    else
      echo "bench.sh: Slurm is not installed and this is not root; the Slurm column will read 'not measured'" >&2
    fi
  fi
fi

if [ -f "$builddir/build.ninja" ]; then
  meson setup --reconfigure "$builddir" -Dbuildtype=release -Dtests=false
else
  meson setup "$builddir" -Dbuildtype=release -Dtests=false
fi
ninja -C "$builddir"

rm -rf "$results"
mkdir -p "$results"

# Let the build's load die down (at most two minutes) so that it does not count against
# the first suite.
for _ in $(seq 24); do
  awk '{ exit !($1 < 1.0) }' /proc/loadavg && break
  sleep 5
done

# What the page says about the machine and the tree.
python3 - "$results/machine.json" "$builddir" <<'PYEOF'
import json, os, platform, re, subprocess, sys, datetime
out, builddir = sys.argv[1], sys.argv[2]
def run(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
cpu = re.search(r"Model name:\s*(.+)", run("lscpu"))
memory = re.search(r"MemTotal:\s*(\d+)", open("/proc/meminfo").read())
os_name = re.search(r'PRETTY_NAME="(.+)"', open("/etc/os-release").read()) if os.path.exists("/etc/os-release") else None
info = json.loads(run("meson", "introspect", "--projectinfo", builddir) or "{}")
dirty = run("git", "status", "--porcelain", "--untracked-files=no")
json.dump({
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "cpu": cpu.group(1) if cpu else platform.processor(),
    "memory": f"{int(memory.group(1)) / 1024 / 1024:.0f} GiB" if memory else "unknown",
    "kernel": platform.release(),
    "os": os_name.group(1) if os_name else "",
    "commit": run("git", "rev-parse", "--short", "HEAD") + (" + local changes" if dirty else ""),
    "bai_version": info.get("version", "?"),
    "build": "meson buildtype=release, " + run("c++", "--version").splitlines()[0] if run("c++", "--version") else "meson buildtype=release",
    "load": open("/proc/loadavg").read().split()[0],
}, open(out, "w"), indent=1)
PYEOF

# Each suite: full runs, or with --quick a short minimum time and no LARGE fixtures.
suite_args() {
  local full=$1
  if [ "$quick" = 1 ]; then echo "--benchmark_min_time=0.01 --benchmark_filter=-LARGE"; else echo "--benchmark_min_time=$full"; fi
}
declare -A min_time=([bench_alloc]=0.2 [bench_schedule]=0.2 [bench_heartbeat]=2 [bench_session]=1 [bench_isolation]=2)
for suite in bench_alloc bench_schedule bench_heartbeat bench_session bench_isolation; do
  binary="$builddir/benchmarks/$suite"
  if [ ! -x "$binary" ]; then
    echo "bench.sh: $binary was not built" >&2
    exit 1
  fi
  echo "== $suite" >&2
  # shellcheck disable=SC2046  # the arguments are words on purpose
  "$binary" $(suite_args "${min_time[$suite]}") --benchmark_out="$results/$suite.json" --benchmark_out_format=json
done

if [ "$slurm" = 1 ]; then
  if command -v slurmctld >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "== Slurm peer" >&2
    jobs=500
    [ "$quick" = 1 ] && jobs=100
    benchmarks/peers/slurm.sh --jobs "$jobs" --json "$results/slurm.json" ||
      echo "bench.sh: the Slurm peer failed; its column will read 'not measured'" >&2
  else
    echo "bench.sh: the Slurm peer needs root and Debian's slurmctld, slurmd, slurm-client and munge; skipped" >&2
  fi
fi

scripts/bench-report.py report --results "$results" --out "$out"
echo "bench.sh: wrote $out (raw results in $results)" >&2
