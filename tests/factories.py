"""factory_boy factories for the project's models, one per model the tests make. Rules, API
keys and ranking configs are made by their services, as the API and the admin make them (a
rule's revisions come with it); shopper-profile updates waiting for the replay are made by the
ingest they wait for."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import factory
import numpy as np
from django.contrib.auth import get_user_model
from django.utils import timezone

from catalog.models import Item
from customers.models import ApiKey, Customer, Membership, Role, Scope
from customers.services import api_key_create
from events.models import Event
from merchandising.contracts import RuleIn
from merchandising.models import Rule
from merchandising.services import rule_create
from ranking.models import Experiment, RankingConfig, RankingModel, RankLog, SignalVersion
from ranking.services import ranking_config_save
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


class ApiKeyFactory(factory.django.DjangoModelFactory):
    """A key made by customers.services.api_key_create, with every scope unless named. The key
    returned carries its `plaintext`, which is shown once and never stored."""

    class Meta:
        model = ApiKey

    customer = factory.SubFactory(CustomerFactory)
    name = factory.Sequence(lambda n: f"key {n}")
    scopes = factory.LazyFunction(lambda: list(Scope.values))

    @classmethod
    def _create(cls, model_class: type[ApiKey], *args: Any, **fields: Any) -> ApiKey:
        api_key, plaintext = api_key_create(**fields)
        api_key.plaintext = plaintext  # type: ignore[attr-defined]
        return api_key


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


class RuleFactory(factory.django.DjangoModelFactory):
    """A rule stored by merchandising.services.rule_create (checked, its first revision and its
    attribute set written): a weak boost of every item unless told. Pass any field of the rule
    document (`action`, `selector`, `query`, `surfaces`, `windows`, `enabled`, ...), and `draft`
    or `user`."""

    class Meta:
        model = Rule

    customer = factory.SubFactory(CustomerFactory)
    name = factory.Sequence(lambda n: f"rule {n}")
    action = factory.LazyFunction(lambda: {"type": "boost", "strength": "weak"})

    @classmethod
    def _create(
        cls,
        model_class: type[Rule],
        *args: Any,
        customer: Customer,
        draft: bool = False,
        user: Any = None,
        **document: Any,
    ) -> Rule:
        document_in = RuleIn.model_validate(document)
        return rule_create(customer=customer, document=document_in, draft=draft, user=user)[0]


class RankingConfigFactory(factory.django.DjangoModelFactory):
    """A config saved by ranking.services.ranking_config_save: live on its surface (every API
    process ranks with it within seconds) unless `live=False`."""

    class Meta:
        model = RankingConfig

    customer = factory.SubFactory(CustomerFactory)
    surface = "search"
    name = factory.Sequence(lambda n: f"config {n}")
    weights = factory.LazyFunction(lambda: {"popularity": 1.0})
    personalization_weight = 1.0

    @classmethod
    def _create(cls, model_class: type[RankingConfig], *args: Any, **fields: Any) -> RankingConfig:
        return ranking_config_save(**fields)
