"""`make bench`: run every benchmark, write bench/results.json and the table in
docs/performance.md. Numbers in the docs come only from here.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/run.py [--quick]

`--quick` runs each benchmark a few rounds only, so CI can check they still run (its numbers
are not worth reading).
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

# name -> (script, arguments for a full run, arguments for a quick run)
BENCHMARKS = {
    "signal_read": ("signal_read.py", [], ["--rounds", "5"]),
    "rules": ("rules.py", ["--rounds", "500"], ["--rounds", "5"]),
}


def machine() -> str:
    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
             if line.startswith("model name")),
            "",
        )  # fmt: skip
    return f"{os.cpu_count()} cores, {cpu or host.processor()}, Python {host.python_version()}"


def table(results: dict[str, object]) -> str:
    signal = results["signal_read"]
    rules = results["rules"]
    assert isinstance(signal, dict)
    assert isinstance(rules, dict)
    rows = [
        ("signal read, 1000 items x {} features: ours / bare redis-py MGET, medians".format(
            signal["features"]),
         f"{signal['ours_median_ms']} ms / {signal['bare_mget_median_ms']} ms = "
         f"{signal['ratio']}x", "at most 2x"),
        ("50 active rules on a 1000-candidate rank request (engine in-process), medians",
         f"{rules['without_rules_median_ms']} ms without, {rules['with_rules_median_ms']} ms "
         f"with: +{rules['added_ms']} ms", "at most +1 ms"),
    ]  # fmt: skip
    lines = [
        f"Measured {results['measured_at']} on {results['machine']} by `make bench`.",
        "",
        "| what | measured | budget |",
        "|---|---|---|",
        *(f"| {what} | {measured} | {budget} |" for what, measured, budget in rows),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    results: dict[str, object] = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "quick": args.quick,
    }
    for name, (script, full, quick) in BENCHMARKS.items():
        command = [sys.executable, str(ROOT / "bench" / script), *(quick if args.quick else full)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[name] = json.loads(output.strip().splitlines()[-1])
        print(name, results[name])
    if args.quick:
        return
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    doc = DOC.read_text()
    before, rest = doc.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    DOC.write_text(f"{before}{BEGIN}\n{table(results)}\n{END}{after}")
    print(f"wrote {RESULTS.relative_to(ROOT)} and the table in {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
