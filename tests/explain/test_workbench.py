"""The workbench: a query's live ranking as a grid built from the candidates the search engine sent
(the rank log), the category's items when none was logged; changes written as drafts that never
serve until published, with history; bad input naming its field; other shops' staff locked out."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from catalog.models import Item
from customers.models import Customer, Role
from merchandising.contracts import RuleIn
from merchandising.models import Rule, RuleRevision
from ranking.signals.store import SignalStoreUnavailable
from tests.conftest import ApiCaller
from tests.explain.insight_shop import IDS, log_request
from tests.explain.test_pages import build_shop
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def shop() -> Customer:
    return build_shop("Outdoor")


@pytest.fixture
def other() -> Customer:
    return build_shop("Rival", secret="SECRET-")


def staff(customer: Customer, role: str = Role.MERCHANDISER, name: str = "merch") -> Client:
    user = UserFactory(username=name, is_staff=True)
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="merchandising"))
    MembershipFactory(customer=customer, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def merch(shop: Customer, other: Customer) -> Client:
    return staff(shop)


@pytest.fixture
def api(shop: Customer, make_caller: Callable[..., ApiCaller]) -> ApiCaller:
    return make_caller(shop)


def bench(client: Client, customer: Customer, **params: Any) -> str:
    query = {"customer": customer.pk, "surface": "search", **params}
    response = client.get("/explain/workbench/?" + urlencode(query))
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def grid(body: str) -> list[str]:
    """The grid's item ids, in order."""
    return re.findall(r'class="bench-card[^"]*" data-item-id="([^"]+)"', body)


def post(client: Client, action: str, customer: Customer, **fields: Any) -> str:
    """POST to a workbench action and follow back to the page; the page's text."""
    data = {"customer": customer.pk, "surface": "search", "query": "boots", **fields}
    response = client.post(f"/explain/workbench/{action}/", data, follow=True)
    assert response.status_code == 200, response.content[:500]
    return html.unescape(response.content.decode())


def ranked(api: ApiCaller, query: str = "boots") -> list[str]:
    items = [{"id": item_id, "relevance": 8.0 - n} for n, item_id in enumerate(IDS)]
    response = api.post("/v1/rank", {"surface": "search", "query": query, "items": items})
    assert response.status_code == 200, response.content
    assert not response.json()["degraded"], "the rank answer is degraded: the test needs signals"
    return [item["id"] for item in response.json()["items"]]


def drafts_of(customer: Customer) -> list[int]:
    return list(Rule.objects.filter(customer=customer, draft=True).values_list("pk", flat=True))


# --- the grid -----------------------------------------------------------------------------------


def test_the_grid_ranks_the_candidates_of_the_latest_logged_search(
    merch: Client, shop: Customer
) -> None:
    log_request(shop, "old", "boots", IDS[:3], days_ago=3)
    log_request(shop, "new", "boots", IDS[2:7], days_ago=1)

    body = bench(merch, shop, query="Boots")

    assert sorted(grid(body)) == IDS[2:7]
    summary = re.search(r'id="workbench-summary">([^<]*)<', body)
    assert summary is not None
    assert "The 5 items the search engine sent for “boots” in its latest logged request" in (
        html.unescape(summary.group(1))
    )
    assert "Outdoor shoe 2" in body
    assert "50.00" in body  # the price
    assert "in stock" in body
    assert 'id="query-list"' in body
    assert '<option value="boots">' not in body  # no traffic sent yet


