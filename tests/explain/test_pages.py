"""The explain UI's pages: what a merchandiser sees, form errors naming fields, permalinks and
exports, and tenant isolation on every page and through every parameter."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone

from catalog.models import Item
from customers.models import Customer
from explain import services
from ranking.models import RankLog
from ranking.services import signals_refresh
from ranking.signals.schema import FEATURE_INDEX, FEATURES, RELEVANCE_COLUMN
from ranking.signals.store import SignalStoreUnavailable
from tests.conftest import ApiCaller
from tests.factories import (
    CustomerFactory,
    ItemFactory,
    MembershipFactory,
    RankLogFactory,
    UserFactory,
)
from tests.ranking.learning_shop import register

pytestmark = pytest.mark.django_db

IDS = [f"sku-{i}" for i in range(8)]
PAGES = [
    "/explain/",
    "/explain/item/",
    "/explain/why/",
    "/explain/compare/",
    "/explain/export.json",
    "/explain/export.csv",
]


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def build_shop(name: str, *, secret: str = "") -> Customer:
    customer = CustomerFactory(name=name)
    for i, item_id in enumerate(IDS):
        ItemFactory(
            customer=customer,
            external_id=item_id,
            title=f"{secret}{name} shoe {i}",
            brand="Acme" if i % 2 else "Zeta",
            categories=["shoes", "shoes/running"],
        )
    signals_refresh(customer_id=customer.pk)
    return customer


@pytest.fixture
def shop() -> Customer:
    return build_shop("Outdoor")


@pytest.fixture
def other() -> Customer:
    """Another customer: same item ids, titles no one else may see."""
    return build_shop("Rival", secret="SECRET-")


def logged_in_user(**fields: Any) -> Any:
    user = UserFactory(**fields)
    user.save()  # the factory leaves the password unsaved, and a login session checks it
    return user


@pytest.fixture
def merch(shop: Customer, other: Customer) -> Client:
    """A merchandiser of `shop` only, logged in."""
    user = logged_in_user(username="merch")
    MembershipFactory(customer=shop, user=user)
    logged_in = Client()
    logged_in.force_login(user)
    return logged_in


def url(path: str, customer: Customer, **params: Any) -> str:
    query = {
        "customer": customer.pk,
        "surface": "search",
        "query": "shoes",
        "source": "ids",
        "ids": "\n".join(IDS),
        **params,
    }
    return f"{path}?{urlencode(query)}"


def page(client: Client, path: str, customer: Customer, **params: Any) -> str:
    response = client.get(url(path, customer, **params))
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def field_errors(body: str, field: str) -> bool:
    marker = f'class="field-{field}"'
    start = body.index(marker)
    return "errorlist" in body[start : body.index("</div>", start)]


@pytest.fixture
def shop_api(shop: Customer, make_caller: Callable[..., ApiCaller]) -> ApiCaller:
    return make_caller(shop)


def create_rule(api: ApiCaller, rule: dict[str, Any]) -> int:
    response = api.post("/v1/rules", rule)
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


def pin(item_id: str, position: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": f"pin {item_id}",
        "action": {"type": "pin", "pins": [{"item_id": item_id, "position": position}]},
        **extra,
    }


# --- access and tenant isolation ----------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_a_login(path: str, shop: Customer) -> None:
    response = Client().get(url(path, shop))

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("path", PAGES)
def test_every_page_answers_404_for_a_customer_not_the_users(
    merch: Client, other: Customer, path: str
) -> None:
    response = merch.get(url(path, other, item="sku-1", a="sku-1", b="sku-2", compare="blend"))

    assert response.status_code == 404
    assert b"SECRET-" not in response.content


@pytest.mark.parametrize("customer_id", ["abc", "0", "999999", "9" * 30, "-1"])
def test_an_unknown_customer_id_is_404(merch: Client, customer_id: str) -> None:
    assert merch.get(f"/explain/?customer={customer_id}").status_code == 404


def test_the_form_offers_only_the_users_customers(merch: Client) -> None:
    body = merch.get("/explain/").content.decode()

    assert "Outdoor" in body
    assert "Rival" not in body


def test_a_superuser_sees_every_customer(shop: Customer, other: Customer) -> None:
    admin = logged_in_user(is_superuser=True)
    client = Client()
    client.force_login(admin)

    assert "SECRET-Rival shoe 1" in page(client, "/explain/", other)
    assert "Rival" in client.get("/explain/").content.decode()


def test_a_user_without_customers_is_told_so(shop: Customer) -> None:
    client = Client()
    client.force_login(logged_in_user())

    body = client.get("/explain/").content.decode()
    assert 'id="no-customers"' in body
    assert client.get(url("/explain/", shop)).status_code == 404


def test_pasted_ids_only_ever_show_the_users_own_catalog(merch: Client, shop: Customer) -> None:
    Item.objects.filter(customer=shop, external_id="sku-7").delete()

    body = page(merch, "/explain/", shop)

    assert "Outdoor shoe 1" in body
    assert "SECRET-" not in body
    assert "(not in the catalog)" in body  # sku-7: the other shop's item of that id stays unseen


def test_another_customers_logged_request_cannot_be_replayed(
    merch: Client, shop: Customer, other: Customer
) -> None:
    logged = log_request(other, "rival-request")

    body = page(merch, "/explain/", shop, source="log", request_id=logged.request_id)

    assert field_errors(body, "request_id")
    assert "No logged request of this customer has this id." in body
    assert "SECRET-" not in body


def test_another_customers_model_cannot_be_chosen(
    merch: Client, shop: Customer, other: Customer
) -> None:
    model = register(other, algorithm="linear")

    body = page(merch, "/explain/", shop, ranker=f"model-{model.pk}")
    assert field_errors(body, "ranker")
    body = page(merch, "/explain/compare/", shop, compare=f"model-{model.pk}")
    assert field_errors(body, "compare")
    assert model.label not in body  # its label is never offered


def test_the_rule_of_another_customer_never_shows(
    merch: Client, shop: Customer, other: Customer, make_caller: Callable[..., ApiCaller]
) -> None:
    create_rule(make_caller(other), pin("sku-7", 1, name="rival secret pin"))

    body = page(merch, "/explain/", shop)

    assert "rival secret pin" not in body
    assert 'class="badge' not in body


# --- the pages ----------------------------------------------------------------------------------


def log_request(customer: Customer, request_id: str) -> RankLog:
    features = np.zeros((4, len(FEATURES)), dtype="<f4")
    features[:, RELEVANCE_COLUMN] = [1.5, 0.5, -0.5, -1.5]
    return RankLogFactory(
        customer=customer,
        request_id=request_id,
        shopper_key="u:shopper-1",
        item_ids=IDS[:4],
        features=features.tobytes(),
    )


def test_the_ranking_page_shows_each_item_with_reason_bar_label_and_links(
    merch: Client, shop: Customer
) -> None:
    body = page(merch, "/explain/", shop)

    assert body.count('class="ranked-row"') == len(IDS)
    assert body.count('<svg class="bar"') == len(IDS)
    assert body.count("exact · linear") == len(IDS)
    assert 'id="method-label"' in body
    assert "/explain/item/?" in body
    assert "/explain/why/?" in body
    assert "/explain/export.json?" in body
    assert "/explain/export.csv?" in body


def test_reasons_are_plain_words() -> None:
    from explain.reasons import phrase

    assert phrase("query_ctr", 0.4, 0.3, 0.1) == "clicked often for this query"
    assert phrase("user_brand_affinity", 0.2, 0.5, 0.0) == "matches this shopper's favourite brand"
    assert phrase("query_ctr", -0.4, 0.01, 0.1) == "rarely clicked for this query"
    # A good value that a model holds against the item says so.
    assert phrase("ctr", -0.1, 0.3, 0.1) == "clicked often when shown, which counts against it"
    assert phrase("price", 0.2, 10.0, 50.0) == "cheaper than most items, which counts in its favour"


def test_feature_values_read_in_their_own_units() -> None:
    import math

    from explain.units import shown_value

    assert shown_value("price", math.log1p(87.37)) == "87.37"
    assert shown_value("ctr", 0.0581) == "5.8%"
    assert shown_value("clicks_long", math.log1p(1234.4)) == "1,234"
    assert shown_value("purchases_short", math.log1p(2.5)) == "2.5"
    assert shown_value("freshness", math.exp(-45 / 30)) == "45 days ago"
    assert shown_value("trend", math.log(1.25)) == "+25%"
    assert shown_value("in_stock", 0.0) == "no"
    assert shown_value("relevance", None) == "—"


def test_a_list_s_reasons_name_what_sets_each_item_apart_not_what_lifts_them_all() -> None:
    from explain.reasons import mean_contributions, top_reasons
    from ranking.engine.records import Contribution

    typical = np.zeros(len(FEATURES))
    typical[FEATURE_INDEX["ctr"]] = 0.1
    typical[FEATURE_INDEX["popularity"]] = 1.0
    typical[FEATURE_INDEX["user_brand_affinity"]] = 0.1
    # Every item very popular (the largest contribution of each), each apart in its own way.
    items = [
        [
            Contribution("popularity", 3.0, 2.0),
            Contribution("ctr", 0.3, 0.6),
            Contribution("user_brand_affinity", 0.0, 0.0),
        ],
        [
            Contribution("popularity", 3.0, 2.1),
            Contribution("ctr", 0.1, 0.1),
            Contribution("user_brand_affinity", 0.8, 0.5),
        ],
        [
            Contribution("popularity", 3.0, 1.9),
            Contribution("ctr", 0.02, -0.4),
            Contribution("user_brand_affinity", 0.0, 0.0),
        ],
    ]

    among = mean_contributions(items)
    alone = [top_reasons(item, typical)[0] for item in items]
    apart = [top_reasons(item, typical, 1, among)[0] for item in items]

    assert alone == ["popular in the shop"] * 3
    assert apart == [
        "clicked often when shown",
        "matches this shopper's favourite brand",
        "rarely clicked when shown",
    ]


def test_rules_show_as_badges_linked_to_the_rule_and_the_move_against_no_rules(
    merch: Client, shop: Customer, shop_api: ApiCaller
) -> None:
    rule_id = create_rule(shop_api, pin("sku-7", 1))
    hide_id = create_rule(
        shop_api,
        {"name": "hide sku-6", "selector": {"item_ids": ["sku-6"]}, "action": {"type": "hide"}},
    )
    ids = "\n".join(f"{item_id} {10 - n}" for n, item_id in enumerate(IDS))

    body = page(merch, "/explain/", shop, ids=ids)

    first = body.index('data-item-id="sku-7" data-position="1"')
    row = body[first : body.index("</tr>", first)]
    assert f"/admin/merchandising/rule/{rule_id}/change/" in row
    assert "pinned at position 1" in row
    assert "▲" in row  # last by relevance without rules
    removed = body[body.index('id="removed"') :]
    assert "sku-6" in removed
    assert f"/admin/merchandising/rule/{hide_id}/change/" in removed


def test_a_scheduled_rule_shows_only_at_a_time_it_is_on(
    merch: Client, shop: Customer, shop_api: ApiCaller
) -> None:
    start = timezone.now() + timedelta(days=3)
    create_rule(shop_api, pin("sku-7", 1, windows=[{"start": start.isoformat()}]))

    now = page(merch, "/explain/", shop)
    later = page(merch, "/explain/", shop, at=(start + timedelta(hours=1)).isoformat())

    assert 'data-item-id="sku-7" data-position="1"' not in now
    assert 'data-item-id="sku-7" data-position="1"' in later


def test_the_item_page_shows_every_feature_against_the_typical_value(
    merch: Client, shop: Customer
) -> None:
    body = page(merch, "/explain/item/", shop, item="sku-2")

    assert body.count('class="feature-row"') == len(FEATURES)
    assert "Outdoor shoe 2" in body
    assert "exact · linear" in body
    assert "customer&#x27;s typical" in body or "customer's typical" in body
    assert "No rule touched this item." in body
    # In the shop's words and units; what the model reads one click away.
    price = body[body.index('class="feature-row" data-feature="price"') :]
    price = price[: price.index("</tr>")]
    assert "<td>price</td>" in price
    assert '<td class="num">50.00</td>' in price  # stored as log(1 + 50) = 3.9318
    rate = body[body.index('class="feature-row" data-feature="ctr"') :]
    assert "<td>click rate</td>" in rate[: rate.index("</tr>")]
    assert "%</td>" in rate[: rate.index("</tr>")]
    exact = body[body.index('id="exact-numbers"') :]
    assert "<code>price</code>" in exact
    assert "3.9318" in exact
    assert body.count('class="exact-row"') == len(FEATURES)


def test_an_item_not_ranked_is_an_error_on_the_item_field(merch: Client, shop: Customer) -> None:
    body = page(merch, "/explain/item/", shop, item="nope")

    assert field_errors(body, "item")


def test_why_a_above_b_shows_gaps_and_says_when_a_rule_decides(
    merch: Client, shop: Customer, shop_api: ApiCaller
) -> None:
    ids = "\n".join(f"{item_id} {10 - n}" for n, item_id in enumerate(IDS))

    body = page(merch, "/explain/why/", shop, ids=ids, a="sku-0", b="sku-7")
    assert "The model puts sku-0 above sku-7" in body
    assert body.count('class="gap-row"') == len(FEATURES)

    create_rule(shop_api, pin("sku-7", 1))
    body = page(merch, "/explain/why/", shop, ids=ids, a="sku-7", b="sku-0")
    assert "Rules put sku-7 above sku-0" in body
    assert "pinned at position 1" in body


def test_compare_with_and_without_rules_shows_the_deltas(
    merch: Client, shop: Customer, shop_api: ApiCaller
) -> None:
    create_rule(shop_api, pin("sku-7", 1))
    ids = "\n".join(f"{item_id} {10 - n}" for n, item_id in enumerate(IDS))

    body = page(merch, "/explain/compare/", shop, ids=ids, compare="live-norules")

    assert body.count('class="compare-row"') == len(IDS)
    assert 'data-item-id="sku-7" data-position-a="1" data-position-b="8"' in body


def test_compare_a_registry_model_with_the_blend(merch: Client, shop: Customer) -> None:
    model = register(shop, algorithm="lambdamart")

    body = page(merch, "/explain/compare/", shop, ranker=f"model-{model.pk}", compare="blend")

    assert f"model {model.label} (candidate)" in body
    assert "tree_shap" in body
    assert "linear" in body
    assert body.count('class="compare-row"') == len(IDS)


def test_replaying_a_logged_request_ranks_its_items_for_its_shopper(
    merch: Client, shop: Customer
) -> None:
    logged = log_request(shop, "req-42")

    body = page(merch, "/explain/", shop, source="log", request_id=logged.request_id)

    assert body.count('class="ranked-row"') == 4
    assert "Replaying logged request req-42" in body
    assert 'data-item-id="sku-0" data-position="1"' in body  # the highest logged relevance


def test_the_top_items_of_a_category_are_the_candidates(merch: Client, shop: Customer) -> None:
    body = page(merch, "/explain/", shop, source="category", from_category="shoes", top_n=3)

    assert body.count('class="ranked-row"') == 3


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"query": ""}, "query"),
        ({"ids": ""}, "ids"),
        ({"ids": "sku-1\nsku-1"}, "ids"),
        ({"ids": "sku-1 high"}, "ids"),
        ({"source": "category", "from_category": ""}, "from_category"),
        ({"source": "category", "from_category": "hats"}, "from_category"),
        ({"source": "log", "request_id": ""}, "request_id"),
        ({"at": "tomorrow"}, "at"),
        ({"context": "mobile"}, "context"),
        ({"ranker": "model-x"}, "ranker"),
        ({"top_n": "0"}, "top_n"),
    ],
)
def test_bad_input_is_an_error_on_its_field(
    merch: Client, shop: Customer, params: dict[str, str], field: str
) -> None:
    body = page(merch, "/explain/", shop, **params)

    assert field_errors(body, field)
    assert 'class="ranked-row"' not in body


def test_the_json_export_has_the_api_shape_and_the_csv_a_row_per_item(
    merch: Client, shop: Customer
) -> None:
    data = merch.get(url("/explain/export.json", shop)).json()
    assert data["method"] == "linear"
    assert data["exact"] is True
    assert len(data["items"]) == len(IDS)
    explanation = data["items"][0]["explanation"]
    assert set(explanation) == {
        "method",
        "base_value",
        "contributions",
        "model_score",
        "transform",
        "rules",
        "position_before_rules",
    }

    response = merch.get(url("/explain/export.csv", shop))
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:3] == ["position", "id", "title"]
    assert len(rows) == len(IDS) + 1
    assert rows[0][-len(FEATURES) :] == [f"contribution:{name}" for name in FEATURES]

    bad = merch.get(url("/explain/export.json", shop, query=""))
    assert bad.status_code == 400
    assert "query" in bad.json()["errors"]


def test_the_permalink_is_the_page_url(merch: Client, shop: Customer) -> None:
    address = url("/explain/", shop, show=3)
    body = page(merch, "/explain/", shop, show=3)

    assert body.count('class="ranked-row"') == 3
    assert 'id="permalink"' in body
    assert merch.get(address).content.decode().count('class="ranked-row"') == 3


def test_services_refuse_a_model_of_another_surface(shop: Customer) -> None:
    model = register(shop, surface="browse", algorithm="linear")

    with pytest.raises(services.ExplainError) as error:
        services.ranker_build(
            customer_id=shop.pk, surface="search", key=f"model-{model.pk}", field_name="ranker"
        )
    assert error.value.field == "ranker"


def test_when_the_signal_store_is_down_the_page_says_so(
    merch: Client, shop: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    class DownStore:
        def fetch(self, *args: Any, **kwargs: Any) -> Any:
            raise SignalStoreUnavailable("down")

        def current_meta(self, customer_id: int) -> Any:
            raise SignalStoreUnavailable("down")

    monkeypatch.setattr("explain.services.explained.signal_store", DownStore)

    body = page(merch, "/explain/", shop)

    assert "The signal store did not answer" in body
    assert 'class="ranked-row"' not in body


def test_the_bars_stay_inside_their_box() -> None:
    from explain.charts import bar_scale, diverging_bar
    from ranking.engine.records import Contribution

    rows = [
        [Contribution("ctr", 0.0, 2.0), Contribution("price", 0.0, -1.0)],
        [Contribution("ctr", 0.0, -3.0), Contribution("trend", 0.0, 0.5)],
    ]
    scale = bar_scale(rows)
    for contributions in rows:
        bar = diverging_bar(contributions, scale)
        for segment in bar.segments:
            assert segment.x >= 0
            assert segment.x + segment.width <= bar.width
            assert (segment.x >= bar.center) == segment.positive
