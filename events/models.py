"""The append-only event log: what shoppers saw and did, and the shopper-profile updates the
signal store could not take yet."""

import uuid

from django.db import models
from django.utils import timezone

from customers.models import Customer, TenantQuerySet


class EventType(models.TextChoices):
    IMPRESSION = "impression", "impression"
    CLICK = "click", "click"
    ADD_TO_CART = "add_to_cart", "add to cart"
    PURCHASE = "purchase", "purchase"


class Event(models.Model):
    """One row per (event, item): an impression of 20 items is 20 rows with ordinals 0..19.

    Rows are only ever inserted. `query`, `surface` and `request_id` of clicks, carts and
    purchases are filled at ingest from the impression they came from (see events.services).
    """

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    event_id = models.CharField(max_length=128)
    ordinal = models.PositiveSmallIntegerField(default=0)
    type = models.CharField(max_length=16, choices=EventType.choices)
    item_id = models.CharField(max_length=256)
    position = models.PositiveIntegerField(null=True, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    user_id = models.CharField(max_length=256, blank=True)
    session_id = models.CharField(max_length=256, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    # True when request_id was not sent but attributed from the shopper's earlier click.
    request_attributed = models.BooleanField(default=False)
    surface = models.CharField(max_length=16, blank=True)
    query = models.CharField(max_length=256, blank=True)
    quantity = models.PositiveIntegerField(default=1)
    price = models.FloatField(null=True, blank=True)
    revenue = models.FloatField(default=0.0)

    objects = TenantQuerySet["Event"].as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "event_id", "ordinal"], name="event_unique_id"
            ),
        ]
        # The attribution look-ups of events.services are the only readers of the last three:
        # partial, they cost an insert only for the few rows those look-ups can return.
        indexes = [
            models.Index(fields=["customer", "occurred_at"], name="event_customer_time"),
            models.Index(
                fields=["customer", "request_id"],
                name="event_impression_request",
                condition=models.Q(type=EventType.IMPRESSION, ordinal=0),
            ),
            models.Index(
                fields=["customer", "user_id", "item_id", "occurred_at"],
                name="event_click_user_item",
                condition=models.Q(type=EventType.CLICK) & ~models.Q(request_id=""),
            ),
            models.Index(
                fields=["customer", "session_id", "item_id", "occurred_at"],
                name="event_click_session_item",
                condition=models.Q(type=EventType.CLICK, user_id="") & ~models.Q(request_id=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.item_id} ({self.event_id})"


class PendingProfileUpdate(models.Model):
    """The shopper actions of one ingest batch not yet folded into the profiles in the signal
    store (it was down, frozen or behind its open breaker, or older updates were still pending).
    events.services replays them in id order once the store answers, then deletes them.

    `actions`: one list per action, [shopper_key, item_id, action, timestamp, brand,
    [categories], price], as ingest resolved them (the item's brand, categories and price then).
    """

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(default=timezone.now)
    # The signal store remembers it for a while once the update is applied, so a replay that dies
    # between applying and deleting the row never applies it twice.
    token = models.UUIDField(default=uuid.uuid4, editable=False)
    actions = models.JSONField()

    objects = TenantQuerySet["PendingProfileUpdate"].as_manager()

    class Meta:
        indexes = [models.Index(fields=["customer", "id"], name="pending_profile_order")]

    def __str__(self) -> str:
        return f"{len(self.actions)} shopper actions of customer {self.customer_id}"
