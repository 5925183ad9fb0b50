"""Tenants, their staff and their API keys."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from typing import Any, Self, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone


class Scope(models.TextChoices):
    RANK = "rank", "rank"
    EVENTS = "events", "events"
    CATALOG = "catalog", "catalog"
    RULES = "rules", "rules"


MAX_CANDIDATES_LIMIT = 10_000
# The highest request rate (per second) or burst a customer's key may be given.
MAX_RATE_LIMIT = 100_000


def _rate_field(default: int, help_text: str) -> models.PositiveIntegerField:
    return models.PositiveIntegerField(
        default=default,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_RATE_LIMIT)],
        help_text=help_text,
    )


# The currencies a shop can price in (ISO 4217): the pages show amounts after this code.
CURRENCIES = (
    ("AUD", "AUD: Australian dollar"),
    ("BRL", "BRL: Brazilian real"),
    ("CAD", "CAD: Canadian dollar"),
    ("CHF", "CHF: Swiss franc"),
    ("CNY", "CNY: Chinese yuan"),
    ("CZK", "CZK: Czech koruna"),
    ("DKK", "DKK: Danish krone"),
    ("EUR", "EUR: euro"),
    ("GBP", "GBP: pound sterling"),
    ("HKD", "HKD: Hong Kong dollar"),
    ("HUF", "HUF: Hungarian forint"),
    ("INR", "INR: Indian rupee"),
    ("JPY", "JPY: Japanese yen"),
    ("KRW", "KRW: South Korean won"),
    ("MXN", "MXN: Mexican peso"),
    ("NOK", "NOK: Norwegian krone"),
    ("NZD", "NZD: New Zealand dollar"),
    ("PLN", "PLN: Polish zloty"),
    ("SEK", "SEK: Swedish krona"),
    ("SGD", "SGD: Singapore dollar"),
    ("TRY", "TRY: Turkish lira"),
    ("USD", "USD: US dollar"),
    ("ZAR", "ZAR: South African rand"),
)


def validate_time_zone(value: str) -> None:
    """An IANA time zone name this machine knows ("Europe/Berlin")."""
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            f"{value!r} is not a time zone name; write it as Region/City, e.g. Europe/Berlin.",
            code="unknown_time_zone",
        )


_M = TypeVar("_M", bound=models.Model)


class TenantQuerySet(models.QuerySet[_M]):
    """Rows that belong to one customer (every model with a `customer`): a read names the
    customer it is for with `for_customer` instead of spelling the filter out, so a search for
    reads across customers finds the ones that do not (tests/test_tenancy.py keeps it so)."""

    def for_customer(self, customer_id: int) -> Self:
        return self.filter(customer_id=customer_id)

    def for_customers(self, customers: Iterable[int] | models.QuerySet[Any]) -> Self:
        """Rows of several named customers: ids, or a queryset of customers (a staff user's, as
        `customers_granting` gives them), read as one subquery."""
        return self.filter(customer__in=customers)

    def unscoped_all_customers(self) -> Self:
        """Rows of every customer, said out loud: for the few reads that span customers by
        design (an API key found by its hash, a beat or a scrape over all shops, a staff user's
        memberships). tests/test_tenancy.py refuses any read that names neither this nor a
        customer."""
        return self.all()


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
    # Requests per second each API key of the customer may make, per endpoint group, and the
    # burst it may send at once after a quiet spell (customers/ratelimit.py, docs/operations.md).
    rank_requests_per_second = _rate_field(1000, "Requests per second per API key to /v1/rank.")
    rank_burst = _rate_field(2000, "Requests one API key may send at once to /v1/rank.")
    events_requests_per_second = _rate_field(
        200, "Requests per second per API key to /v1/events (each up to 1000 events)."
    )
    events_burst = _rate_field(400, "Requests one API key may send at once to /v1/events.")
    other_requests_per_second = _rate_field(
        50, "Requests per second per API key to the other endpoints (catalog, rules, models)."
    )
    other_burst = _rate_field(100, "Requests one API key may send at once to the other endpoints.")
    # How the pages speak to the shop's merchandisers: amounts in its currency, dates picked and
    # shown in its time zone (stored in UTC like every time).
    currency = models.CharField(
        max_length=3,
        choices=CURRENCIES,
        blank=True,
        help_text="The currency of the catalog's prices; blank shows amounts as plain numbers.",
    )
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text=(
            "Where the shop's merchandisers work, e.g. Europe/Berlin: rule windows picked in the "
            "workbench are in this zone."
        ),
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


class Role(models.TextChoices):
    """What a staff member may do for one customer; each role has the rights of those before it.

    A role per membership, not Django's groups: Django's permissions hold for a user everywhere,
    while a person can be the admin of one shop and only a viewer of another. The model
    permissions still apply on top (a role never grants what they refuse). Limits and identity
    (max_candidates, is_active, slug, creating customers) are for superusers (platform staff) only.
    """

    VIEWER = "viewer", "viewer: sees the customer's data, changes nothing"
    MERCHANDISER = "merchandiser", "merchandiser: also writes and previews rules"
    ADMIN = "admin", "admin: also configs, models, experiments, API keys and the shop's settings"

    def and_above(self) -> list[str]:
        """This role and every role with more rights."""
        order = list(Role)
        return [role.value for role in order[order.index(self) :]]


class MembershipQuerySet(TenantQuerySet["Membership"]):
    def granting(self, *, user: Any, role: str) -> MembershipQuerySet:
        """The user's memberships whose role has at least `role`'s rights."""
        return self.filter(user=user, role__in=Role(role).and_above())


class Membership(models.Model):
    """A staff user working for a customer; the admin and explain UI show them only its data.

    New memberships are viewers: rights are given, never assumed. (Memberships that existed
    before roles became admins in migration 0004, so no one lost what they could do.)
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "user"], name="membership_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.customer} ({self.role})"


def customers_granting(*, user: Any, role: str) -> CustomerQuerySet:
    """The customers for which the user has at least `role`: all of them for superusers."""
    if user.is_superuser:
        return Customer.objects.all()
    memberships = Membership.objects.unscoped_all_customers().granting(user=user, role=role)
    return Customer.objects.filter(pk__in=memberships.values("customer_id"))


def role_grants(*, user: Any, customer_id: int, role: str) -> bool:
    """Whether the user has at least `role` for the customer (superusers have every role)."""
    if user.is_superuser:
        return True
    return Membership.objects.for_customer(customer_id).granting(user=user, role=role).exists()


class ApiKeyQuerySet(TenantQuerySet["ApiKey"]):
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
