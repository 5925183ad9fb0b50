from django.apps import AppConfig


class MerchandisingConfig(AppConfig):
    name = "merchandising"