def test_items_a_serving_rule_hides_by_name_are_listed_though_the_log_lacks_them(
    merch: Client, shop: Customer, api: ApiCaller
) -> None:
    document = {
        "name": "No sku-5 for boots",
        "query": {"match": "exact", "patterns": ["boots"]},
        "selector": {"item_ids": ["sku-5"]},
        "action": {"type": "hide"},
    }
    assert api.post("/v1/rules", document).status_code == 201
    log_request(shop, "new", "boots", [item_id for item_id in IDS if item_id != "sku-5"])

    body = html.unescape(bench(merch, shop, query="boots"))
    elsewhere = html.unescape(bench(merch, shop, query="sandals", category="shoes"))

    assert "sku-5" not in grid(body)
    assert re.search(r'<li data-item-id="sku-5">“Outdoor shoe 5”.*No sku-5 for boots', body)
    assert "and 1 item that rules hide here by name" in body
    assert 'data-item-id="sku-5"' in elsewhere  # the rule is for “boots” only


def test_an_item_shows_its_catalog_image_when_it_is_a_web_address(
    merch: Client, shop: Customer
) -> None:
    Item.objects.filter(customer=shop, external_id="sku-1").update(
        attributes={"image_url": "https://images.example/sku-1.jpg"}
    )
    Item.objects.filter(customer=shop, external_id="sku-2").update(
        attributes={"image_url": "javascript:alert(1)"}
    )
    log_request(shop, "new", "boots", IDS)

    body = bench(merch, shop, query="boots")

    assert body.count("<img ") == 1
    assert '<img src="https://images.example/sku-1.jpg" alt="Outdoor shoe 1"' in body
    assert "javascript:" not in body


def test_without_a_logged_search_the_categorys_items_stand_in(
    merch: Client, shop: Customer
) -> None:
    without_category = bench(merch, shop, query="sandals")
    with_category = bench(merch, shop, query="sandals", category="shoes/running")

    assert grid(without_category) == []
    assert "pick a category to work on its items" in html.unescape(without_category)
    assert sorted(grid(with_category)) == IDS
    assert "most popular items of the category shoes/running stand in" in with_category


def test_a_browse_page_uses_its_logged_requests_or_the_category(
    merch: Client, shop: Customer
) -> None:
    log_request(shop, "b1", "", IDS[:4], surface="browse", category="shoes")

    logged = bench(merch, shop, surface="browse", category="shoes")
    unlogged = bench(merch, shop, surface="browse", category="shoes/running")
    no_category = bench(merch, shop, surface="browse", category="")
    unknown = bench(merch, shop, surface="browse", category="hats")

    assert sorted(grid(logged)) == IDS[:4]
    assert sorted(grid(unlogged)) == IDS
    assert "Pick the category shoppers browsed." in no_category
    assert "Pick a category of the catalog." in unknown


def test_a_shopper_sees_the_page_personalised(merch: Client, shop: Customer) -> None:
    log_request(shop, "new", "boots", IDS)

    body = bench(merch, shop, query="boots", user="u-42")

    assert "as shopper u-42 sees it" in body


# --- changes as drafts --------------------------------------------------------------------------


def test_hiding_an_item_is_a_draft_until_published(
    merch: Client, shop: Customer, api: ApiCaller
) -> None:
    log_request(shop, "new", "boots", IDS)

    drafted = post(merch, "change", shop, item="sku-3", do="hide")
    serving_while_draft = ranked(api)
    rule_id = drafts_of(shop)[0]
    published = post(merch, "publish", shop, drafts=[rule_id], when="now")

    assert "Saved as a draft: Hide “Outdoor shoe 3” for “boots”" in drafted
    assert "sku-3" not in grid(drafted)
    assert re.search(r"“Outdoor shoe 3” is hidden \(it was #\d+\)", drafted)
    assert "sku-3" in serving_while_draft
    assert "Published 1 change: shoppers see it now." in published
    assert "sku-3" not in ranked(api)
    assert "sku-3" in ranked(api, query="sandals")  # the rule is for “boots” only
    kinds = RuleRevision.objects.filter(rule_id_value=rule_id).order_by("number")
    assert [(r.kind, r.draft, r.changed_by is not None) for r in kinds] == [
        ("created", True, True),
        ("published", False, True),
    ]


