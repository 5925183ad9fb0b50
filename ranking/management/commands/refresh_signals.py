from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from customers.selectors import customer_by_slug, customer_of, unscoped_active_customer_ids
from ranking.services import signals_refresh


class Command(BaseCommand):
    help = "Recompute and publish signals for one customer (--customer) or all active ones."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--customer", help="a customer's slug; all active customers if absent")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["customer"]:
            customer = customer_by_slug(slug=options["customer"])
            if customer is None or not customer.is_active:
                raise CommandError(f"No active customer with slug {options['customer']!r}.")
            customers = [customer]
        else:
            customers = [customer_of(customer_id=pk) for pk in unscoped_active_customer_ids()]
        for customer in customers:
            result = signals_refresh(customer_id=customer.pk)
            self.stdout.write(
                f"{customer.slug}: version {result.version}, {result.items} items, "
                f"{result.query_pairs} query-item pairs, {result.event_groups} event groups, "
                f"{result.seconds:.2f}s"
            )
