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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
DOC = ROOT / "docs" / "performance.md"
PROFILE = ROOT / "bench" / "profile-rank-1000.txt"
SERVED_PROFILE = ROOT / "bench" / "profile-served-1000.txt"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

# name -> (script, arguments for a full run, arguments for a quick run)
BENCHMARKS = {
    "signal_read": ("signal_read.py", [], ["--rounds", "5"]),
    "rules": ("rules.py", ["--rounds", "500"], ["--rounds", "5"]),
    "served": (
        "rank.py",
        ["--profile", str(PROFILE), "--served-profile", str(SERVED_PROFILE)],
        ["--quick", "--served-profile", str(ROOT / "var" / "bench" / "profile-served-quick.txt")],
    ),
    "refresh": ("refresh.py", [], ["--events", "20000", "--items", "2000", "--quick"]),
    "memory": ("memory.py", [], ["--small", "500", "--large", "5000", "--seconds", "1", "--quick"]),
    "ratelimit": ("ratelimit.py", ["--rounds", "3000"], ["--rounds", "20"]),
    "faults": ("faults.py", [], ["--quick"]),
}


def per_core_events(ingest: dict[str, Any]) -> int:
    """Events per second of the API workers' own CPU: what one API process takes with a core to
    itself, the database's work on the same cores counted apart (issue 14's measure)."""
    accepted = ingest["statuses"].get("202", 0) * ingest["batch_events"]
    return round(accepted / max(ingest["cpu"]["workers_cpu_seconds"], 1e-9))


def machine() -> str:
    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    return f"{os.cpu_count()} cores, {cpu or host.processor()}, Python {host.python_version()}"


def table(results: dict[str, object]) -> str:
    signal = results["signal_read"]
    rules = results["rules"]
    assert isinstance(signal, dict)
    assert isinstance(rules, dict)
    rows = [
        (
            "signal read, 1000 items x {} features: ours / bare redis-py MGET, medians".format(
                signal["features"]
            ),
            f"{signal['ours_median_ms']} ms / {signal['bare_mget_median_ms']} ms = "
            f"{signal['ratio']}x",
            "at most 2x",
        ),
        (
            "50 active rules on a 1000-candidate rank request (engine in-process), medians",
            f"{rules['without_rules_median_ms']} ms without, {rules['with_rules_median_ms']} ms "
            f"with: +{rules['added_ms']} ms",
            "at most +1 ms",
        ),
    ]
    rows += served_rows(results["served"])
    rows.append(refresh_row(results["refresh"]))
    rows.append(memory_row(results["memory"]))
    if "ratelimit" in results:  # results.json files written before the limiter existed
        rows.append(ratelimit_row(results["ratelimit"]))
    if "faults" in results:
        rows += fault_rows(results["faults"])
    lines = [
        f"Measured {results['measured_at']} on {results['machine']} by `make bench`.",
        "",
        "| what | measured | budget |",
        "|---|---|---|",
        *(f"| {what} | {measured} | {budget} |" for what, measured, budget in rows),
    ]
    return "\n".join(lines)


