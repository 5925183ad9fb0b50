"""Ranking configs per customer and surface, and the record of published signal versions."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from customers.models import Customer


class Surface(models.TextChoices):
    SEARCH = "search", "search"
    BROWSE = "browse", "browse"
    AUTOCOMPLETE = "autocomplete", "autocomplete"


class RankingConfig(models.Model):
    """How one surface of one customer blends the signals when no model is active.

    `weights` maps signal names (ranking.signals.schema.FEATURES) to weights applied to the
    standardised signal; `personalization_weight` scales the weights of the shopper signals.
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="ranking_configs")
    surface = models.CharField(max_length=16, choices=Surface.choices)
    name = models.CharField(max_length=100, default="default")
    weights = models.JSONField(default=dict)
    personalization_weight = models.FloatField(
        default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(10.0)]
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

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "surface"], name="config_unique_surface"),
        ]

    def __str__(self) -> str:
        return f"{self.customer} / {self.surface}: {self.name}"


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

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["customer", "-created_at"], name="signalversion_recent")]

    def __str__(self) -> str:
        return f"{self.customer} v{self.version}"
