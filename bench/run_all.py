"""`make bench`: every benchmark in one run, one JSON and one Markdown summary.

    .venv/bin/python -m bench.run_all            # about 17 minutes
    .venv/bin/python -m bench.run_all --quick    # about 9 minutes, scaled down
    .venv/bin/python -m bench.run_all --only stack

Runs, each in a process of its own: the ACD core (bench/bench_acd.py), the records writer
(bench/bench_db.py), what Asterisk's own record of every call (CEL) costs Asterisk
(bench/bench_cel.py) and the real stack, Siaga against app_queue (bench/bench_stack.py). Writes
bench/results/all.json and bench/results/summary.md and prints the summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from bench import bench_cel
from siaga.logging import configure_logging

log = structlog.get_logger("bench.run_all")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

# Arguments of each benchmark: (full, quick). bench_db's own defaults take ~3 minutes; these
# keep `make bench` near 17 minutes.
ARGS: dict[str, tuple[list[str], list[str]]] = {
    "acd": (["--repeat", "3"], ["--repeat", "1", "--samples", "1000", "--events", "20000"]),
    "db": (
        ["--runs", "3", "--seconds", "5", "--peak-events", "20000", "--replay-events", "50000"],
        ["--runs", "1", "--seconds", "3", "--peak-events", "10000", "--replay-events", "20000"],
    ),
    "cel": ([], ["--quick"]),
    "stack": ([], ["--quick"]),
}
MODULES = {
    "acd": "bench.bench_acd",
    "db": "bench.bench_db",
    "cel": "bench.bench_cel",
    "stack": "bench.bench_stack",
}


def run_one(name: str, quick: bool, folder: Path) -> dict[str, Any]:
    """Run one benchmark; its JSON, or an error entry (the others still run)."""
    out = folder / f"{name}.json"
    args = list(ARGS[name][1 if quick else 0])
    if name in ("db", "cel", "stack"):
        args += ["--out", str(out)]
    command = [sys.executable, "-m", MODULES[name], *args]
    log.info("bench.start", bench=name, command=" ".join(command[1:]))
    began = time.monotonic()
    result = subprocess.run(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=None, text=True, check=False
    )
    seconds = round(time.monotonic() - began, 1)
    log.info("bench.done", bench=name, seconds=seconds, exit=result.returncode)
    if result.returncode != 0:
        return {"error": f"exit {result.returncode}", "seconds": seconds}
    try:
        data: dict[str, Any] = (
            json.loads(out.read_text()) if out.exists() else json.loads(result.stdout)
        )
    except ValueError as exc:
        return {"error": f"no JSON: {exc}", "seconds": seconds}
    data["wall_seconds"] = seconds
    return data


def summary(results: dict[str, Any], command: str) -> str:
    lines = [f"# Siaga 112 benchmarks ({datetime.now(UTC).date()}, `{command}`)", ""]
    stack = results.get("stack", {})
    stack_md = RESULTS / "stack.md"
    if "results" in stack and stack_md.exists():
        lines += ["## Siaga vs app_queue on the real stack", "", stack_md.read_text(), ""]
        targets = stack.get("targets", {})
        if targets:
            lines += ["Targets (Siaga): " + ", ".join(_target(k, v) for k, v in targets.items())]
            lines.append("")
    elif stack:
        lines += [f"stack benchmark failed: {stack.get('error')}", ""]
    acd = results.get("acd", {})
    if "dispatch" in acd:
        d, m = acd["dispatch"], acd.get("mixed", {})
        lines += [
            "## ACD core (pure Python, no I/O)",
            "",
            f"- dispatch decision with {d['waiting_calls']:,} waiting calls and "
            f"{d['operators']} operators: p50 {d['p50_us']} us, p99 {d['p99_us']} us "
            f"(target p99 <= {d['target_p99_us']} us)",
            f"- mixed events: {m.get('events_per_s', 0):,.0f} events/s "
            f"(target {m.get('target_events_per_s', 0):,.0f})",
            "",
        ]
    db = results.get("db", {})
    if "median" in db:
        m = db["median"]
        lines += [
            "## Records (PostgreSQL, durable)",
            "",
            f"- sustained {m['sustained_committed_events_per_s']:,.0f} events/s, commit p99 "
            f"{m['sustained_commit_ms_p99']} ms; peak {m['peak_events_per_s']:,.0f} events/s; "
            f"journal replay {m['replay_events_per_s']:,.0f} events/s",
            "",
        ]
    cel = results.get("cel", {})
    if "median" in cel:
        lines += ["## Asterisk's own record of every call (CEL)", "", bench_cel.markdown(cel)]
    for name, data in results.items():
        if "error" in data:
            lines.append(f"- {name}: FAILED ({data['error']})")
    return "\n".join(lines).rstrip() + "\n"


def _target(name: str, value: dict[str, Any]) -> str:
    return f"{name} {'met' if value.get('met') else 'NOT met'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="scaled down, about 9 minutes")
    parser.add_argument(
        "--only", default="acd,db,cel,stack", help="comma-separated: acd,db,cel,stack"
    )
    args = parser.parse_args(argv)
    configure_logging("console")
    names = [n.strip() for n in args.only.split(",") if n.strip() in MODULES]
    RESULTS.mkdir(parents=True, exist_ok=True)
    command = "python -m bench.run_all" + (" " + " ".join(argv or sys.argv[1:])).rstrip()
    began = time.monotonic()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="siaga-bench-all-") as tmp:
        for name in names:
            results[name] = run_one(name, args.quick, Path(tmp))
            markdown = Path(tmp) / "stack.md"
            if name == "stack" and "results" in results[name] and markdown.exists():
                (RESULTS / "stack.json").write_text(json.dumps(results[name], indent=2) + "\n")
                markdown.replace(RESULTS / "stack.md")
    report = {
        "benchmark": "all",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "seconds": round(time.monotonic() - began, 1),
        "results": results,
    }
    (RESULTS / "all.json").write_text(json.dumps(report, indent=2) + "\n")
    text = summary(results, command)
    (RESULTS / "summary.md").write_text(text)
    print(text)
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