def test_a_published_change_is_turned_off_from_its_page_and_another_shop_cannot(
    merch: Client, shop: Customer, other: Customer, api: ApiCaller
) -> None:
    log_request(shop, "new", "boots", IDS)
    post(merch, "change", shop, item="sku-3", do="hide")
    rule_id = drafts_of(shop)[0]
    published = post(merch, "publish", shop, drafts=[rule_id], when="now")
    rival = staff(other, name="rival")

    by_rival = rival.post(
        "/explain/workbench/turn-off/", {"customer": shop.pk, "query": "boots", "rules": [rule_id]}
    )
    through_own = post(rival, "turn-off", other, rules=[rule_id])
    still_hidden = ranked(api)
    turned_off = post(merch, "turn-off", shop, rules=[rule_id])

    assert 'id="published-changes"' in published
    assert "Hide “Outdoor shoe 3” for “boots”" in published[published.index("published-changes") :]
    assert by_rival.status_code == 404
    assert "turned off or changed meanwhile" in through_own
    assert "sku-3" not in still_hidden
    assert (
        "Turned off “Hide “Outdoor shoe 3” for “boots””: shoppers no longer see it." in turned_off
    )
    assert 'id="published-changes"' not in turned_off
    assert "sku-3" in ranked(api)
    assert "sku-3" in grid(turned_off)
    last = RuleRevision.objects.filter(rule_id_value=rule_id).order_by("-number").first()
    assert last is not None
    assert last.kind == "updated"
    assert last.note == "turned off on the workbench"
    assert last.document["enabled"] is False


def test_boosting_a_brand_shows_the_moves_before_publishing(
    merch: Client, shop: Customer, api: ApiCaller
) -> None:
    log_request(shop, "new", "boots", IDS)
    before = ranked(api)

    body = post(merch, "change", shop, item="sku-1", do="boost-brand", strength="max")

    rule = Rule.objects.get(customer=shop, draft=True)
    assert rule.selector["brands"] == ["Acme"]
    assert (rule.action["type"], rule.action["strength"]) == ("boost", "max")
    assert "Your changes, not published yet (1)" in body
    assert "Boost brand Acme (max) for “boots”" in body
    assert "boosted ×4 (not published)" in body  # noqa: RUF001 (the page's sign)
    acme = [item_id for item_id in grid(body) if int(item_id[-1]) % 2]
    assert grid(body)[:4] == acme  # every Acme item leads
    assert re.search(r"“Outdoor shoe \d” up \d+ \(from #\d+ to #\d+\)\.", body)
    assert ranked(api) == before  # nothing served changed


def test_a_new_strength_replaces_the_draft_and_pins_share_one_draft(
    merch: Client, shop: Customer
) -> None:
    log_request(shop, "new", "boots", IDS)

    post(merch, "change", shop, item="sku-1", do="boost", strength="weak")
    post(merch, "change", shop, item="sku-1", do="bury", strength="strong")
    post(merch, "change", shop, item="sku-6", do="pin", position=1)
    body = post(merch, "change", shop, item="sku-4", do="pin", position=2)

    rules = {rule.action_type: rule for rule in Rule.objects.filter(customer=shop)}
    assert set(rules) == {"bury", "pin"}
    assert (rules["bury"].action["type"], rules["bury"].action["strength"]) == ("bury", "strong")
    assert rules["pin"].action["pins"] == [
        {"item_id": "sku-6", "position": 1},
        {"item_id": "sku-4", "position": 2},
    ]
    assert grid(body)[:2] == ["sku-6", "sku-4"]
    assert "pinned at #1 (not published)" in body
    assert RuleRevision.objects.filter(rule_id_value=rules["bury"].pk).count() == 2


