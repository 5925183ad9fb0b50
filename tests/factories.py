"""factory_boy factories for the project's models."""

from __future__ import annotations

from decimal import Decimal

import factory
import numpy as np
from django.contrib.auth import get_user_model
from django.utils import timezone

from catalog.models import Item
from customers.models import Customer, Membership, Role
from events.models import Event
from ranking.models import Experiment, RankingModel, RankLog, SignalVersion
from ranking.signals.schema import FEATURES, SCHEMA_HASH


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"Shop {n}")
    slug = factory.Sequence(lambda n: f"shop-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    customer = factory.SubFactory(CustomerFactory)
    user = factory.SubFactory(UserFactory)
    # Tests written before roles expect a member to do everything of the customer, as migration
    # 0004 keeps it for existing members; role tests name the role they test.
    role = Role.ADMIN


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    customer = factory.SubFactory(CustomerFactory)
    external_id = factory.Sequence(lambda n: f"sku-{n}")
    title = factory.Sequence(lambda n: f"Item {n}")
    brand = "Acme"
    categories = factory.LazyFunction(lambda: ["shoes", "shoes/running"])
    price = Decimal("50.00")
    in_stock = True


class EventFactory(factory.django.DjangoModelFactory):
    """A click by default; name the type and what it carries for others."""

    class Meta:
        model = Event

    customer = factory.SubFactory(CustomerFactory)
    event_id = factory.Sequence(lambda n: f"event-{n}")
    type = "click"
    item_id = "sku-0"
    occurred_at = factory.LazyFunction(timezone.now)


class RankLogFactory(factory.django.DjangoModelFactory):
    """A logged search answered by the default blend; features zero unless given (as float32
    bytes, one row per item id in the schema's columns)."""

    class Meta:
        model = RankLog

    customer = factory.SubFactory(CustomerFactory)
    request_id = factory.Sequence(lambda n: f"request-{n}")
    surface = "search"
    query = "shoes"
    model = "config:default"
    schema_hash = SCHEMA_HASH
    item_ids = factory.LazyFunction(lambda: ["sku-0"])
    features = factory.LazyAttribute(
        lambda log: np.zeros((len(log.item_ids), len(FEATURES)), dtype="<f4").tobytes()
    )


class SignalVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SignalVersion

    customer = factory.SubFactory(CustomerFactory)
    version = factory.Sequence(lambda n: n + 1)
    schema_hash = SCHEMA_HASH
    items = 1
    query_pairs = 0
    event_groups = 0
    seconds = 0.1


class RankingModelFactory(factory.django.DjangoModelFactory):
    """A registered candidate whose artifact is not read (pass `artifact_path` and
    `artifact_sha256` of a saved artifact for one that serves)."""

    class Meta:
        model = RankingModel

    customer = factory.SubFactory(CustomerFactory)
    surface = "search"
    algorithm = "lambdamart"
    version = factory.Sequence(lambda n: n + 1)
    schema_hash = SCHEMA_HASH
    train_from = factory.LazyFunction(timezone.now)
    train_until = factory.LazyFunction(timezone.now)
    holdout_from = factory.LazyFunction(timezone.now)
    artifact_path = "models/none.txt"
    artifact_sha256 = "0" * 64


class ExperimentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Experiment

    customer = factory.SubFactory(CustomerFactory)
    surface = "search"
    name = factory.Sequence(lambda n: f"experiment {n}")
    treatment_model = factory.SubFactory(
        RankingModelFactory, customer=factory.SelfAttribute("..customer")
    )
    treatment_percent = 10
