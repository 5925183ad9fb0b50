"""`manage.py train_model CUSTOMER SURFACE`: train a candidate on the rank log, with progress."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from customers import selectors as customer_selectors
from customers.models import Customer
from ranking.learning import registry
from ranking.learning.training import AUTO, NotEnoughData, TrainingParams, model_train
from ranking.models import Algorithm, Surface
from ranking.signals.schema import FEATURES


def customer_by_slug(slug: str) -> Customer:
    customer = customer_selectors.customer_by_slug(slug=slug)
    if customer is None:
        raise CommandError(f"No customer with slug {slug!r}.")
    return customer


class Command(BaseCommand):
    help = "Train a ranking model for one customer's surface and register it as a candidate."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("customer", help="the customer's slug")
        parser.add_argument("surface", choices=Surface.values)
        parser.add_argument(
            "--algorithm",
            choices=[AUTO, *Algorithm.values],
            default=AUTO,
            help="auto (default): linear and lambdamart, the better on later training requests",
        )
        parser.add_argument("--days", type=int, help="training window (TRAINING_WINDOW_DAYS)")
        parser.add_argument("--rounds", type=int, help="boosting rounds (LambdaMART)")
        parser.add_argument(
            "--no-position-bias-correction",
            action="store_true",
            help="train on the raw labels (to measure what the correction brings)",
        )
        parser.add_argument(
            "--target",
            choices=[AUTO, "graded", "revenue"],
            default=AUTO,
            help="what to rank for: graded clicks, carts and purchases, purchase value, or auto",
        )
        parser.add_argument(
            "--without",
            default="",
            help="comma-separated features to train without (to measure what they bring)",
        )
        parser.add_argument("--activate", action="store_true", help="activate it if it may")
        parser.add_argument(
            "--override-reason",
            default="",
            help="with --activate: activate despite the guards' warnings, recording this reason",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        customer = customer_by_slug(options["customer"])
        without = tuple(name for name in options["without"].split(",") if name)
        unknown = sorted(set(without) - set(FEATURES))
        if unknown:
            raise CommandError(f"Unknown features: {', '.join(unknown)}.")
        params = TrainingParams(
            algorithm=options["algorithm"],
            position_bias_correction=not options["no_position_bias_correction"],
            target=options["target"],
            without=without,
        )
        if options["rounds"]:
            params = replace(params, rounds=options["rounds"])
        try:
            model = model_train(
                customer_id=customer.pk,
                surface=options["surface"],
                params=params,
                days=options["days"],
                created_by="manage.py train_model",
                progress=self.stdout.write,
            )
        except NotEnoughData as exc:
            raise CommandError(f"Not enough data: {exc}") from exc
        if options["activate"]:
            try:
                registry.model_activate(
                    model=model,
                    user="manage.py train_model",
                    override_reason=options["override_reason"],
                )
            except registry.ActivationRefused as exc:
                raise CommandError(f"{model.label} was not activated: {exc}") from exc
            self.stdout.write(self.style.SUCCESS(f"{model.label} now serves {model.surface}."))