def test_discarding_drafts_keeps_them_in_history(
    merch: Client, shop: Customer, api: ApiCaller
) -> None:
    log_request(shop, "new", "boots", IDS)
    post(merch, "change", shop, item="sku-3", do="hide")
    rule_id = drafts_of(shop)[0]

    body = post(merch, "discard", shop, drafts=[rule_id])

    assert "Discarded 1 change." in body
    assert drafts_of(shop) == []
    assert RuleRevision.objects.get(rule_id_value=rule_id, kind="deleted").note == (
        "draft discarded"
    )
    assert "sku-3" in grid(body)


def test_publishing_from_a_date_in_the_shops_time_zone_schedules_it(
    merch: Client, shop: Customer, api: ApiCaller
) -> None:
    log_request(shop, "new", "boots", IDS)
    post(merch, "change", shop, item="sku-3", do="hide")
    start = (timezone.now() + timedelta(days=7)).replace(second=0, microsecond=0)

    body = post(
        merch,
        "publish",
        shop,
        drafts=drafts_of(shop),
        when="start",
        start=start.strftime("%Y-%m-%dT%H:%M"),
    )

    rule = Rule.objects.get(customer=shop)
    assert not rule.draft
    assert [w.start for w in RuleIn.stored(rule.document()).windows] == [start]
    assert f"shoppers see it from {start:%-d %b %Y, %H:%M} (UTC)" in body
    assert "sku-3" in ranked(api)  # not yet


@pytest.mark.parametrize(
    ("action", "fields", "message"),
    [
        ("change", {"item": "sku-3", "do": "pin", "position": "0"}, "Position: Give a whole"),
        ("change", {"item": "sku-3", "do": "pin"}, "Position: Give the position to pin"),
        ("change", {"item": "sku-3", "do": "explode"}, "Change: Choose pin, hide, boost, bury"),
        ("change", {"do": "hide"}, "Item: Pick an item."),
        ("change", {"item": "sku-3", "do": "boost", "strength": "huge"}, "Strength: Choose weak"),
        ("change", {"item": "nope", "do": "boost-brand"}, "Item: This item has no brand"),
        ("publish", {"when": "start"}, "Start: Pick the date and time to start serving from."),
        ("publish", {"when": "start", "start": "2001-01-01T10:00"}, "Start: Pick a start in"),
        ("publish", {"when": "start", "start": "soon"}, "Start: Pick a date and time"),
        ("publish", {"when": "now", "drafts": ["999999"]}, "published or discarded meanwhile"),
        ("discard", {}, "Changes: There is no change to publish or discard."),
    ],
)
def test_bad_input_names_the_field_and_stores_nothing(
    merch: Client, shop: Customer, action: str, fields: dict[str, Any], message: str
) -> None:
    log_request(shop, "new", "boots", IDS)
    post(merch, "change", shop, item="sku-5", do="hide")
    draft = drafts_of(shop)[0]
    if action == "publish" and "drafts" not in fields:
        fields = {**fields, "drafts": [draft]}

    body = post(merch, action, shop, **fields)

    assert message in body
    assert drafts_of(shop) == [draft]
    assert Rule.objects.filter(customer=shop).count() == 1


def test_a_publish_refused_by_a_conflict_publishes_nothing(
    merch: Client, shop: Customer, api: ApiCaller
) -> None:
    log_request(shop, "new", "boots", IDS)
    post(merch, "change", shop, item="sku-3", do="hide")
    post(merch, "change", shop, item="sku-6", do="pin", position=1)
    served = RuleIn.model_validate(
        {
            "name": "Pin sku-2 first",
            "action": {"type": "pin", "pins": [{"item_id": "sku-2", "position": 1}]},
        }
    )
    api.post("/v1/rules", served.model_dump(mode="json", exclude_defaults=True))

    body = post(merch, "publish", shop, drafts=drafts_of(shop), when="now")

    assert "Nothing published:" in body
    assert "same priority" in body
    assert len(drafts_of(shop)) == 2


# --- who may see and change -----------------------------------------------------------------------


