"""Ranking configs per customer and surface, and the record of published signal versions."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from customers.models import Customer, TenantQuerySet


class Surface(models.TextChoices):
    SEARCH = "search", "search"
    BROWSE = "browse", "browse"
    AUTOCOMPLETE = "autocomplete", "autocomplete"


class RankingConfigQuerySet(TenantQuerySet["RankingConfig"]):
    def live(self) -> RankingConfigQuerySet:
        return self.filter(live=True)


class RankingConfig(models.Model):
    """How one surface of one customer blends the signals when no model is active.

    `weights` maps signal names (ranking.signals.schema.FEATURES) to weights applied to the
    standardised signal; `personalization_weight` scales the weights of the shopper signals.
    At most one config per surface is live; the others serve nobody until an experiment tries
    one on its B (docs/experiments.md, section 1) or its promotion makes it live.
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="ranking_configs")
    surface = models.CharField(max_length=16, choices=Surface.choices)
    name = models.CharField(max_length=100, default="default")
    weights = models.JSONField(default=dict)
    personalization_weight = models.FloatField(
        default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(10.0)]
    )
    exploration_percent = models.FloatField(
        "share of searches with one adjacent pair swapped (%)",
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(20.0)],
        help_text=(
            "In this share of requests two neighbouring items in the top 10 trade places at "
            "random, so that training can measure how much position alone changes clicks "
            "(docs/learning.md). Pinned and slotted items never move. 0 turns it off."
        ),
    )
    live = models.BooleanField(
        "serves the surface",
        default=True,
        help_text="Untick for a config to try on an experiment's B; it serves nobody else.",
    )
    updated_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )

    objects = RankingConfigQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "surface"],
                condition=models.Q(live=True),
                name="config_unique_surface",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer} / {self.surface}: {self.name}{'' if self.live else ' (not live)'}"