def served_rows(served: object) -> list[tuple[str, str, str]]:
    """The rows of bench/rank.py: /v1/rank through gunicorn, ingest, worker memory."""
    assert isinstance(served, dict)
    shop = served["shop"]
    budgets = {
        100: ("p50 3 ms, p99 8 ms; at least 1000 req/s"),
        1000: ("p50 8 ms, p99 20 ms; at least 300 req/s"),
    }
    targets = {
        100: "throughput at least 0.5x, p99 at most 2x",
        1000: "throughput at least 0.6x, p50 at most 1.35x, p99 at most 2x",
    }
    rows = []
    for candidates, target in targets.items():
        side = served.get(f"floor_{candidates}")
        if side is None:  # results.json files written before the floor existed
            continue
        floor, service = side["medians"]["floor"], side["medians"]["service"]
        ratio = side["ratio"]
        rows.append(
            (
                f"**/v1/rank against the floor (bench/floor.py), {candidates} candidates**: "
                f"{side['rounds']} alternating closed-loop rounds of {side['seconds']:g} s, "
                f"{side['connections']} connections, medians",
                f"**throughput {ratio['throughput']}x, p50 {ratio['p50']}x, p99 {ratio['p99']}x** "
                f"(service {service['achieved_rps']:.0f} req/s, p50 {service['p50_ms']} ms, p99 "
                f"{service['p99_ms']} ms; floor {floor['achieved_rps']:.0f} req/s, p50 "
                f"{floor['p50_ms']} ms, p99 {floor['p99_ms']} ms; throughput spread between rounds "
                f"{service['rps_spread']:.0%} against the floor's {floor['rps_spread']:.0%})",
                f"{target}; spread no wider than the floor's",
            )
        )
    exact = [served[f"snapshot_exact_{n}"] for n in targets if f"snapshot_exact_{n}" in served]
    if exact:  # results.json files written before signal snapshots
        rows.append(
            (
                "/v1/rank answers (with explanations) from this host's snapshot of the signals "
                "against the same requests answered from Redis, at 100 and 1000 candidates",
                "; ".join(
                    f"{e['identical']} of {e['requests']} identical, snapshot ready "
                    f"{e['snapshot_ready_seconds']} s after the first request"
                    for e in exact
                ),
                "every answer identical",
            )
        )
    direct = [served[f"direct_exact_{n}"] for n in targets if f"direct_exact_{n}" in served]
    if direct:  # results.json files written before the direct rank path
        rows.append(
            (
                "/v1/rank answers (with explanations) of the application gunicorn serves (the "
                "direct rank path, ranking/direct.py) against Django's own, at 100 and 1000 "
                "candidates",
                "; ".join(
                    f"{d['identical']} of {d['requests']} identical (status, headers, body), "
                    f"{d['answered_directly']} answered directly"
                    for d in direct
                ),
                "every answer identical",
            )
        )
    ingest_side = served.get("floor_ingest")
    if ingest_side is not None:  # results.json files written before the ingest floor existed
        floor, service = ingest_side["medians"]["floor"], ingest_side["medians"]["service"]
        rows.append(
            (
                "**/v1/events against the floor (one COPY of the batch's rows into a twin of the "
                f"event table)**: batches of 1000, {ingest_side['rounds']} alternating closed-loop "
                f"rounds of {ingest_side['seconds']:g} s, "
                f"{ingest_side['connections']} connections, "
                "medians",
                f"**throughput {ingest_side['ratio']['throughput']}x, p50 "
                f"{ingest_side['ratio']['p50']}x** (service {service['events_per_second']:.0f} "
                f"events/s, p50 {service['p50_ms']:.0f} ms; floor {floor['events_per_second']:.0f} "
                f"events/s, p50 {floor['p50_ms']:.0f} ms)",
                "no ratio target yet; 10,000 events/s per API process",
            )
        )
    for candidates in budgets:
        encodings = served.get(f"encodings_{candidates}")
        if encodings is None:  # results.json files written before protobuf
            continue
        json_, proto = encodings["json"], encodings["protobuf"]
        rows.append(
            (
                f"/v1/rank, {candidates} candidates, JSON against protobuf (both ways), "
                "closed loop, "
                "medians of 2 alternating rounds",
                f"JSON {json_['achieved_rps']:.0f} req/s, workers' CPU "
                f"{json_['worker_cpu_ms']:.2f} ms a "
                f"request, {json_['request_bytes']:,} B in / {json_['answer_bytes']:,} B out; "
                f"protobuf {proto['achieved_rps']:.0f} req/s, {proto['worker_cpu_ms']:.2f} ms, "
                f"{proto['request_bytes']:,} B / {proto['answer_bytes']:,} B",
                "no budget: what each encoding costs",
            )
        )
    for candidates, budget in budgets.items():
        measured = served[f"rank_{candidates}"]
        half = measured["at_half"]
        rows.append(
            (
                f"/v1/rank, {candidates} candidates, {shop['model']} ({shop['trees']} trees), "
                f"{shop['active_rules']} rules, personalised, {served['workers']} gunicorn workers",
                f"max {measured['max']['achieved_rps']:.0f} req/s; at {half['target_rps']:.0f} "
                f"req/s: p50 {half['p50_ms']} ms, p99 {half['p99_ms']} ms, "
                f"p99.9 {half['p99.9_ms']} ms",
                budget,
            )
        )
    for candidates in budgets:
        maximum = served[f"rank_{candidates}"]["max"]
        cpu = maximum.get("cpu", {})
        if cpu:
            per_request = {
                name.removesuffix("_cpu_seconds"): seconds * 1000 / maximum["completed"]
                for name, seconds in cpu.items()
                if name != "per_worker_cpu_seconds"
            }
            shares = " / ".join(f"{seconds} s" for seconds in cpu["per_worker_cpu_seconds"])
            rows.append(
                (
                    f"CPU per /v1/rank request of {candidates} candidates at full speed, "
                    "by process",
                    ", ".join(f"{name} {ms:.2f} ms" for name, ms in per_request.items())
                    + f" (the workers' CPU seconds: {shares})",
                    "no budget: where the two cores went (idle: no process wanted them)",
                )
            )
    generator = served["generator"]
    rows.append(
        (
            "load generator's own ceiling (bench/loadgen.py against a trivial server)",
            f"max {generator['max_rps']:.0f} req/s; "
            f"at {generator['open_at_half']['target_rps']:.0f} "
            f"req/s: p50 {generator['open_at_half']['p50_ms']} ms, "
            f"p99 {generator['open_at_half']['p99_ms']} ms",
            "well above the rates measured",
        )
    )
    ingest = served["ingest"]
    shares = ingest["cpu"]["per_worker_cpu_seconds"]
    # Keep-alive may leave a worker without connections: per process counts the workers that
    # carried the load (a tenth of the workers' CPU or more).
    busy = sum(1 for share in shares if share >= 0.1 * sum(shares)) or 1
    rows.append(
        (
            f"events ingest, batches of {ingest['batch_events']}, {served['workers']} workers, "
            "16 connections",
            f"{ingest['events_per_second']} events/s in all, "
            f"{round(ingest['events_per_second'] / busy)} per process that carried the load "
            f"(the workers' CPU seconds: {' / '.join(f'{v} s' for v in shares)}; PostgreSQL "
            f"{ingest['cpu']['postgres_cpu_seconds']} s); **an API process with a core of its "
            f"own, PostgreSQL counted apart: {per_core_events(ingest):,} events/s** (the "
            "events taken per second of the workers' CPU)",
            "10,000 events/s per API process",
        )
    )
    after_rank = max(worker["VmHWM"] for worker in served["worker_memory_after_rank_mb"])
    peak = max(worker["VmHWM"] for worker in served["worker_memory_mb"])
    rows.append(
        (
            f"API worker peak RSS (VmHWM), {shop['items']:,}-item catalog: after the rank runs; "
            "after ingest too",
            f"{after_rank} MB; {peak} MB",
            "250 MB",
        )
    )
    return rows