def test_a_viewer_sees_the_page_but_cannot_change_it(shop: Customer, other: Customer) -> None:
    log_request(shop, "new", "boots", IDS)
    viewer = staff(shop, role=Role.VIEWER, name="viewer")

    body = bench(viewer, shop, query="boots")
    refused = viewer.post(
        "/explain/workbench/change/",
        {"customer": shop.pk, "surface": "search", "query": "boots", "item": "sku-1", "do": "hide"},
    )

    assert len(grid(body)) == len(IDS)
    assert "do-hide" not in body
    assert refused.status_code == 403
    assert Rule.objects.filter(customer=shop).count() == 0


def test_another_shops_staff_can_neither_see_nor_change_it(
    merch: Client, shop: Customer, other: Customer
) -> None:
    log_request(shop, "new", "boots", IDS)
    post(merch, "change", shop, item="sku-3", do="hide")
    draft = drafts_of(shop)[0]
    rival = staff(other, name="rival")
    log_request(other, "rival", "boots", IDS)

    seen = rival.get("/explain/workbench/?" + urlencode({"customer": shop.pk, "query": "boots"}))
    changed = rival.post(
        "/explain/workbench/change/",
        {"customer": shop.pk, "surface": "search", "query": "boots", "item": "sku-1", "do": "hide"},
    )
    published = rival.post(
        "/explain/workbench/publish/",
        {"customer": shop.pk, "query": "boots", "drafts": [draft], "when": "now"},
    )
    through_own = post(rival, "publish", other, drafts=[draft], when="now")
    discarded = post(rival, "discard", other, drafts=[draft])
    own_page = bench(rival, other, query="boots")

    assert seen.status_code == changed.status_code == published.status_code == 404
    assert "published or discarded meanwhile" in through_own
    assert "published or discarded meanwhile" in discarded
    assert drafts_of(shop) == [draft]
    assert "Outdoor shoe" not in own_page
    assert "Hide “Outdoor shoe 3”" not in own_page
    assert Rule.objects.filter(customer=other).count() == 0


def test_a_draft_says_so_in_the_rules_admin_and_links_to_its_workbench(
    merch: Client, shop: Customer
) -> None:
    log_request(shop, "new", "boots", IDS)
    post(merch, "change", shop, item="sku-3", do="hide")
    rule_id = drafts_of(shop)[0]

    listed = merch.get("/admin/merchandising/rule/").content.decode()
    change = html.unescape(
        merch.get(f"/admin/merchandising/rule/{rule_id}/change/").content.decode()
    )

    assert '<td class="field-status">draft</td>' in listed
    assert "This rule is a <strong>draft</strong>: shoppers do not see it" in change
    link = re.search(r'href="([^"]+)" id="draft-workbench-link"', change)
    assert link is not None
    assert sorted(grid(merch.get(link.group(1)).content.decode())) == sorted(set(IDS) - {"sku-3"})


