"""The merchandiser's insight pages: queries that need attention (numbers counted from the events
sent, flags, the period) and why an item is not on a query's page (served where, hidden by which
rule, how far below, and advice that works when followed); bad input names its field."""

from __future__ import annotations

import html
import random
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from customers.models import Customer
from explain.services.attention import MIN_SEARCHES
from tests.conftest import ApiCaller
from tests.explain.insight_shop import IDS, Traffic, log_request
from tests.explain.test_pages import build_shop
from tests.factories import MembershipFactory, UserFactory
from tests.processes import RedisProcess

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


@pytest.fixture
def merch(shop: Customer, other: Customer) -> Client:
    """A staff member of `shop` only, logged in."""
    user = UserFactory(username="merch", is_staff=True)
    user.save()
    MembershipFactory(customer=shop, user=user)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def api(shop: Customer, make_caller: Callable[..., ApiCaller]) -> ApiCaller:
    return make_caller(shop)


# --- traffic, sent through /v1/events and counted again here --------------------------------------


def table_rows(body: str) -> dict[str, dict[str, str]]:
    """The queries table as {query: {column class: text}}, plus its flag."""
    rows = {}
    for match in re.finditer(
        r'<tr class="query-row[^"]*" data-query="([^"]*)" data-flag="([^"]*)">(.*?)</tr>',
        body,
        re.S,
    ):
        cells = dict(re.findall(r'<td class="num ([a-z-]+)">([^<]*)</td>', match.group(3)))
        rows[match.group(1)] = {**cells, "flag": match.group(2)}
    return rows


def queries_page(client: Client, customer: Customer, **params: Any) -> str:
    response = client.get("/explain/queries/?" + urlencode({"customer": customer.pk, **params}))
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def test_the_queries_page_counts_what_the_events_say(
    merch: Client, shop: Customer, api: ApiCaller
) -> None:
    traffic = Traffic(api)
    rng = random.Random(15)
    for query in ("trail shoes", "rain jacket", "wool socks"):
        for _ in range(rng.randint(6, 14)):
            traffic.search(
                query,
                days_ago=rng.choice([0.5, 3, 10, 20, 40, 80, 120]),
                clicks=rng.choice([0, 0, 1, 2]),
                carts=rng.choice([0, 1]),
                purchases=rng.choice([(), ((1, 19.99),), ((2, 5.5), (1, 100.0))]),
            )
    traffic.search("trail shoes", days_ago=2, clicks=3, surface="browse")  # not a search
    traffic.send()

    for days in (7, 28, 90):
        rows = table_rows(queries_page(merch, shop, period=days))
        expected = {
            query: counts.row()
            for (period, query), counts in traffic.expected.items()
            if period == days
        }
        assert {
            query: {k: v for k, v in row.items() if k != "flag"} for query, row in rows.items()
        } == expected
        searched = [int(row["searches"]) for row in rows.values()]
        assert searched == sorted(searched, reverse=True)


def test_zero_click_and_low_click_through_queries_are_flagged(
    merch: Client, shop: Customer, api: ApiCaller
) -> None:
    traffic = Traffic(api)
    plan = {  # query: (searches, searches with a click)
        "boots": (40, 20),  # 50%
        "sandals": (30, 15),  # 50%: the shop's median click-through is 45%
        "socks": (25, 5),  # 20%, under half the median: few clicks
        "laces": (MIN_SEARCHES, 0),  # no click at all
        "hats": (MIN_SEARCHES - 1, 0),  # too few searches to judge
        "scarves": (MIN_SEARCHES, 8),  # 40%: above half the median
    }
    for query, (searches, clicked) in plan.items():
        for n in range(searches):
            traffic.search(query, clicks=1 if n < clicked else 0)
    traffic.send()

    body = queries_page(merch, shop)
    rows = table_rows(body)

    assert {query: row["flag"] for query, row in rows.items()} == {
        "boots": "",
        "sandals": "",
        "socks": "low-ctr",
        "laces": "zero-click",
        "hats": "",
        "scarves": "",
    }
    assert "under 50% of the shop's typical (median) click-through of 45.0%, so under 22.5%" in body
    assert f"searched at least {MIN_SEARCHES} times" in body
    flagged = table_rows(queries_page(merch, shop, show="flagged"))
    assert set(flagged) == {"socks", "laces"}