def refresh_row(refresh: object) -> tuple[str, str, str]:
    assert isinstance(refresh, dict)
    return (
        f"signal refresh, {refresh['events']:,} events over {refresh['items']:,} items "
        "(PostgreSQL to a published Redis version)",
        f"{refresh['refresh_seconds']} s ({refresh['events_per_second']:,} events/s)",
        "10M events, 100k items: 30 s",
    )


def ratelimit_row(limits: object) -> tuple[str, str, str]:
    assert isinstance(limits, dict)
    return (
        "rate limiter on POST /v1/rank, 100 candidates, alternated with it off (test client), "
        "medians",
        f"{limits['rank_100_limiter_cost_median_us']:+} us (one Redis call "
        f"{limits['redis_call_median_us']} us, leased: one per 10 requests)",
        "at most +100 us",
    )


def fault_rows(faults: object) -> list[tuple[str, str, str]]:
    """The rows of bench/faults.py: rank through a Redis freeze, ingest through an outage."""
    assert isinstance(faults, dict)
    freeze = faults["rank_freeze"]
    run = freeze["run"]
    shop = faults["shop"]
    outage = faults["ingest_outage"]
    up, down = outage["redis_up"], outage["redis_down"]
    return [
        (
            f"/v1/rank, 100 candidates ({shop['items']:,} items, {shop['trees']} trees), at half "
            f"of its maximum ({freeze['rate']} of {freeze['max_rps']:.0f} req/s) for "
            f"{run['seconds']:.0f} s, Redis frozen (SIGSTOP) from {freeze['frozen_from_s']} s "
            f"to {freeze['thawed_at_s']} s (bench/faults.py)",
            f"{freeze['errors']} errors in {freeze['answers']} answers; {freeze['degraded']} "
            f"degraded (due {run['marked_first_due_s']}-{run['marked_last_due_s']} s), their "
            f"p50 {run['marked_p50_ms']} ms, p99 {run['marked_p99_ms']} ms; all answers p50 "
            f"{run['p50_ms']} ms, p99 {run['p99_ms']} ms",
            "0 errors; degraded answers only while Redis is frozen, and for up to one breaker "
            "period (1 s) after",
        ),
        (
            "events ingest, batches of 1000, 16 connections: Redis up, then Redis killed "
            "(bench/faults.py)",
            f"{up['events_per_second']} events/s (p99 {up['p99_ms']} ms), then "
            f"{down['events_per_second']} events/s (p99 {down['p99_ms']} ms), answers "
            f"{down['statuses']}; {outage['pending_updates_after_outage']} profile updates kept "
            f"in PostgreSQL, replayed in {outage['replay_seconds']} s once Redis was back (plus "
            f"up to one beat, {outage['replay_interval_seconds']:g} s)",
            "nothing refused or lost; profiles catch up after",
        ),
    ]


