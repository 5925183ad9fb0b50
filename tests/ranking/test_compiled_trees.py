"""LambdaMART models compiled to native code on the serving host (ranking/learning/compiled.py):
the same scores as LightGBM's predict, bit for bit, whatever the missing-value rules of the
splits; compiled once per host; never loaded from a directory others can write; and a model
that cannot be compiled still serves, with LightGBM."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ranking.learning import compiled
from ranking.learning.artifacts import scorer_load
from ranking.learning.compiled import NotCompilable, compile_in_background, compile_model
from ranking.learning.lgbm import lightgbm
from ranking.learning.scorers import TreeModelScorer
from ranking.signals.schema import FEATURES
from tests.ranking.learning_shop import register

WIDTH = 6


@pytest.fixture(autouse=True)
def cache_dir(settings: Any, tmp_path: Path) -> Path:
    directory = tmp_path / "compiled"
    settings.COMPILED_MODELS_DIR = str(directory)
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return directory


def awkward_rows(rng: np.random.Generator, count: int, thresholds: list[float]) -> np.ndarray:
    """Rows with NaNs, zeros, signed zeros, values below LightGBM's zero threshold and values
    exactly on the model's split thresholds: where a wrong decision rule shows."""
    rows = rng.normal(size=(count, WIDTH))
    cells = rng.random(rows.shape)
    rows[cells < 0.1] = np.nan
    rows[(cells >= 0.1) & (cells < 0.2)] = 0.0
    rows[(cells >= 0.2) & (cells < 0.25)] = -0.0
    rows[(cells >= 0.25) & (cells < 0.3)] = 1e-40
    on_threshold = (cells >= 0.3) & (cells < 0.4)
    rows[on_threshold] = rng.choice(thresholds, size=int(on_threshold.sum()))
    return rows.astype(np.float32)


def trained(params: dict[str, Any], *, categorical: bool = False) -> str:
    rng = np.random.default_rng(7)
    rows = awkward_rows(rng, 3000, [0.5, -0.25])
    if categorical:
        rows[:, 0] = rng.integers(0, 8, len(rows))
    target = np.nan_to_num(rows[:, 0]) + 2 * np.isnan(rows[:, 1]) + (rows[:, 2] == 0) + rows[:, 3]
    data = lightgbm.Dataset(
        rows,
        label=target,
        categorical_feature=[0] if categorical else "auto",
        params={"verbose": -1},
    )
    booster = lightgbm.train(
        {
            "objective": "regression",
            "num_leaves": 15,
            "min_data_in_leaf": 5,
            "verbose": -1,
            "deterministic": True,
            "num_threads": 1,
            **params,
        },
        data,
        num_boost_round=40,
    )
    return str(booster.model_to_string())


def missing_types(text: str) -> set[int]:
    _, trees = compiled.parse_model(text)
    return {(kind >> 2) & 3 for tree in trees for kind in tree.decision_type}


@pytest.mark.parametrize(
    ("params", "missing_type"),
    [
        ({}, compiled.MISSING_NAN),  # NaNs in training: NaN goes its own learnt way
        ({"zero_as_missing": True}, compiled.MISSING_ZERO),  # zeros (and NaNs) are missing
        ({"use_missing": False}, compiled.MISSING_NONE),  # NaN is read as zero
    ],
)
def test_compiled_trees_score_exactly_as_lightgbm(
    params: dict[str, Any], missing_type: int
) -> None:
    text = trained(params)
    assert missing_type in missing_types(text)  # the rule under test is in the model
    booster = lightgbm.Booster(model_str=text)
    _, trees = compiled.parse_model(text)
    thresholds = [t for tree in trees for t in tree.threshold]
    rows = awkward_rows(np.random.default_rng(11), 5000, thresholds)

    native = compile_model(text)

    expected = booster.predict(rows, raw_score=True, num_threads=1)
    assert np.array_equal(native.predict(rows), expected)


@pytest.mark.django_db
def test_a_served_model_scores_with_its_compiled_trees(api: Any) -> None:
    model = register(api.customer)

    scorer = scorer_load(model)

    assert isinstance(scorer, TreeModelScorer)
    assert scorer.native is not None
    assert scorer.native.wait(60)
    assert scorer.native.trees is not None
    features = np.random.default_rng(3).random((1000, len(FEATURES))).astype(np.float32)
    lightgbm_scores = scorer.booster.predict(features, raw_score=True, num_threads=1)
    assert np.array_equal(scorer.scores(features, None), lightgbm_scores)


def test_a_host_compiles_a_model_once(monkeypatch: pytest.MonkeyPatch, cache_dir: Path) -> None:
    text = trained({})
    first = compile_model(text)
    libraries = list(cache_dir.glob("*.so"))
    assert len(libraries) == 1

    def no_compiler(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("compiled a second time")

    monkeypatch.setattr(compiled.subprocess, "run", no_compiler)
    again = compile_model(text)  # another worker of the host, or the model loaded again

    rows = np.random.default_rng(5).random((10, WIDTH)).astype(np.float32)
    assert np.array_equal(again.predict(rows), first.predict(rows))
    assert list(cache_dir.glob("*.so")) == libraries


def test_libraries_unused_for_a_week_are_removed_when_a_model_is_compiled(cache_dir: Path) -> None:
    in_use = compile_model(trained({}))
    cache_dir.joinpath("old.so").write_bytes(b"")
    cache_dir.joinpath("recent.so").write_bytes(b"")
    week_ago = time.time() - 8 * 86400
    for name in ("old.so", *(p.name for p in cache_dir.glob("*.so") if p.name[0] != "r")):
        os.utime(cache_dir / name, (week_ago, week_ago))

    again = compile_model(trained({}))  # loaded again: its library is in use
    compile_model(trained({"use_missing": False}))  # a new model: the clean-up runs

    names = {p.name for p in cache_dir.glob("*.so")}
    assert "old.so" not in names
    assert "recent.so" in names
    assert len(names) == 3  # the two models and recent.so
    rows = np.random.default_rng(1).random((5, WIDTH)).astype(np.float32)
    assert np.array_equal(again.predict(rows), in_use.predict(rows))


def test_compiled_code_is_never_loaded_from_a_directory_others_can_write(
    cache_dir: Path,
) -> None:
    cache_dir.mkdir(mode=0o700)
    cache_dir.chmod(0o777)

    with pytest.raises(PermissionError, match="not private"):
        compile_model(trained({}))


@pytest.mark.django_db
@pytest.mark.parametrize("cause", ["categorical", "no compiler", "shared directory"])
def test_a_model_that_cannot_be_compiled_serves_with_lightgbm(
    cause: str, settings: Any, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = trained({}, categorical=cause == "categorical")
    if cause == "no compiler":
        settings.MODEL_COMPILER = "no-such-cc"
    if cause == "shared directory":
        cache_dir.mkdir(mode=0o700)
        cache_dir.chmod(0o777)
    booster = lightgbm.Booster(model_str=text)

    with caplog.at_level(logging.INFO, logger="ranking.learning.compiled"):
        slot = compile_in_background(text, "lambdamart@9")
        assert slot.wait(60)

    assert slot.trees is None
    assert "lambdamart@9" in caplog.text
    scorer = TreeModelScorer(booster=booster, label="lambdamart@9", native=slot)
    rows = np.random.default_rng(2).random((50, WIDTH)).astype(np.float32)
    assert np.array_equal(scorer.scores(rows, None), booster.predict(rows, raw_score=True))


def test_categorical_splits_are_refused_rather_than_guessed() -> None:
    with pytest.raises(NotCompilable, match="categorical"):
        compile_model(trained({}, categorical=True))
