"""`manage.py rollback_model CUSTOMER SURFACE`: serve the model the active one replaced."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ranking.learning import registry
from ranking.management.commands.train_model import customer_by_slug
from ranking.models import Surface


class Command(BaseCommand):
    help = "Retire a surface's active model and serve the previous one (or the config's blend)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("customer", help="the customer's slug")
        parser.add_argument("surface", choices=Surface.values)

    def handle(self, *args: Any, **options: Any) -> None:
        customer = customer_by_slug(options["customer"])
        try:
            serving = registry.model_rollback(
                customer_id=customer.pk, surface=options["surface"], user="manage.py rollback_model"
            )
        except registry.ActivationRefused as exc:
            raise CommandError(str(exc)) from exc
        now = serving.label if serving is not None else "the config's blend"
        self.stdout.write(self.style.SUCCESS(f"{options['surface']} now serves {now}."))
