from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from customers.admin import CustomerScopedAdmin
from events.models import Event


@admin.register(Event)
class EventAdmin(CustomerScopedAdmin):
    """The event log is append-only: the admin shows it and changes nothing."""

    list_display = ["occurred_at", "type", "item_id", "position", "query", "user_id", "customer"]
    list_filter = ["type", "surface"]
    search_fields = ["event_id", "item_id", "request_id", "user_id"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False
    list_select_related = ["customer"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
