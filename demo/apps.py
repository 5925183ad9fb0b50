from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo shop and the shopper simulator: `manage.py demo`, `make quality`, the tests."""

    name = "demo"
