from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from customers.services import customer_create


class Command(BaseCommand):
    help = "Create a customer (tenant)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--max-candidates", type=int, default=1000)

    def handle(self, *args: Any, **options: Any) -> None:
        customer = customer_create(
            name=options["name"], slug=options["slug"], max_candidates=options["max_candidates"]
        )
        self.stdout.write(f"Created customer {customer.slug} (id {customer.pk}).")
