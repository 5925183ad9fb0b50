from django.contrib import admin

from catalog.models import Item
from customers.admin import CustomerScopedAdmin
from customers.models import Role


@admin.register(Item)
class ItemAdmin(CustomerScopedAdmin):
    """The catalog arrives through the API; fixing items by hand is for a customer's admins."""

    edit_role = Role.ADMIN
    list_display = ["external_id", "title", "brand", "price", "in_stock", "customer", "updated_at"]
    list_filter = ["in_stock"]
    search_fields = ["external_id", "title", "brand"]
    readonly_fields = ["created_at", "updated_at"]
    list_select_related = ["customer"]
