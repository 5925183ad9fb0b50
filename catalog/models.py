"""The retailer's catalog: items with the attributes ranking and rules look at."""

from django.db import models
from django.utils import timezone

from customers.models import Customer, TenantQuerySet


class Item(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="items")
    # The retailer's own item id, as sent in the API ("id").
    external_id = models.CharField("id", max_length=256)
    title = models.CharField(max_length=500)
    brand = models.CharField(max_length=200, blank=True)
    # Category paths, e.g. ["shoes", "shoes/running"].
    categories = models.JSONField(default=list, blank=True)
    price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    in_stock = models.BooleanField(default=True)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = TenantQuerySet["Item"].as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "external_id"], name="item_unique_id"),
        ]
        indexes = [
            models.Index(fields=["customer", "brand"], name="item_customer_brand"),
            # The rule form's item picker looks ids up by prefix (LIKE 'sku-1%'): a pattern
            # index answers that whatever the database's collation (PostgreSQL; ignored on
            # SQLite, whose LIKE needs no opclass).
            models.Index(
                fields=["customer", "external_id"],
                name="item_customer_id_prefix",
                opclasses=["int8_ops", "varchar_pattern_ops"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.external_id}: {self.title}"