class SignalVersion(models.Model):
    """A signal version published to the signal store, kept for auditing and signal age."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="signal_versions")
    version = models.PositiveIntegerField()
    schema_hash = models.CharField(max_length=32)
    items = models.PositiveIntegerField()
    query_pairs = models.PositiveIntegerField()
    event_groups = models.PositiveIntegerField()
    seconds = models.FloatField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = TenantQuerySet["SignalVersion"].as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["customer", "-created_at"], name="signalversion_recent")]

    def __str__(self) -> str:
        return f"{self.customer} v{self.version}"


class RankLog(models.Model):
    """One served rank request, as training needs it: the items in the order shown and the exact
    float32 feature vectors they were scored on.

    One row per request, not per item: a page of 20-100 items is one insert and one read, and the
    feature matrix (positions x features, little-endian float32, schema.FEATURES order of
    `schema_hash`) unpacks with one `np.frombuffer`. Position p is row p - 1.
    """

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    request_id = models.CharField(max_length=64)
    surface = models.CharField(max_length=16, choices=Surface.choices)
    query = models.CharField(max_length=256, blank=True)
    category = models.CharField(max_length=256, blank=True)
    shopper_key = models.CharField(max_length=260, blank=True)
    model = models.CharField(max_length=64, blank=True)  # `ranker.model`, or "config:<name>"
    schema_hash = models.CharField(max_length=32)
    item_ids = models.JSONField()
    features = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)
    # The signal version the features were read from and when it was computed; null when the
    # request had none (no refresh yet, or a degraded answer). Training rebuilds such rows.
    signals_version = models.PositiveIntegerField(null=True, blank=True)
    signals_at = models.DateTimeField(null=True, blank=True)
    # Answered without signals (the signal store was unavailable): the order was the retriever's
    # and only the relevance column of `features` is real.
    degraded = models.BooleanField(default=False)
    # The item columns (the item and catalog families, features.py) are not in `features` but
    # in RankLogItemSignals, once per (signal version, item): they are a function of the two. A
    # row with `features` whole (False) is one written before, degraded, or without a version.
    items_by_reference = models.BooleanField(default=False, db_default=False)
    # Position k when the pair at k and k + 1 was swapped at random (exploration), else null.
    swapped_at = models.PositiveSmallIntegerField(null=True, blank=True)
    # The experiment whose variant ranked the request, and that variant ("A", "B"); null and ""
    # outside experiments. A plain id, not a foreign key: the log outlives a deleted experiment
    # and a log insert never waits on the experiments table. The readout attributes shoppers'
    # clicks, carts and purchases to it (ranking/experiments.py, docs/experiments.md).
    experiment_id = models.BigIntegerField(null=True, blank=True)
    variant = models.CharField(max_length=16, blank=True)
    # An interleaved request ("interleaved" variant): one letter per logged position, the team
    # that picked the item ("A", "B"; "-" placed by a pin or slot rule). Null for every other
    # request (a bit in the row's null bitmap), which also tells "not interleaved" from an
    # interleaved request with no logged position (docs/experiments.md, section 13).
    teams = models.TextField(null=True, blank=True)  # noqa: DJ001
    # Per rule with a holdout that matched the request: {"<rule id>": "held_out" | "exposed"},
    # whether this shopper was served without it or with it; null when no such rule matched (or
    # the request had no shopper). The rule's holdout readout compares the two groups
    # (merchandising/holdouts.py, docs/experiments.md "Rule holdouts").
    rule_holdouts = models.JSONField(null=True, blank=True)
    # The request's variants of experiments in other layers than `experiment_id`'s (a shopper is
    # in at most one experiment per layer): {"<experiment id>": "A" | "B"}; null when it was in
    # one experiment or none. The readout of such an experiment reads both places
    # (docs/experiments.md "Layers").
    layer_variants = models.JSONField(null=True, blank=True)

    objects = TenantQuerySet["RankLog"].as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "request_id"], name="ranklog_unique_request"
            ),
        ]
        indexes = [
            models.Index(
                fields=["customer", "surface", "created_at"], name="ranklog_customer_time"
            ),
            models.Index(fields=["customer", "created_at"], name="ranklog_customer_created"),
            # The readout: an experiment's requests per shopper, and a shopper's last request
            # before an event. Partial: requests outside experiments cost no index entry.
            models.Index(
                fields=["customer", "experiment_id", "shopper_key", "created_at"],
                name="ranklog_experiment_shopper",
                condition=models.Q(experiment_id__isnull=False),
            ),
            # The same for rule holdouts: only requests where a rule with a holdout matched.
            models.Index(
                fields=["customer", "shopper_key", "created_at"],
                name="ranklog_holdout_shopper",
                condition=models.Q(rule_holdouts__isnull=False),
            ),
            # The same for requests in experiments of more than one layer.
            models.Index(
                fields=["customer", "shopper_key", "created_at"],
                name="ranklog_layers_shopper",
                condition=models.Q(layer_variants__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.surface} {self.request_id}"


class RankLogItemSignals(models.Model):
    """The item columns of the rank log's features, once per signal version and item.

    A signal version is immutable and its number is never reused (refresh.py,
    `allocate_signal_version`), so an item's item-family features are the same in every request
    served from the version: the rank log stores them here once, and each of its rows refers to
    them by `signals_version` and item id (`RankLog.items_by_reference`). `signals` holds the
    item columns of the rank-log row's schema, little-endian float32, the bytes the request was
    scored on. Rows of versions no rank-log row refers to any more are purged with the log.
    """

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    signals_version = models.PositiveIntegerField()
    item_id = models.TextField()
    signals = models.BinaryField()

    objects = TenantQuerySet["RankLogItemSignals"].as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "signals_version", "item_id"], name="ranklogitems_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"v{self.signals_version} {self.item_id}"


class ModelStatus(models.TextChoices):
    CANDIDATE = "candidate", "candidate"
    ACTIVE = "active", "active"
    RETIRED = "retired", "retired"


class Algorithm(models.TextChoices):
    LINEAR = "linear", "linear"
    LAMBDAMART = "lambdamart", "lambdamart"
    # boosted trees fitted to how likely a shopper is to want each item, from the position-bias
    # click model (docs/learning.md)
    CLICK_MODEL = "click_model", "click model (boosted trees)"


class RankingModelQuerySet(TenantQuerySet["RankingModel"]):
    def active(self) -> RankingModelQuerySet:
        return self.filter(status=ModelStatus.ACTIVE)


class RankingModel(models.Model):
    """A trained ranking model of one customer's surface: how it was trained, how it scored on
    its holdout, where its artifact is (with its SHA-256) and whether it serves."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    surface = models.CharField(max_length=16, choices=Surface.choices)
    algorithm = models.CharField(max_length=16, choices=Algorithm.choices)
    version = models.PositiveIntegerField()
    schema_hash = models.CharField(max_length=32)
    params = models.JSONField(default=dict)
    train_from = models.DateTimeField()
    train_until = models.DateTimeField()
    holdout_from = models.DateTimeField()
    row_counts = models.JSONField(default=dict)
    propensity = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    # What training found: where its requests' features came from, per-feature coverage and
    # importance, features that never varied, the comparison in words, and the decision taken.
    report = models.JSONField(default=dict, blank=True)
    artifact_path = models.CharField(max_length=500)
    artifact_sha256 = models.CharField(max_length=64)
    status = models.CharField(
        max_length=16, choices=ModelStatus.choices, default=ModelStatus.CANDIDATE
    )
    previous = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=150, blank=True)  # a username, or "beat"
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = models.CharField(max_length=150, blank=True)
    override_reason = models.TextField(blank=True)

    objects = RankingModelQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "surface", "version"], name="rankingmodel_unique_version"
            ),
            models.UniqueConstraint(
                fields=["customer", "surface"],
                condition=models.Q(status="active"),
                name="rankingmodel_one_active",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "surface", "status"], name="rankingmodel_status"),
        ]

    def __str__(self) -> str:
        return f"{self.customer} / {self.surface}: {self.label}"

    @property
    def label(self) -> str:
        """What `ranker.model` shows when this model serves."""
        return f"{self.algorithm}@{self.version}"


