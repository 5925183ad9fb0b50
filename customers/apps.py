from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = "Customers and API keys"

    def ready(self) -> None:
        from customers import runtime_sync, schema  # noqa: F401  (schema: the OpenAPI auth scheme)
        from customers.auth import flush_last_used

        # The process's wiring, once per process: API keys' last-used times go to the database
        # from the runtime-sync thread (started by the first request that needs it).
        runtime_sync.run_periodically(flush_last_used)
