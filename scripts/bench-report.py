#!/usr/bin/env python3
"""Google Benchmark JSON to Markdown.

  bench-report.py table FILE.json [--filter REGEX]
      one Markdown table: each benchmark's time, rate and our own counters (p50/p99 per
      operation from the benchmarks' histograms, failure rates, CPU per operation)

  bench-report.py report --results DIR --out docs/benchmarks.md
      the published page: machine, date, how to reproduce, bai beside Slurm as ratios,
      the published anchors, then every suite's table. DIR holds what scripts/bench.sh
      wrote: bench_*.json (--benchmark_format=json), slurm.json (benchmarks/peers/slurm.sh)
      and machine.json.
"""

import argparse
import json
import math
import re
import sys
from pathlib import Path

# Counters shown first, in this order; the rest follow alphabetically.
LEADING = ["items_per_second"] + [f"{p}_{unit}" for unit in ("ns", "us", "ms") for p in ("p50", "p90", "p99", "max")]
# Keys of a benchmark entry that are libbenchmark's own, not counters.
OWN_KEYS = {"name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions",
            "repetition_index", "threads", "iterations", "real_time", "cpu_time", "time_unit", "aggregate_name",
            "aggregate_unit", "error_occurred", "error_message", "label", "big_o", "rms"}


