"""Model artifacts on S3 through django-storages, the production setting (STORAGE_BACKEND).

S3 itself cannot run here, so moto stands in for it (in-process, behind botocore): this checks
our use of the storage API and S3's semantics — keys, overwrite, checksum on load — not AWS.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pytest
from moto import mock_aws

from ranking.learning.artifacts import (
    ArtifactRefused,
    artifact_save,
    linear_artifact,
    scorer_load,
)
from ranking.models import RankingModel
from ranking.signals.schema import FEATURES
from tests.factories import CustomerFactory, RankingModelFactory

pytestmark = pytest.mark.django_db

BUCKET = "rankwell-models-test"


@pytest.fixture
def s3(settings: Any) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {"bucket_name": BUCKET, "region_name": "eu-west-1"},
            },
        }
        yield client


def linear_model(customer_id: int) -> RankingModel:
    n = len(FEATURES)
    content = linear_artifact(
        customer_id=customer_id,
        coef=np.linspace(-1, 1, n),
        mean=np.zeros(n),
        std=np.ones(n),
        intercept=0.25,
    )
    path, digest = artifact_save(
        customer_id=customer_id, surface="search", algorithm="linear", version=1, content=content
    )
    return RankingModelFactory(
        customer_id=customer_id,
        algorithm="linear",
        version=1,
        artifact_path=path,
        artifact_sha256=digest,
    )


def test_an_artifact_is_written_to_the_bucket_and_serves_from_it(s3: Any) -> None:
    customer = CustomerFactory()

    model = linear_model(customer.pk)
    scorer = scorer_load(model)

    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == [model.artifact_path]
    assert model.artifact_path.startswith(f"models/{customer.pk}/search/linear-1-")
    features = np.ones((2, len(FEATURES)))
    assert scorer.scores(features, None).tolist() == pytest.approx([0.25, 0.25])


def test_an_artifact_altered_in_the_bucket_is_refused(s3: Any) -> None:
    model = linear_model(CustomerFactory().pk)
    s3.put_object(Bucket=BUCKET, Key=model.artifact_path, Body=b'{"format": "tampered"}')

    with pytest.raises(ArtifactRefused, match="checksum"):
        scorer_load(model)