def memory_row(memory: object) -> tuple[str, str, str]:
    assert isinstance(memory, dict)
    small = ", ".join(f"{w['VmRSS']}" for w in memory["small"]["workers_mb"])
    large = ", ".join(f"{w['VmRSS']}" for w in memory["large"]["workers_mb"])
    growth = ", ".join(f"{g:+}" for g in memory["rss_growth_mb"])
    measured = f"{small} MB; then {large} MB: {growth} MB"
    if "own_growth_mb" in memory:
        shared = ", ".join(
            f"{pages['resident_mb'] - pages['private_mb']:.1f}"
            for pages in memory["large"]["snapshot_pages_mb"]
        )
        own = ", ".join(f"{g:+}" for g in memory["own_growth_mb"])
        measured += (
            f"; of the grown catalog's VmRSS, {shared} MB are the signal snapshot's pages "
            f"shared by the host's workers (one copy in the page cache); each worker's own: "
            f"{own} MB"
        )
    if "large_build_process" in memory:
        peaks = ", ".join(f"{w['VmHWM']}" for w in memory["large"]["workers_mb"])
        build = memory["large_build_process"]
        measured += (
            f"; peak (VmHWM) {peaks} MB; the process that builds the host's snapshot of a version "
            f"(short-lived, one per host) {build['peak_mb']} MB for {build['seconds']} s"
        )
    return (
        "API worker RSS (VmRSS per worker) serving 1000-candidate searches while the catalog "
        f"grows from {memory['small_items']:,} to {memory['large_items']:,} items "
        "(bench/memory.py)",
        measured,
        "flat per worker; the snapshot grows per host",
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--table-only",
        action="store_true",
        help="write the table in the docs again from bench/results.json, without measuring",
    )
    args = parser.parse_args()
    if args.table_only:
        write_table(json.loads(RESULTS.read_text()))
        return
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
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    write_table(results)


def write_table(results: dict[str, object]) -> None:
    doc = DOC.read_text()
    before, rest = doc.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    DOC.write_text(f"{before}{BEGIN}\n{table(results)}\n{END}{after}")
    print(f"wrote the table in {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
