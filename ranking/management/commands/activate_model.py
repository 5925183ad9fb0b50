"""`manage.py activate_model CUSTOMER SURFACE VERSION [--override-reason ...]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ranking.learning import registry
from ranking.management.commands.train_model import customer_by_slug
from ranking.models import Surface
from ranking.selectors import model_version


class Command(BaseCommand):
    help = "Activate a trained model; a worse holdout score needs --override-reason."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("customer", help="the customer's slug")
        parser.add_argument("surface", choices=Surface.values)
        parser.add_argument("version", type=int)
        parser.add_argument("--override-reason", default="", help="why, despite the guards")

    def handle(self, *args: Any, **options: Any) -> None:
        customer = customer_by_slug(options["customer"])
        model = model_version(
            customer_id=customer.pk, surface=options["surface"], version=options["version"]
        )
        if model is None:
            raise CommandError(f"No model version {options['version']} on {options['surface']}.")
        try:
            registry.model_activate(
                model=model,
                user="manage.py activate_model",
                override_reason=options["override_reason"],
            )
        except registry.ActivationRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{model.label} now serves {model.surface}."))
