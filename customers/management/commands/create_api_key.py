from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from customers.models import Scope
from customers.selectors import customer_by_slug
from customers.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a customer and print it once (only its hash is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("customer", help="the customer's slug")
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--scopes",
            default=",".join(Scope.values),
            help=f"comma-separated, from {', '.join(Scope.values)} (default: all)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        customer = customer_by_slug(slug=options["customer"])
        if customer is None:
            raise CommandError(f"No customer with slug {options['customer']!r}.")
        scopes = [scope.strip() for scope in options["scopes"].split(",") if scope.strip()]
        try:
            api_key, plaintext = api_key_create(
                customer=customer, name=options["name"], scopes=scopes
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stderr.write(
            f"API key {api_key.name!r} for {customer.slug} with scopes {', '.join(api_key.scopes)}."
            " Copy it now; it is not shown again:"
        )
        self.stdout.write(plaintext)