def si(value):
    """3 significant digits with k/M/G, like libbenchmark's console output."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


def load(path):
    with open(path) as f:
        return json.load(f)


def runs(document, pattern=None):
    """The iteration runs (not aggregates), optionally filtered by name."""
    out = []
    for bench in document.get("benchmarks", []):
        if bench.get("run_type") == "aggregate":
            continue
        if pattern and not re.search(pattern, bench["name"]):
            continue
        out.append(bench)
    return out


def table(document, pattern=None):
    benches = runs(document, pattern)
    if not benches:
        return "_(no results)_\n"
    counters = []
    for bench in benches:
        for key in bench:
            if key not in OWN_KEYS and key not in counters:
                counters.append(key)
    counters.sort(key=lambda k: (LEADING.index(k) if k in LEADING else len(LEADING), k))
    head = ["benchmark", "time", "iterations"] + [c.replace("_", " ") for c in counters]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for bench in benches:
        if bench.get("error_occurred"):
            lines.append(f"| {bench['name']} | error: {bench.get('error_message', '')} |" + " |" * (len(head) - 2))
            continue
        row = [f"`{bench['name']}`", f"{si(bench['real_time'])} {bench['time_unit']}", str(bench["iterations"])]
        row += [si(bench.get(c)) for c in counters]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


# ---- The published page -------------------------------------------------------------

def find(documents, suite, pattern, key):
    """`key` of the first run of `suite` whose name matches `pattern`, or None."""
    for bench in runs(documents.get(suite, {}), pattern):
        if not bench.get("error_occurred") and key in bench:
            return bench[key]
    return None


def ratio(ours, theirs, higher_is_better):
    if ours is None or theirs is None or ours == 0 or theirs == 0:
        return "–"
    r = ours / theirs if higher_is_better else theirs / ours
    return f"{r:.1f}×"


def side_by_side(documents, slurm):
    rows = []

    def row(what, ours, ours_text, theirs, theirs_text, higher_is_better, target):
        rows.append(f"| {what} | {ours_text if ours is not None else 'not measured'} | "
                    f"{theirs_text if theirs is not None else 'not measured'} | "
                    f"{ratio(ours, theirs, higher_is_better)} | {target} |")

    cli = find(documents, "bench_session", r"RoundTrip/cli(/|$)", "p50_ms")
    version = find(documents, "bench_session", r"CliStartup(/|$)", "p50_ms")
    srun = slurm.get("srun_p50_ms")
    row("round trip of `true` from the command line, p50", cli, f"{si(cli)} ms (`bai --version` alone: {si(version)} ms)",
        srun, f"{si(srun)} ms (`srun -n1 --gres=gpu:1 true`)", False, "≤ half of srun's")
    inproc = find(documents, "bench_session", r"RoundTrip/client(/|$)", "p50_ms")
    row("round trip of `true` in process (libbai client), p50", inproc, f"{si(inproc)} ms", None, "", False, "≤ 3 ms")
    done = find(documents, "bench_session", r"Throughput.*queue:500", "items_per_second")
    row("trivial sessions completed per second, queue of 500", done, f"{si(done)}/s", slurm.get("complete_per_s"),
        f"{si(slurm.get('complete_per_s'))}/s (500 × `sbatch --wrap true`)", True, "≥ 500/s")
    submitted = find(documents, "bench_session", r"Submit", "items_per_second")
    row("submissions accepted per second", submitted, f"{si(submitted)}/s", slurm.get("submit_per_s"),
        f"{si(slurm.get('submit_per_s'))}/s (`sbatch`)", True, "≥ 5,000/s")
    return "\n".join(["| workload | bai | Slurm | bai's advantage | target |", "|---|---|---|---|---|"] + rows) + "\n"


def own_targets(documents):
    rows = []

    def row(what, value, text, target, met=None):
        verdict = "–" if value is None or met is None else ("met" if met(value) else "**missed**")
        rows.append(f"| {what} | {text if value is not None else 'not measured'} | {target} | {verdict} |")

    for selector in ("concentrated", "dispersed", "roundrobin"):
        rate = find(documents, "bench_schedule", rf"BM_Decision/fifo/{selector}/agents:5000(/|$)", "items_per_second")
        p99 = find(documents, "bench_schedule", rf"BM_Decision/fifo/{selector}/agents:5000(/|$)", "p99_us")
        row(f"placement decisions/s at 5,000 agents (fifo × {selector})", rate, f"{si(rate)}/s, p99 {si(p99)} µs",
            "≥ 10,000/s", lambda v: v >= 10000)
    for agents in (100, 1000, 5000, 20000, 100000):
        suffix = "_LARGE" if agents > 5000 else ""
        p50 = find(documents, "bench_schedule", rf"BM_Decision{suffix}/fifo/concentrated/agents:{agents}(/|$)", "p50_us")
        row(f"decision p50 at {agents:,} agents (fifo × concentrated)", p50, f"{si(p50)} µs", "sub-linear in agents")
    for sync in ("normal", "full"):
        for variant in ("digest", "mixed_10pct_full"):
            rate = find(documents, "bench_heartbeat", rf"{variant}/sync:{sync}/.*rate:20000(/|$)", "items_per_second")
            p99 = find(documents, "bench_heartbeat", rf"{variant}/sync:{sync}/.*rate:20000(/|$)", "p99_us")
            target = "≥ 20,000/s, p99 ≤ 50 ms" if sync == "normal" else "(FULL: reported)"
            # 2% under the offered rate is the pacing's own granularity, not the manager.
            row(f"heartbeats/s offered 20,000/s, {variant}, synchronous={sync.upper()}", rate,
                f"{si(rate)}/s, p99 {si(p99 / 1000 if p99 else None)} ms", target,
                (lambda v, p99=p99: v >= 19600 and p99 is not None and p99 <= 50000) if sync == "normal" else None)
            most = find(documents, "bench_heartbeat", rf"{variant}/sync:{sync}/.*rate:0(/|$)", "items_per_second")
            row(f"heartbeats/s closed loop (the most answered), {variant}, {sync.upper()}", most, f"{si(most)}/s", "–")
    # Session isolation, side by side in one run: what the sandbox and the fences add.
    plain = find(documents, "bench_isolation", r"BM_SessionStart/plain(/|$)", "running_p50_ms")
    isolated = find(documents, "bench_isolation", r"BM_SessionStart/isolated(/|$)", "running_p50_ms")
    added = isolated - plain if plain is not None and isolated is not None else None
    row("session start -> command running, added by sandbox and fences (p50)", added,
        f"{si(added)} ms ({si(plain)} -> {si(isolated)} ms)", "≤ 2 ms", lambda v: v <= 2)
    plain_rate = find(documents, "bench_isolation", r"BM_SessionsPerSecond/plain(/|$)", "items_per_second")
    isolated_rate = find(documents, "bench_isolation", r"BM_SessionsPerSecond/isolated(/|$)", "items_per_second")
    ratio = isolated_rate / plain_rate if plain_rate and isolated_rate is not None else None
    row("sessions started and reaped/s, isolated vs plain", ratio,
        f"{si(isolated_rate)}/s vs {si(plain_rate)}/s ({si(ratio)}×)", "≥ 0.8×", lambda v: v >= 0.8)
    return "\n".join(["| measure | bai | target | |", "|---|---|---|---|"] + rows) + "\n"


ANCHORS = """| system | published figure | setup |
|---|---|---|
| kube-scheduler (scheduler_perf) | 680–810 pods/s | Kubernetes' scheduler benchmark at 5,000 nodes |
| HashiCorp Nomad | 3,750 placements/s | the "million container challenge" (C1M), 5,000 hosts |
| Slurm | 500 jobs/s | SchedMD's high-throughput figure for a tuned controller |

