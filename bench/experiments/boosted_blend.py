"""Would LambdaMART started from the live blend (its scores as LightGBM's init_score) beat the
blend on the guard's own holdout? An experiment, not part of the service (docs/quality.md, "Tried
and not kept").

Run after a `bench/quality.py --in-process` run, on the shop it left behind (the last scenario's
customer in `rankwell_quality_inproc`, its signals in the Redis it used):

    REDIS_URL=redis://127.0.0.1:6379/3 .venv/bin/python bench/quality.py --in-process \\
        --scenarios steady --seeds 1 --ablation "" --no-doc --output /tmp/steady.json
    REDIS_URL=redis://127.0.0.1:6379/3 .venv/bin/python bench/experiments/boosted_blend.py search

Prints, on the training report's holdout (the later 20% of requests), NDCG@10 and revenue per
search (position-bias corrected, as the guard judges) of the live blend, the popularity order,
plain LambdaMART and LambdaMART boosted from the blend (scaled 0.3x, 1x, 3x; 50 or 200 rounds),
each with its lift over the blend and the 95% interval.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.update(
    {
        "RANKWELL_ENV": "development",
        "DEBUG": "false",
        "SECRET_KEY": "experiment-only-" + "x" * 40,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/rankwell_quality_inproc",
        "SIGNAL_STORE_NAMESPACE": "rwqualityi",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
)

import django

django.setup()

import numpy as np  # noqa: E402
from django.utils import timezone  # noqa: E402

from customers.models import Customer  # noqa: E402
from ranking.learning import training  # noqa: E402
from ranking.learning.dataset import TrainingSet, training_set_load  # noqa: E402
from ranking.learning.lgbm import lightgbm  # noqa: E402
from ranking.learning.metrics import NDCG, REVENUE  # noqa: E402
from ranking.signals.schema import FEATURES  # noqa: E402


def boosted(
    data: TrainingSet,
    bias: training.PositionBias,
    params: training.TrainingParams,
    init: np.ndarray,
    rounds: int,
) -> lightgbm.Booster:
    keep = np.repeat(training._labelled_groups(data), data.group_sizes)
    data = training._select_groups(data, training._labelled_groups(data))
    labels, gains = training.ranking_labels(data, params)
    dataset = lightgbm.Dataset(
        data.features,
        label=labels,
        group=data.group_sizes,
        weight=training.row_weights(data, bias, params),
        init_score=init[keep],
        feature_name=list(FEATURES),
        params={"feature_pre_filter": False, "verbose": -1},
    )
    return lightgbm.train(
        {
            "objective": "lambdarank",
            "lambdarank_truncation_level": 20,
            "label_gain": gains,
            "learning_rate": params.learning_rate,
            "num_leaves": params.num_leaves,
            "min_data_in_leaf": params.min_data_in_leaf,
            "num_threads": 1,
            "deterministic": True,
            "seed": params.seed,
            "verbose": -1,
        },
        dataset,
        num_boost_round=rounds,
    )


def _show(
    holdout: TrainingSet,
    bias: training.PositionBias,
    blend: np.ndarray,
    name: str,
    scores: np.ndarray,
) -> None:
    metrics = training.holdout_metrics(holdout, scores, bias)
    lift = training.lift_intervals(holdout, scores, blend, bias)
    print(
        f"  {name:34s} NDCG@10 {metrics[NDCG]:.4f}  revenue/search "
        f"{metrics[REVENUE]:7.3f}  vs blend: NDCG {lift[NDCG]}  "
        f"revenue {lift[REVENUE]}"
    )


def main(surfaces: list[str]) -> None:
    customer = Customer.objects.order_by("-id").first()
    assert customer is not None, "run bench/quality.py --in-process first"
    until = timezone.now()
    for surface in surfaces:
        data = training_set_load(
            customer_id=customer.id, surface=surface, start=until - timedelta(days=90), end=until
        )
        params = training.TrainingParams()
        train, holdout = training.time_split(data, params.holdout_fraction)
        bias = training.position_bias_of(train)
        live = training.live_ranker(customer_id=customer.id, surface=surface)
        assert live is not None, "no live ranker"
        assert live.meta is not None, "the experiment starts from a blend, not a model"
        blend = live.scorer.scores(holdout.features, live.meta)
        print(
            f"{customer.slug} {surface}: live {live.label}, {train.requests} training and "
            f"{holdout.requests} holdout requests"
        )

        show = functools.partial(_show, holdout, bias, blend)
        show("blend (live)", blend)
        show("popularity", holdout.popularity_baseline)
        train_blend = live.scorer.scores(train.features, live.meta)
        for target in ("graded", "revenue"):
            chosen = replace(params, algorithm="lambdamart", target=target)
            plain = training.fit_with(train, bias, chosen, customer.id)
            show(f"lambdamart {target}", plain.scorer.scores(holdout.features, None))
            for scale in (0.3, 1.0, 3.0):
                for rounds in (50, 200):
                    booster = boosted(train, bias, chosen, scale * train_blend, rounds)
                    trees = booster.predict(holdout.features.astype(np.float32), raw_score=True)
                    show(f"blend x{scale:g} + {rounds} trees ({target})", scale * blend + trees)


if __name__ == "__main__":
    main(sys.argv[1:] or ["search", "browse"])
