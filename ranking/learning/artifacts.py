"""Model artifacts in Django's default storage, in safe formats only (no pickle): LightGBM's own
text model for LambdaMART, JSON for linear models. Every read checks the SHA-256 recorded in the
registry; a mismatch refuses the model."""

from __future__ import annotations

import hashlib

import numpy as np
import orjson
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from ranking.engine.scoring import Scorer
from ranking.learning.compiled import compile_in_background
from ranking.learning.lgbm import lightgbm
from ranking.learning.scorers import LinearModelScorer, TreeModelScorer
from ranking.models import Algorithm, RankingModel
from ranking.signals.schema import FEATURES

LINEAR_FORMAT = "rankwell-linear/1"


class ArtifactRefused(Exception):
    """The artifact is missing, altered (checksum mismatch) or not a model of this schema."""


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def artifact_save(
    *, customer_id: int, surface: str, algorithm: str, version: int, content: bytes
) -> tuple[str, str]:
    """Store an artifact under the customer's own folder; returns (path, sha256)."""
    suffix = "json" if algorithm == Algorithm.LINEAR else "txt"
    digest = sha256(content)
    name = f"models/{customer_id}/{surface}/{algorithm}-{version}-{digest[:12]}.{suffix}"
    path = default_storage.save(name, ContentFile(content))
    return path, digest


def artifact_read(model: RankingModel) -> bytes:
    """The artifact's bytes, only if they hash to the recorded checksum."""
    try:
        with default_storage.open(model.artifact_path, "rb") as handle:
            content = handle.read()
    except OSError as exc:
        raise ArtifactRefused(f"artifact of {model.label} cannot be read: {exc}") from exc
    if sha256(content) != model.artifact_sha256:
        raise ArtifactRefused(f"artifact of {model.label} does not match its checksum")
    return bytes(content)


def linear_artifact(
    *, customer_id: int, coef: np.ndarray, mean: np.ndarray, std: np.ndarray, intercept: float
) -> bytes:
    return orjson.dumps(
        {
            "format": LINEAR_FORMAT,
            "customer_id": customer_id,
            "features": list(FEATURES),
            "coef": coef.tolist(),
            "mean": mean.tolist(),
            "std": std.tolist(),
            "intercept": intercept,
        },
        option=orjson.OPT_INDENT_2,
    )


def scorer_load(model: RankingModel) -> Scorer:
    """The model's scorer, from its verified artifact."""
    content = artifact_read(model)
    if model.algorithm == Algorithm.LINEAR:
        data = orjson.loads(content)
        if data.get("format") != LINEAR_FORMAT or data.get("customer_id") != model.customer_id:
            raise ArtifactRefused(f"artifact of {model.label} is not this customer's linear model")
        if tuple(data["features"]) != FEATURES:
            raise ArtifactRefused(f"artifact of {model.label} has other features than the schema")
        std = np.asarray(data["std"], dtype=np.float64)
        return LinearModelScorer(
            coef=np.asarray(data["coef"], dtype=np.float64),
            mean=np.asarray(data["mean"], dtype=np.float64),
            std=np.where(std > 0, std, 1.0),
            intercept=float(data["intercept"]),
            label=model.label,
        )
    text = content.decode()
    booster = lightgbm.Booster(model_str=text)
    if tuple(booster.feature_name()) != FEATURES:
        raise ArtifactRefused(f"artifact of {model.label} has other features than the schema")
    native = compile_in_background(text, model.label)
    return TreeModelScorer(booster=booster, label=model.label, native=native)