def test_each_query_links_to_its_ranking_and_to_why_isnt_it_here(
    merch: Client, shop: Customer, api: ApiCaller
) -> None:
    traffic = Traffic(api)
    traffic.search("boots", clicks=1)
    traffic.search("socks")
    traffic.send()
    log_request(shop, "boots-1", "boots", IDS[:4])

    body = queries_page(merch, shop)

    boots = re.search(r'data-query="boots".*?</tr>', body, re.S)
    assert boots is not None
    link = re.search(r'class="query-link" href="([^"]+)"', boots.group(0))
    assert link is not None
    explain = merch.get(link.group(1).replace("&amp;", "&"))
    assert explain.status_code == 200
    assert (
        explain.content.decode().count('class="ranked-row"') == 4
    )  # the logged request, ranked now
    assert "request_id=boots-1" in link.group(1)
    assert (
        f"/explain/why-not/?customer={shop.pk}&amp;surface=search&amp;query=boots" in boots.group(0)
    )


@pytest.mark.parametrize("period", ["5", "abc", "", "9" * 30])
def test_a_bad_period_is_an_error_naming_the_period(
    merch: Client, shop: Customer, period: str
) -> None:
    body = queries_page(merch, shop, period=period)

    assert field_error(body, "period") == "Choose a period of 7, 28 or 90 days."
    assert 'id="queries"' not in body


def test_the_queries_page_without_searches_says_so(merch: Client, shop: Customer) -> None:
    assert "No search was recorded in this period." in queries_page(merch, shop)


# --- why isn't it here ----------------------------------------------------------------------------


def why_not(client: Client, customer: Customer, **params: Any) -> str:
    query = {"customer": customer.pk, "surface": "search", "query": "shoes", **params}
    response = client.get("/explain/why-not/?" + urlencode(query))
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def field_error(body: str, name: str) -> str:
    """The error text under the form field `name` ("" when none)."""
    start = body.index(f'class="field-{name}"')
    block = body[start : body.index("</div>", start)]
    found = re.search(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', block, re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1)).strip()) if found else ""


def text_of(body: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</(?:p|ul|div|td)>', body, re.S)
    assert found is not None, element_id
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split()))


def create_rule(api: ApiCaller, rule: dict[str, Any]) -> int:
    response = api.post("/v1/rules", rule)
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


def test_an_item_hidden_by_a_rule_names_the_rule(
    merch: Client, shop: Customer, api: ApiCaller
) -> None:
    log_request(shop, "r-1", "shoes", IDS)
    log_request(shop, "r-2", "shoes", IDS[:4])
    log_request(shop, "r-old", "shoes", IDS, days_ago=40)
    rule_id = create_rule(
        api,
        {
            "name": "Hide the old model",
            "selector": {"item_ids": ["sku-5"]},
            "action": {"type": "hide"},
        },
    )

    body = why_not(merch, shop, item="sku-5", page_size=3)

    assert "It is hidden by the rule “Hide the old model”." in text_of(body, "verdict")
    assert f"/admin/merchandising/rule/{rule_id}/change/" in body
    assert "Take it out of the rule “Hide the old model”" in text_of(body, "lifts")
    served = text_of(body, "served")
    assert (
        "served in 1 of the 2 logged requests for “shoes” in the last 28 days, at position 6;"
        in served
    )
    assert "on the page (the first 3) in 0 of them" in served
    assert "served in 2 of the 3" in text_of(
        why_not(merch, shop, item="sku-5", page_size=3, period=90), "served"
    )


def test_an_item_below_the_page_gets_advice_that_lifts_it_when_followed(
    merch: Client, shop: Customer, api: ApiCaller
) -> None:
    log_request(shop, "r-1", "shoes", IDS)
    body = why_not(merch, shop, item="sku-7", page_size=3)
    verdict = text_of(body, "verdict")
    found = re.search(
        r"It lands at position (\d+), below the page \(the first 3\)\. "
        r"Its score misses the last place on the page \(#3\) by ([\d.]+) \((\d+)% of its score\)\.",
        verdict,
    )
    assert found is not None, verdict
    assert int(found.group(1)) > 3
    factor = re.search(
        r"A boost of more than x([\d.]+) would lift it onto the page", text_of(body, "lifts")
    )
    assert factor is not None
    assert float(text_of(body, "gap")) == pytest.approx(float(found.group(2)), abs=1e-3)
    assert float(factor.group(1)) - 1 == pytest.approx(int(found.group(3)) / 100, abs=0.006)
    ranking = re.search(r'id="ranking-link" href="([^"]+)"', body)
    assert ranking is not None
    explained = merch.get(html.unescape(ranking.group(1))).content.decode()
    assert f'data-item-id="sku-7" data-position="{found.group(1)}"' in explained  # the same ranking

    create_rule(
        api,
        {
            "name": "Lift sku-7",
            "selector": {"item_ids": ["sku-7"]},
            "action": {"type": "boost", "factor": float(factor.group(1)) + 0.01},
        },
    )
    after = text_of(why_not(merch, shop, item="sku-7", page_size=3), "verdict")

    assert re.fullmatch(r"It is on the page now, at position [123] of 3\.", after), after