def test_when_the_signal_store_is_down_the_workbench_says_so(
    merch: Client, shop: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    class DownStore:
        def fetch(self, *args: Any, **kwargs: Any) -> Any:
            raise SignalStoreUnavailable("down")

        def current_meta(self, customer_id: int) -> Any:
            raise SignalStoreUnavailable("down")

    monkeypatch.setattr("explain.services.explained.signal_store", DownStore)
    log_request(shop, "new", "boots", IDS)

    body = bench(merch, shop, query="boots")

    assert "The signal store did not answer" in body
    assert grid(body) == []
    assert "the ranking could not be worked out now" in body


def test_a_shop_in_berlin_picks_dates_in_berlin_time_and_sees_prices_in_euros(
    merch: Client, shop: Customer
) -> None:
    shop.currency, shop.time_zone = "EUR", "Europe/Berlin"
    shop.save()
    log_request(shop, "new", "boots", IDS)
    berlin = ZoneInfo("Europe/Berlin")
    post(merch, "change", shop, item="sku-3", do="hide")
    page = bench(merch, shop, query="boots")
    assert "shop time, Europe/Berlin" in page
    assert re.search(r"latest logged request \(\d+ \w+ \d{4}, \d\d:\d\d Europe/Berlin\)", page)
    assert re.search(r'<span class="price">EUR [0-9,]+\.\d\d</span>', page)
    # 9:00 in Berlin, a week on.
    local = (timezone.now() + timedelta(days=7)).astimezone(berlin)
    local = local.replace(hour=9, minute=0, second=0, microsecond=0)

    body = post(
        merch,
        "publish",
        shop,
        drafts=drafts_of(shop),
        when="start",
        start=local.strftime("%Y-%m-%dT%H:%M"),
    )

    stored = RuleIn.stored(Rule.objects.get(customer=shop).document()).windows[0].start
    assert stored == local.astimezone(UTC)
    assert local.utcoffset() in (timedelta(hours=1), timedelta(hours=2))  # 7:00 or 8:00 UTC
    assert f"shoppers see it from {local:%-d %b %Y, %H:%M} (Europe/Berlin)" in body


def test_boosting_an_items_category_drafts_a_rule_on_its_most_specific_category(
    merch: Client, shop: Customer
) -> None:
    log_request(shop, "new", "boots", IDS)
    page = bench(merch, shop, query="boots")
    assert "Boost category shoes/running" in page

    body = post(merch, "change", shop, item="sku-2", do="bury-category", strength="weak")

    rule = Rule.objects.get(customer=shop, draft=True)
    assert rule.selector["categories"] == ["shoes/running"]
    assert (rule.action["type"], rule.action["strength"]) == ("bury", "weak")
    assert "Bury category shoes/running (weak) for “boots”" in body


def test_an_item_without_a_category_cannot_have_its_category_boosted(
    merch: Client, shop: Customer
) -> None:
    Item.objects.filter(customer=shop, external_id="sku-2").update(categories=[])
    log_request(shop, "new", "boots", IDS)

    body = post(merch, "change", shop, item="sku-2", do="boost-category")

    assert "This item has no category in the catalog." in body
    assert not Rule.objects.filter(customer=shop).exists()


def test_a_cap_per_brand_varies_the_top_and_a_new_cap_replaces_it(
    merch: Client, shop: Customer
) -> None:
    log_request(shop, "new", "boots", IDS)
    acme = [item_id for item_id in IDS if int(item_id[-1]) % 2]
    led = post(merch, "change", shop, item="sku-1", do="boost-brand", strength="max")
    assert set(grid(led)[:4]) == set(acme)

    post(merch, "change", shop, do="diversity", field="brand", max_items=3, top_k=4)
    body = post(merch, "change", shop, do="diversity", field="brand", max_items=2, top_k=4)

    caps = Rule.objects.filter(customer=shop, draft=True, action__type="diversity")
    assert [rule.action for rule in caps] == [
        {"type": "diversity", "field": "brand", "max_items": 2, "top_k": 4}
    ]
    assert "At most 2 per brand in the top 4 for “boots”" in body
    top = grid(body)[:4]
    assert sum(item_id in acme for item_id in top) == 2
    assert not Rule.objects.filter(customer=shop, draft=False).exists()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_items": 4, "top_k": 4}, "Give fewer items than the places the cap covers."),
        ({"top_k": 10}, "Give how many items of one brand may show."),
        ({"max_items": 2, "top_k": 1}, "Give a whole number from 2 to 1000."),
    ],
)
def test_a_bad_cap_names_its_field_and_stores_nothing(
    merch: Client, shop: Customer, fields: dict[str, int], message: str
) -> None:
    log_request(shop, "new", "boots", IDS)

    body = post(merch, "change", shop, do="diversity", field="brand", **fields)

    assert message in body
    assert not Rule.objects.filter(customer=shop).exists()
