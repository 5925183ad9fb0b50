"""Two servers of the same bench shop side by side, one with an environment change, measured in
alternating runs: how docs/performance.md compares a setting on and off on a noisy machine.

Builds the bench shop of bench/rank.py (its database and namespace, so not during a `make bench`),
starts gunicorn twice with the production settings (B with the extra `--env` values), and runs
the same load against A, then B, `--rounds` times. Prints one JSON line per run.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/compare.py --env MODEL_COMPILER= \\
        --candidates 1000 --mode closed
    REDIS_URL=... .venv/bin/python bench/compare.py --env RUNTIME_REFRESH_SECONDS=0 \\
        --candidates 100 --mode open --rate 280

`--keep` leaves the shop, `--reuse` serves it again without the build (minutes);
`BENCH_DATABASE` and `BENCH_NAMESPACE` name a shop of one's own beside another run's.
(`MODEL_COMPILER=` predicts with LightGBM instead of the compiled trees;
`RUNTIME_REFRESH_SECONDS=0` stops the runtime-sync thread, and with it the rank log's writes.)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rank  # bench/rank.py, beside this file


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for server B")
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--mode", choices=("closed", "open"), default="closed")
    parser.add_argument("--rate", type=int, default=100, help="open loop: requests a second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, help="default: 32")
    parser.add_argument("--quick", action="store_true", help="the quick shop (toy sizes)")
    parser.add_argument(
        "--keep", action="store_true", help="leave the shop's database and namespace for --reuse"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="serve the shop a --keep run left instead of building"
    )
    args = parser.parse_args()
    changes = dict(item.split("=", 1) for item in args.env)
    size = rank.QUICK if args.quick else rank.FULL
    env = rank.configure_environment(secrets.token_urlsafe(50), args.quick)
    (rank.VAR / "media").mkdir(parents=True, exist_ok=True)
    if not args.reuse:
        rank.recreate_database()
        rank.drop_namespace()

    import django

    django.setup()
    try:
        world, key = reused_shop(size) if args.reuse else rank.build_shop(size)[:2]
        with contextlib.ExitStack() as stack:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            bodies = tmp / f"rank-{args.candidates}.jsonl"
            bodies.write_bytes(
                b"\n".join(rank.rank_bodies(world, args.candidates, 200, args.candidates))
            )
            servers = {
                "A": stack.enter_context(rank.gunicorn(env, 2)),
                "B": stack.enter_context(rank.gunicorn({**env, **changes}, 2, "prometheus-b")),
            }
            common: dict[str, Any] = {
                "path": "/v1/rank",
                "bodies": bodies,
                "header": [f"Authorization: Bearer {key}"],
                "connections": args.connections or 32,
            }
            if args.mode == "open":
                common["rate"] = args.rate
            for port, _ in servers.values():  # warm: caches loaded, models compiled
                rank.loadgen("closed", port, duration=3.0, **{**common, "connections": 8})
            for round_ in range(args.rounds):
                for name, (port, master) in servers.items():
                    workers = rank.worker_pids(master.pid)
                    with rank.cpu_split(workers) as split:
                        result = rank.loadgen(args.mode, port, duration=args.seconds, **common)
                    print(
                        json.dumps(
                            {
                                "round": round_,
                                "server": name,
                                "env": changes if name == "B" else {},
                                **result,
                                "cpu": split,
                            }
                        ),
                        flush=True,
                    )
    finally:
        if not args.keep:
            rank.drop_namespace()


def reused_shop(size: dict[str, Any]) -> tuple[Any, str]:
    """The world of a shop built before (the same seed gives the same items) and a new key."""
    from customers.models import Customer, Scope
    from customers.services import api_key_create
    from demo.simulation import build_world

    world = build_world(n_items=size["items"], n_shoppers=size["shoppers"], seed=7)
    customer = Customer.objects.get(slug="bench")
    _, key = api_key_create(customer=customer, name="bench", scopes=[Scope.RANK, Scope.EVENTS])
    return world, key


if __name__ == "__main__":
    main()