These are other people's numbers on other machines and workloads: a kube-scheduler
decision includes filters and scores bai does not have, Nomad's a replicated log, and
Slurm's is for dedicated server hardware. They show orders of magnitude, not a race; the
Slurm column above is the like-for-like comparison, measured on this machine.
"""


def report(results, out):
    documents = {}
    for path in sorted(results.glob("bench_*.json")):
        documents[path.stem] = load(path)
    slurm_path = results / "slurm.json"
    slurm = load(slurm_path) if slurm_path.exists() else {}
    machine_path = results / "machine.json"
    machine = load(machine_path) if machine_path.exists() else {}
    context = next(iter(documents.values()), {}).get("context", {})

    parts = [
        "# Benchmarks\n",
        "Generated by `scripts/bench.sh`; do not edit by hand. Every figure on this page was measured in one run "
        "on the machine below, bai and Slurm side by side, so ratios compare like with like. Medians and tails "
        "are per operation, from the benchmarks' own histograms (`benchmarks/bench_support.hpp`).\n",
        "## Machine\n",
        f"- date: {machine.get('date', context.get('date', 'unknown'))}",
        f"- CPU: {machine.get('cpu', 'unknown')}, {context.get('num_cpus', '?')} cores at {context.get('mhz_per_cpu', '?')} MHz",
        f"- memory: {machine.get('memory', 'unknown')}; kernel {machine.get('kernel', 'unknown')}; {machine.get('os', '')}",
        f"- bai {machine.get('bai_version', '?')} at commit `{machine.get('commit', '?')}`, {machine.get('build', 'release build')}",
        f"- Slurm {slurm.get('version', 'not measured')}"
        + (f" ({slurm.get('scheduler', '')})" if slurm.get("scheduler") else ""),
        f"- load average at start: {machine.get('load', '?')}\n",
        "## How to reproduce\n",
        "```sh\nscripts/bench.sh            # release build, every suite, the Slurm peer, this page\n"
        "scripts/bench.sh --quick    # short runs without the LARGE fixtures\n"
        "./build-bench/benchmarks/bench_heartbeat --benchmark_format=json | scripts/bench-report.py table /dev/stdin\n```\n",
        "## bai beside Slurm, same machine\n",
        side_by_side(documents, slurm),
        "## bai against its own targets\n",
        own_targets(documents),
        "## Published anchors\n",
        ANCHORS,
    ]
    for suite, document in documents.items():
        parts.append(f"## `{suite}`\n")
        parts.append(table(document))
    if slurm:
        parts.append("## Slurm peer (`benchmarks/peers/slurm.sh`)\n")
        parts.append("```json\n" + json.dumps(slurm, indent=1, sort_keys=True) + "\n```\n")
    out.write_text("\n".join(parts))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    table_command = commands.add_parser("table", help="one benchmark JSON file as a Markdown table")
    table_command.add_argument("file")
    table_command.add_argument("--filter", help="only benchmarks whose name matches this regular expression")
    report_command = commands.add_parser("report", help="write the benchmarks page")
    report_command.add_argument("--results", required=True, type=Path)
    report_command.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    if args.command == "table":
        sys.stdout.write(table(load(args.file), args.filter))
    else:
        report(args.results, args.out)


if __name__ == "__main__":
    main()
