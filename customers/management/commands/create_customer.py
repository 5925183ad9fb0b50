from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from customers.services import customer_create


class Command(BaseCommand):
    help = "Create a customer (tenant)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--max-candidates", type=int, default=1000)
        parser.add_argument("--currency", default="", help="ISO 4217 code of its prices, e.g. EUR")
        parser.add_argument(
            "--time-zone", default="UTC", help="where its merchandisers work, e.g. Europe/Berlin"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            customer = customer_create(
                name=options["name"],
                slug=options["slug"],
                max_candidates=options["max_candidates"],
                currency=options["currency"],
                time_zone=options["time_zone"],
            )
        except ValidationError as exc:
            raise CommandError(
                "; ".join(
                    f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items()
                )
            ) from exc
        self.stdout.write(f"Created customer {customer.slug} (id {customer.pk}).")