def test_a_buried_item_names_the_burying_rule(
    merch: Client, shop: Customer, api: ApiCaller
) -> None:
    log_request(shop, "r-1", "shoes", IDS)
    first = text_of(why_not(merch, shop, item="sku-0", page_size=8), "verdict")
    assert first.startswith("It is on the page now")
    create_rule(
        api,
        {
            "name": "Less Zeta",
            "selector": {"brands": ["Zeta"]},
            "action": {"type": "bury", "strength": "max"},
        },
    )

    body = why_not(merch, shop, item="sku-0", page_size=2)

    assert "Less Zeta" in text_of(body, "item-rules")
    assert "The rule “Less Zeta” buries it (score x0.05)." in text_of(body, "causes")


def test_an_item_a_diversity_cap_moved_below_the_page_is_not_told_to_get_a_boost(
    merch: Client, shop: Customer, api: ApiCaller
) -> None:
    log_request(shop, "r-1", "shoes", IDS)
    create_rule(
        api,
        {
            "name": "One per brand",
            "action": {"type": "diversity", "field": "brand", "max_items": 1, "top_k": 4},
        },
    )

    moved = []
    for item_id in IDS:
        body = why_not(merch, shop, item=item_id, page_size=2)
        if "below the page" in text_of(body, "verdict") and "moved it down" in body:
            moved.append(item_id)
            assert "The rule “One per brand” moved it down from" in text_of(body, "causes")
            scores = re.findall(r'<td class="num">([\d.]+)</td></tr>', body)  # last place, item
            verdict = text_of(body, "verdict")
            if float(scores[1]) > float(scores[0]):
                assert "a rule moved it down, not its score" in verdict
            else:
                assert re.search(r"misses the last place on the page \(#2\) by [\d.]+ ", verdict)
            lifts = text_of(body, "lifts")
            assert "A boost alone does not get it past the rule “One per brand”" in lifts
            assert "A boost of more than" not in lifts
            assert "A pin at position 2 or higher" in lifts

    assert moved  # every item after the best of each brand is capped


def test_an_item_the_search_engine_never_sent_is_ranked_as_if_it_had_been(
    merch: Client, shop: Customer
) -> None:
    log_request(shop, "r-1", "shoes", IDS[:4])

    body = why_not(merch, shop, item="sku-6")

    assert "It was in none of the 1 logged request for “shoes” in the last 28 days." in text_of(
        body, "served"
    )
    assert "with this item added as if the search engine had sent it" in body
    assert "either the search engine did not send it" in text_of(body, "causes")


def test_a_browsed_category_reads_the_log_of_that_category(
    merch: Client, shop: Customer, api: ApiCaller
) -> None:
    log_request(shop, "b-1", "", IDS, surface="browse", category="shoes")
    log_request(shop, "b-2", "", IDS[:2], surface="browse", category="socks")
    create_rule(
        api,
        {
            "name": "No sku-1 on browse",
            "surfaces": ["browse"],
            "selector": {"item_ids": ["sku-1"]},
            "action": {"type": "hide"},
        },
    )

    body = why_not(merch, shop, surface="browse", query="", category="shoes", item="sku-1")

    assert "served in 1 of the 1 logged request for the category shoes" in text_of(body, "served")
    assert text_of(body, "verdict") == "It is hidden by the rule “No sku-1 on browse”."
    searched = why_not(merch, shop, item="sku-1")  # the rule is for browse only
    assert "hidden" not in text_of(searched, "verdict")


def test_when_the_signal_store_is_down_the_page_says_so_and_keeps_the_log(
    merch: Client, shop: Customer, private_redis: RedisProcess
) -> None:
    log_request(shop, "r-1", "shoes", IDS)
    private_redis.kill()

    body = why_not(merch, shop, item="sku-6")

    assert "The signal store did not answer" in text_of(body, "verdict")
    assert "served in 1 of the 1 logged request" in text_of(body, "served")


