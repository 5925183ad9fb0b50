from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = "Customers and API keys"

    def ready(self) -> None:
        from customers import schema  # noqa: F401  (registers the OpenAPI auth scheme)