def _salt() -> str:
    return secrets.token_hex(8)


class ExperimentEnd(models.TextChoices):
    """Why an experiment stopped (docs/experiments.md)."""

    STOPPED = "stopped", "stopped by hand"
    GUARDRAIL = "guardrail", "stopped by the guardrail"
    PROMOTED = "promoted", "B promoted"
    SCHEDULED = "scheduled", "ended as scheduled"


DEFAULT_LAYER = "main"
LAYER_NAME = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]*$", "A layer's name: lower-case letters, digits, - and _."
)


class ExperimentMethod(models.TextChoices):
    """How an experiment compares B with A (docs/experiments.md)."""

    AB = "ab", "A/B test: each shopper sees A or B"
    INTERLEAVE = "interleave", "interleaving: the shoppers in the share see A and B in one list"


class ExperimentKind(models.TextChoices):
    """What B changes (docs/experiments.md, section 1)."""

    MODEL = "model", "a model: B's shoppers are scored by it"
    CONFIG = "config", "a ranking config: B's shoppers get its blend of signals"
    RULES = "rules", "rules: B's shoppers also get the rules tagged to this experiment"


class Experiment(models.Model):
    """An A/B test on one surface: shoppers hashed into `treatment_percent` percent see variant
    B (the treatment: a model, a ranking config, or the rules tagged to the experiment, as
    `kind` says), the others variant A (the surface's live ranker). Assignment is a
    deterministic hash of the experiment's salt and the shopper, so a shopper stays in a variant;
    a request without user or session is always A. With `method` "interleave", the shoppers in
    the share get A's and B's orders merged by team draft, the others the live ranker."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="experiments")
    surface = models.CharField(max_length=16, choices=Surface.choices)
    name = models.CharField(max_length=200)
    kind = models.CharField(
        "what B changes",
        max_length=16,
        choices=ExperimentKind.choices,
        default=ExperimentKind.MODEL,
    )
    treatment_model = models.ForeignKey(
        RankingModel,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="model of B",
        null=True,
        blank=True,
    )
    treatment_config = models.ForeignKey(
        RankingConfig,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name="ranking config of B",
        null=True,
        blank=True,
        help_text="A config of this surface that is not live.",
    )
    treatment_percent = models.PositiveSmallIntegerField(
        "share of shoppers in B (%)",
        validators=[MinValueValidator(1), MaxValueValidator(99)],
        help_text="Of the experiment's shoppers. Interleaving: the share whose searches mix A "
        "and B.",
    )
    # Layers (docs/experiments.md "Layers"): the experiments running on a surface in one layer
    # split its shoppers between them, each its `traffic_percent` as a slice of the layer's
    # hash from `layer_slot` (set when it starts); experiments of different layers overlap,
    # hashed independently, and must change different things.
    layer = models.CharField(
        max_length=40,
        default=DEFAULT_LAYER,
        validators=[LAYER_NAME],
        help_text="Experiments of one layer never share a shopper; those of different layers "
        "can, and must then change different things (the model or config in one, rules in "
        "the other).",
    )
    traffic_percent = models.PositiveSmallIntegerField(
        "share of the layer's shoppers (%)",
        default=100,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="The experiment's shoppers; the rest of the layer is free for others.",
    )
    layer_slot = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    method = models.CharField(
        "how B is compared",
        max_length=16,
        choices=ExperimentMethod.choices,
        default=ExperimentMethod.AB,
    )
    enabled = models.BooleanField(default=True)
    # The window shoppers are split in (blank: from saving it, until it is stopped). Outside it
    # everyone gets the live ranker with no variant; once `ends_at` passed, the periodic check
    # records the end (ranking.services.experiment_end_if_due).
    starts_at = models.DateTimeField(
        "starts", null=True, blank=True, help_text="Blank: at once. Times are UTC."
    )
    ends_at = models.DateTimeField(
        "ends", null=True, blank=True, help_text="Blank: until stopped. Times are UTC."
    )
    salt = models.CharField(max_length=32, default=_salt, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    # When and why it stopped, and who stopped it (a username, or "guardrail"); `end_summary`
    # says it in words ("stopped by the guardrail: B earned 8.1% less revenue per search ...").
    # Blank while it runs; a stop by hand is undone by enabling it again.
    ended_at = models.DateTimeField(null=True, blank=True, editable=False)
    ended_by = models.CharField(max_length=150, blank=True, editable=False)
    end_reason = models.CharField(
        max_length=16, choices=ExperimentEnd.choices, blank=True, editable=False
    )
    end_summary = models.TextField(blank=True, editable=False)
    # The periodic check's latest reading (ranking.tasks.check_experiment): shoppers per
    # variant, the revenue-per-search lift and the split's p-value. The list API and the
    # sample-ratio metric read it, so neither recomputes a readout.
    checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_check = models.JSONField(default=dict, blank=True, editable=False)

    objects = TenantQuerySet["Experiment"].as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.customer} / {self.surface}: {self.name}"

    @property
    def changes_scorer(self) -> bool:
        """B scores items differently (a model, a config's blend, or the two interleaved), as
        opposed to adding rules: at most one experiment a shopper is in may do it."""
        return self.kind != ExperimentKind.RULES

    @property
    def treatment_label(self) -> str:
        """What B is, in a few words: the model's label, the config's name, or its rules."""
        if self.kind == ExperimentKind.CONFIG and self.treatment_config is not None:
            return f"config:{self.treatment_config.name}"
        if self.kind == ExperimentKind.RULES:
            return "rules tagged to B"
        return self.treatment_model.label if self.treatment_model is not None else "-"
