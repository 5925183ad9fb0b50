"""Tenants, their staff and their API keys."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone


class Scope(models.TextChoices):
    RANK = "rank", "rank"
    EVENTS = "events", "events"
    CATALOG = "catalog", "catalog"
    RULES = "rules", "rules"


MAX_CANDIDATES_LIMIT = 10_000


class CustomerQuerySet(models.QuerySet["Customer"]):
    def active(self) -> CustomerQuerySet:
        return self.filter(is_active=True)

    def visible_to(self, user: Any) -> CustomerQuerySet:
        """The customers a staff user may see: all for superusers, their memberships otherwise."""
        if user.is_superuser:
            return self
        return self.filter(memberships__user=user)


class Customer(models.Model):
    """A retailer: the tenant that owns catalog, events, configs, rules and models."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    is_active = models.BooleanField(default=True)
    max_candidates = models.PositiveIntegerField(
        default=1000,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_CANDIDATES_LIMIT)],
        help_text="Most candidate items one /v1/rank request may send.",
    )
    auto_activate_models = models.BooleanField(
        "serve new models automatically",
        default=False,
        help_text=(
            "When the nightly training produces a model that beats both the popularity order "
            "and the live ranker on its holdout, and passes every other guard, serve it without "
            "waiting for a person. Each decision is recorded on the model."
        ),
    )
    # Signal versions are numbered here, not in the signal store: a store that lost its data
    # (Redis restarted empty) can never hand out a number again, so no process can mistake new
    # data for a version it cached (ranking.signals.refresh.allocate_signal_version).
    signal_version_seq = models.PositiveIntegerField(default=0, editable=False)
    # Bumped whenever keys, configs, rules or models of this customer change; every API process
    # polls it and drops its cached copies, so changes reach all processes within seconds.
    runtime_generation = models.BigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A staff user working for a customer; the admin and explain UI show them only its data."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "user"], name="membership_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.customer}"


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def usable(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True, customer__is_active=True)


class ApiKey(models.Model):
    """A customer's API key. Only its SHA-256 is stored; the key itself is shown once."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    # The first characters of the key, kept so people can tell their keys apart.
    prefix = models.CharField(max_length=16, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "API key"
        indexes = [models.Index(fields=["customer", "created_at"], name="apikey_customer_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
