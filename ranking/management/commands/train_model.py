"""`manage.py train_model CUSTOMER SURFACE`: train a candidate on the rank log, with progress."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from customers.models import Customer
from ranking.learning import registry
from ranking.learning.training import NotEnoughData, TrainingParams, model_train
from ranking.models import Algorithm, Surface


def customer_by_slug(slug: str) -> Customer:
    customer = Customer.objects.filter(slug=slug).first()
    if customer is None:
        raise CommandError(f"No customer with slug {slug!r}.")
    return customer


class Command(BaseCommand):
    help = "Train a ranking model for one customer's surface and register it as a candidate."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("customer", help="the customer's slug")
        parser.add_argument("surface", choices=Surface.values)
        parser.add_argument("--algorithm", choices=Algorithm.values, default=Algorithm.LAMBDAMART)
        parser.add_argument("--days", type=int, help="training window (TRAINING_WINDOW_DAYS)")
        parser.add_argument("--rounds", type=int, help="boosting rounds (LambdaMART)")
        parser.add_argument(
            "--no-position-bias-correction",
            action="store_true",
            help="train on the raw labels (to measure what the correction brings)",
        )
        parser.add_argument("--activate", action="store_true", help="activate it if it may")

    def handle(self, *args: Any, **options: Any) -> None:
        customer = customer_by_slug(options["customer"])
        params = TrainingParams(
            algorithm=options["algorithm"],
            position_bias_correction=not options["no_position_bias_correction"],
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
                registry.model_activate(model=model, user="manage.py train_model")
            except registry.ActivationRefused as exc:
                raise CommandError(f"{model.label} was not activated: {exc}") from exc
            self.stdout.write(self.style.SUCCESS(f"{model.label} now serves {model.surface}."))