def test_an_out_of_stock_item_is_said_to_be(merch: Client, shop: Customer) -> None:
    log_request(shop, "r-1", "shoes", IDS)
    shop.items.filter(external_id="sku-2").update(in_stock=False)

    body = why_not(merch, shop, item="sku-2")

    assert "It is out of stock, which counts against it." in text_of(body, "causes")


def test_without_a_logged_request_the_items_category_stands_in(
    merch: Client, shop: Customer
) -> None:
    body = why_not(merch, shop, item="sku-4", page_size=20)

    assert "No request for “shoes” was logged in the last 28 days." in text_of(body, "served")
    assert "the 8 items of the item's category shoes/running" in html.unescape(body)
    assert text_of(body, "verdict").startswith("It is on the page now")


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"item": "no-such-sku"}, "item", "No item of this shop's catalog has this id."),
        ({"item": ""}, "item", "Give the id of the item you expected to see."),
        ({"item": "sku-1", "query": "  "}, "query", "Give the query shoppers searched."),
        ({"item": "sku-1", "surface": "browse"}, "category", "Give the category shoppers browsed."),
        ({"item": "sku-1", "surface": "shelf"}, "surface", "Select a valid choice."),
        ({"item": "sku-1", "period": "3"}, "period", "Choose a period of 7, 28 or 90 days."),
        ({"item": "sku-1", "page_size": "0"}, "page_size", "greater than or equal to 1"),
        ({"item": "sku-1", "page_size": "many"}, "page_size", "Enter a whole number."),
    ],
)
def test_bad_input_is_an_error_naming_the_field(
    merch: Client, shop: Customer, params: dict[str, str], field: str, message: str
) -> None:
    body = why_not(merch, shop, **params)

    assert message in field_error(body, field)
    assert 'id="why-not-result"' not in body


def test_a_first_visit_shows_the_form_without_complaints(merch: Client, shop: Customer) -> None:
    body = merch.get("/explain/why-not/").content.decode()

    assert 'id="why-not-form"' in body
    assert '<ul class="errorlist' not in body


# --- tenant isolation -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/explain/queries/", "/explain/why-not/"])
def test_another_customers_pages_answer_404(merch: Client, other: Customer, path: str) -> None:
    response = merch.get(f"{path}?customer={other.pk}&item=sku-1&query=shoes")

    assert response.status_code == 404
    assert b"SECRET-" not in response.content


@pytest.mark.parametrize("path", ["/explain/queries/", "/explain/why-not/"])
def test_the_pages_need_a_login(shop: Customer, path: str) -> None:
    response = Client().get(f"{path}?customer={shop.pk}")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_another_customers_queries_and_items_stay_unseen(
    merch: Client, shop: Customer, other: Customer, make_caller: Callable[..., ApiCaller]
) -> None:
    rival = Traffic(make_caller(other))
    rival.search("secret rival query", clicks=1)
    rival.send()
    log_request(other, "rival-1", "shoes", IDS)
    shop.items.filter(external_id="sku-3").delete()  # only the rival has an sku-3 now

    queries = merch.get("/explain/queries/").content.decode()  # no customer named: the user's own
    hidden = why_not(merch, shop, item="sku-3")
    served = why_not(merch, shop, item="sku-1")

    assert "secret rival query" not in queries
    assert "Rival" not in queries
    assert field_error(hidden, "item") == "No item of this shop's catalog has this id."
    assert "SECRET-" not in hidden
    assert "No request for “shoes” was logged" in text_of(served, "served")  # not the rival's log
    assert "SECRET-" not in served


@pytest.mark.parametrize("path", ["/explain/queries/", "/explain/why-not/?item=sku-1&query=x"])
def test_a_user_without_customers_is_told_so(shop: Customer, path: str) -> None:
    user = UserFactory(is_staff=True)
    user.save()
    client = Client()
    client.force_login(user)

    response = client.get(path)

    assert response.status_code == 200
    assert 'id="no-customers"' in response.content.decode()


def test_the_admin_index_links_both_pages(merch: Client) -> None:
    body = merch.get("/admin/").content.decode()

    assert 'href="/explain/queries/"' in body
    assert 'href="/explain/why-not/"' in body
