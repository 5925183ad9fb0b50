"""`manage.py demo`: a demo shop with catalog, simulated shoppers, fresh signals, logins, a key.

It migrates, builds the shop (or reuses it), refreshes the signals, prints the admin login, an API
key and a ready-to-paste curl, and then serves. On the embedded default the signal store lives in
this process, so the demo serves from the same process that built it.
"""

from __future__ import annotations

import secrets
import shlex
import time
from datetime import timedelta
from typing import Any

import orjson
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from catalog.contracts import CatalogItemIn
from catalog.models import Item
from catalog.services import items_upsert
from customers.models import Customer, Role, Scope
from customers.services import api_key_create, customer_create, membership_add
from demo.simulation import build_world, simulate
from demo.terminal import ctrl_c_stops_only_this
from demo.traffic import events_send, simulate_ranked_traffic
from events.models import Event
from ranking.learning import registry
from ranking.learning.training import NotEnoughData, model_train
from ranking.models import Surface
from ranking.services import signals_refresh

DEMO_SLUG = "demo-shop"
EVENT_BATCH = 1000


class Command(BaseCommand):
    help = "Build a demo shop with simulated shoppers, refresh its signals and serve it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--items", type=int, default=3000)
        parser.add_argument("--shoppers", type=int, default=4000)
        parser.add_argument("--sessions", type=int, default=12000)
        parser.add_argument("--days", type=int, default=30, help="days of simulated history")
        parser.add_argument("--rebuild", action="store_true", help="rebuild an existing demo shop")
        parser.add_argument("--serve", action="store_true", help="serve after building")
        parser.add_argument("--addr", default="127.0.0.1:8000", help="address to serve on")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        call_command("migrate", interactive=False, verbosity=0)
        customer = Customer.objects.filter(slug=DEMO_SLUG).first()
        if customer is not None and options["rebuild"]:
            self.stdout.write("Removing the old demo shop...")
            customer.delete()
            customer = None
        built = False
        if customer is None or not Event.objects.for_customer(customer.pk).exists():
            customer = customer or customer_create(
                name="Demo Shop", slug=DEMO_SLUG, currency="EUR", time_zone="Europe/Berlin"
            )
            self._build_shop(customer, options)
            built = True
        else:
            self.stdout.write("Reusing the demo shop built earlier (--rebuild builds anew).")

        self.stdout.write("Refreshing signals...")
        result = signals_refresh(customer_id=customer.pk)
        self.stdout.write(
            f"  signal version {result.version}: {result.items} items, "
            f"{result.query_pairs} query-item pairs in {result.seconds:.1f}s"
        )
        if built:
            self._train(customer)
        admin_password, merchandiser_password = self._users(customer)
        _, key = api_key_create(
            customer=customer, name=f"demo {timezone.now():%Y-%m-%d %H:%M}", scopes=Scope.values
        )
        self._print_access(customer, key, admin_password, merchandiser_password, options["addr"])
        self.stdout.write(f"Ready in {time.perf_counter() - started:.0f}s.")
        if options["serve"]:
            with ctrl_c_stops_only_this():  # Ctrl-C stops the demo and `make demo` exits 0
                call_command("runserver", options["addr"], use_reloader=False)

    def _build_shop(self, customer: Customer, options: dict[str, Any]) -> None:
        world = build_world(n_items=options["items"], n_shoppers=options["shoppers"])
        self.stdout.write(f"Building the catalog: {options['items']} items...")
        catalog = [CatalogItemIn.model_validate(row, strict=False) for row in world.catalog()]
        for start in range(0, len(catalog), 5000):
            items_upsert(customer_id=customer.pk, items=catalog[start : start + 5000])
        # Two thirds of the history is shown in the retriever's order (the shop before us); then
        # the signals are computed and the last third is ranked by the engine and logged, so the
        # shop has a rank log to learn from.
        ranked_sessions = options["sessions"] // 3
        history_sessions = options["sessions"] - ranked_sessions
        end = timezone.now() - timedelta(hours=1)
        first_day = end - timedelta(days=options["days"])
        middle = first_day + (end - first_day) * 2 / 3
        self.stdout.write(
            f"Simulating {history_sessions} shopper sessions over {options['days'] * 2 // 3} "
            "days in the retriever's order..."
        )
        batch: list[dict[str, Any]] = []
        counts = {"impression": 0, "click": 0, "add_to_cart": 0, "purchase": 0}
        for events in simulate(world, sessions=history_sessions, start=first_day, end=middle):
            batch.extend(events)
            for event in events:
                counts[event["type"]] += 1
            if len(batch) >= EVENT_BATCH:
                events_send(customer.pk, batch)
                batch = []
        if batch:
            events_send(customer.pk, batch)
        self.stdout.write("  " + ", ".join(f"{count} {kind}s" for kind, count in counts.items()))
        signals_refresh(customer_id=customer.pk)
        self.stdout.write(
            f"Simulating {ranked_sessions} more sessions ranked by the engine, logging features..."
        )
        counts = simulate_ranked_traffic(
            customer_id=customer.pk,
            world=world,
            sessions=ranked_sessions,
            start=middle,
            end=end,
            seed=12,
        )
        self.stdout.write("  " + ", ".join(f"{count} {kind}s" for kind, count in counts.items()))

    def _train(self, customer: Customer) -> None:
        """Train LambdaMART on the rank log of each surface and activate it, so the demo shop
        ranks with a model. A small simulated shop's holdout is noisy: when the model does not
        beat the baseline there, the demo activates it with an override whose reason says so,
        recorded in the registry like any other override."""
        for surface in (Surface.SEARCH, Surface.BROWSE):
            self.stdout.write(f"Training a LambdaMART model for {surface}...")
            try:
                model = model_train(
                    customer_id=customer.pk,
                    surface=surface,
                    created_by="manage.py demo",
                    progress=lambda line: self.stdout.write(f"  {line}"),
                )
                try:
                    registry.model_activate(model=model, user="manage.py demo")
                except registry.ActivationRefused as exc:
                    if not exc.needs_override:
                        raise
                    self.stdout.write(f"  the guard asks for a reason: {exc}")
                    reason = "demo shop: serve the trained model so the demo shows one"
                    registry.model_activate(
                        model=model, user="manage.py demo", override_reason=reason
                    )
                    self.stdout.write(f"  activated with the recorded reason {reason!r}.")
            except (NotEnoughData, registry.ActivationRefused) as exc:
                self.stdout.write(f"  not serving a model on {surface}: {exc}")
            else:
                self.stdout.write(f"  {model.label} serves {surface}.")

    @transaction.atomic
    def _users(self, customer: Customer) -> tuple[str, str]:
        """A superuser and a merchandiser who sees only the demo shop; fresh passwords each run."""
        user_model = get_user_model()
        passwords = []
        for username, superuser in (("admin", True), ("merchandiser", False)):
            user, _ = user_model.objects.get_or_create(username=username)
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            user.is_staff = True
            user.is_superuser = superuser
            user.save()
            if not superuser:
                user.user_permissions.set(
                    Permission.objects.filter(
                        content_type__app_label__in=[
                            "catalog",
                            "events",
                            "ranking",
                            "customers",
                            "merchandising",
                        ]
                    ).exclude(codename__in=["add_customer", "delete_customer"])
                )
                membership_add(customer=customer, user=user, role=Role.MERCHANDISER)
            passwords.append(password)
        return passwords[0], passwords[1]

    def _print_access(
        self, customer: Customer, key: str, admin_password: str, merch_password: str, addr: str
    ) -> None:
        base = f"http://{addr}"
        items = Item.objects.for_customer(customer.pk).order_by("external_id")
        ids = [
            item_id
            for item_id, categories in items.values_list("external_id", "categories")[:2000]
            if "shoes/running" in categories
        ][:5] or list(items.values_list("external_id", flat=True)[:5])
        body = {
            "surface": "search",
            "query": "running shoes",
            "user_id": "shopper-00001",
            "items": [{"id": item_id, "relevance": 10.0 - n} for n, item_id in enumerate(ids)],
            "limit": 5,
        }
        curl = (
            f"curl -s {base}/v1/rank -H 'Authorization: Bearer {key}' "
            f"-H 'Content-Type: application/json' -d {shlex.quote(orjson.dumps(body).decode())}"
        )
        store = settings.SIGNAL_STORE["BACKEND"]
        database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        self.stdout.write(
            self.style.SUCCESS(
                "\n".join(
                    [
                        "",
                        f"Demo shop '{customer.name}' (database {database}, signal store {store})",
                        f"  Admin:        {base}/admin/   user admin / {admin_password}",
                        f"  Merchandiser: {base}/admin/   user merchandiser / {merch_password}"
                        "   (sees only this shop)",
                        f"  Explain UI:   {base}/explain/   (log in as either user)",
                        f"  API docs:     {base}/v1/docs",
                        f"  API key (shown once, all scopes): {key}",
                        "  Try a ranking:",
                        f"    {curl}",
                        "",
                    ]
                )
            )
        )
