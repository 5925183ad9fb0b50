"""`make quality` keeps running and keeps its ordering: its quick mode (toy sizes, one seed, the
API driven in-process) ranks the simulated shoppers' sessions better than the popularity order,
which ranks them better than random, in every scenario and on both surfaces."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The quick mode in two processes side by side (the steady state; the other two), each with
    a database and namespace of its own: the suite's longest wait, about halved. Their results
    merged as one run of all three would give them."""
    database = connection.settings_dict
    credentials = database["USER"] + (f":{database['PASSWORD']}" if database["PASSWORD"] else "")
    folder = tmp_path_factory.mktemp("quality")
    env = {
        **os.environ,
        "REDIS_URL": settings.SIGNAL_STORE["URL"],
        # bench/quality.py makes its own databases on the suite's PostgreSQL server
        "QUALITY_POSTGRES": f"postgres://{credentials}@{database['HOST']}:{database['PORT']}",
    }
    env.pop("DATABASE_URL", None)
    env.pop("RANKWELL_ENV", None)
    parts = {"steady": ["steady"], "others": ["compressed", "history"]}
    processes = {
        name: subprocess.Popen(
            [
                sys.executable,
                "bench/quality.py",
                "--quick",
                "--in-process",
                "--scenarios",
                *scenarios,
                "--seeds",
                "1",
                "--ablation",
                "",
                "--no-doc",
                "--output",
                str(folder / f"{name}.json"),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, scenarios in parts.items()
    }
    merged: dict[str, Any] = {"summary": {}, "runs": []}
    try:
        for name, process in processes.items():
            _, stderr = process.communicate(timeout=900)
            assert process.returncode == 0, f"{name}: {stderr[-3000:]}"
            result = json.loads((folder / f"{name}.json").read_text())
            merged["summary"].update(result["summary"])
            merged["runs"] += result["runs"]
    finally:
        for process in processes.values():
            process.kill()
    return merged


@pytest.mark.parametrize("scenario", ["compressed", "steady", "history"])
@pytest.mark.parametrize("surface", ["search", "browse"])
def test_the_service_ranks_above_popularity_and_popularity_above_random(
    quick_run: dict[str, object], scenario: str, surface: str
) -> None:
    summary = quick_run["summary"]
    assert isinstance(summary, dict)
    rows = summary[scenario][surface]

    def ndcg(ranker: str) -> float:
        return float(rows[ranker]["ndcg@10"]["mean"])

    assert ndcg("service") > ndcg("popularity") > ndcg("random")
    assert ndcg("oracle") == 1.0
    # The revenue oracle is the ceiling of revenue per session: no order earns more.
    revenue = {ranker: float(row["revenue"]["mean"]) for ranker, row in rows.items()}
    assert revenue["revenue oracle"] >= max(revenue.values()) - 1e-9


def test_every_run_says_what_each_surface_served(quick_run: dict[str, object]) -> None:
    runs = quick_run["runs"]
    assert isinstance(runs, list)
    assert {run["scenario"] for run in runs} == {"compressed", "steady", "history"}
    for run in runs:
        assert set(run["served"]) == {"search", "browse"}
        for words in run["served"].values():
            assert "now serves" in words or words.startswith("kept the live ranker: ")


def test_the_ablation_has_a_row_for_every_personal_feature() -> None:
    """The ablation's families name features the model has, and its one-family rows between them
    remove every shopper and session feature of the registry: a personal feature added to the
    registry and to no family would go unmeasured (its "every personal feature" row is the
    registry's, so it could not tell)."""
    from demo.quality import FAMILIES
    from ranking.signals.features import REGISTRY, SHOPPER_FAMILIES
    from ranking.signals.schema import FEATURES

    named = {feature for features in FAMILIES.values() for feature in features}
    assert named <= set(FEATURES), sorted(named - set(FEATURES))
    personal = {feature.name for feature in REGISTRY if feature.family in SHOPPER_FAMILIES}
    combined = {"shopper and session affinities", "every personal feature"}
    single = {
        feature
        for family, features in FAMILIES.items()
        if family not in combined
        for feature in features
    }
    assert personal <= single, sorted(personal - single)
    assert set(FAMILIES["every personal feature"]) == personal
