from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from catalog import services
from catalog.forms import ItemForm
from catalog.models import Item
from customers.admin import CustomerScopedAdmin
from customers.models import Role


@admin.register(Item)
class ItemAdmin(CustomerScopedAdmin):
    """The catalog arrives through the API; fixing items by hand is for a customer's admins."""

    edit_role = Role.ADMIN
    form = ItemForm
    fields = [
        *("customer", "external_id", "title", "brand", "price", "in_stock"),
        *("categories_text", "attributes_text", "created_at", "updated_at"),
    ]
    list_display = ["external_id", "title", "brand", "price", "in_stock", "customer", "updated_at"]
    list_filter = ["in_stock"]
    search_fields = ["external_id", "title", "brand"]
    readonly_fields = ["created_at", "updated_at"]
    list_select_related = ["customer"]

    # Through the catalog's services, as the API writes: the rules' attribute sets follow.
    def save_model(self, request: HttpRequest, obj: Item, form: Any, change: bool) -> None:
        services.item_save(item=obj)

    def delete_model(self, request: HttpRequest, obj: Item) -> None:
        services.item_delete(item=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Item]) -> None:
        services.items_delete(items=queryset)
