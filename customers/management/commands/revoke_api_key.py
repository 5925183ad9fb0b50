from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from customers.selectors import unscoped_api_keys_by_prefix
from customers.services import api_key_revoke


class Command(BaseCommand):
    help = "Revoke an API key by its prefix (as shown in the admin)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix")

    def handle(self, *args: Any, **options: Any) -> None:
        keys = unscoped_api_keys_by_prefix(prefix=options["prefix"])
        if len(keys) != 1:
            raise CommandError(f"{len(keys)} keys have prefix {options['prefix']!r}; need one.")
        api_key_revoke(api_key=keys[0])
        self.stdout.write(f"Revoked {keys[0]}.")
