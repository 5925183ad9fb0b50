"""The rules admin: the structured form, conflicts and warnings, the preview, history and revert,
and tenant isolation of every page."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from customers.models import Customer
from merchandising.contracts import RuleIn
from merchandising.models import Rule, RuleRevision
from merchandising.services import rule_delete
from ranking.services import signals_refresh
from tests.factories import (
    CustomerFactory,
    ItemFactory,
    MembershipFactory,
    RuleFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def staff_client(customer: Customer) -> Client:
    """A staff user of `customer` only, with every permission on rules."""
    user = UserFactory(is_staff=True)
    user.save()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="merchandising"))
    MembershipFactory(customer=customer, user=user)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def shop() -> Customer:
    customer = CustomerFactory(name="Alphaquux Outdoor")
    for number in range(1, 9):
        ItemFactory(
            customer=customer,
            external_id=f"shoe-{number}",
            title=f"Trail shoe {number}",
            brand="Acme" if number % 2 else "Zeta",
            price=Decimal(10 * number),
        )
    ItemFactory(
        customer=customer,
        external_id="sock-1",
        title="Wool sock",
        categories=["socks"],
        attributes={"color": ["red", "black"], "size": ["39", "40"], "organic": True},
    )
    return customer


@pytest.fixture
def other_shop() -> Customer:
    customer = CustomerFactory(name="Bravozed Boutique")
    ItemFactory(customer=customer, external_id="bravozed-sku", title="Bravozed shoe")
    return customer


@pytest.fixture
def staff(shop: Customer) -> Client:
    return staff_client(shop)


def form_data(customer: Customer | None = None, **fields: Any) -> dict[str, Any]:
    """A full POST of the rule form: a weak boost for every item unless `fields` say otherwise."""
    data: dict[str, Any] = {
        "name": "Rule",
        "description": "",
        "enabled": "on",
        "priority": "0",
        "windows": "",
        "query_match": "any",
        "query_patterns": "",
        "page_categories": "",
        "context": "",
        "selector_brands": "",
        "selector_categories": "",
        "selector_price_min": "",
        "selector_price_max": "",
        "selector_in_stock": "",
        "selector_attributes": "",
        "selector_item_ids": "",
        "action_kind": "boost",
        "action_strength": "weak",
        "action_factor": "",
        "action_pins": "",
        "slot_positions": "",
        "diversity_field": "brand",
        "diversity_max_items": "",
        "diversity_top_k": "",
    }
    if customer is not None:
        data["customer"] = customer.pk
    data.update(fields)
    return data


def stored_rule(customer: Customer, **document: Any) -> Rule:
    return RuleFactory(customer=customer, **{"name": "Stored rule", **document})


def add_url() -> str:
    return reverse("admin:merchandising_rule_add")


def change_url(rule: Rule | int) -> str:
    return reverse("admin:merchandising_rule_change", args=[getattr(rule, "pk", rule)])


def preview_url(rule: Rule) -> str:
    return reverse("admin:merchandising_rule_preview", args=[rule.pk])


def history_url(rule: Rule | int) -> str:
    return reverse("admin:merchandising_rule_history", args=[getattr(rule, "pk", rule)])


def revert_url(rule_id: int, number: int) -> str:
    return reverse("admin:merchandising_rule_revert", args=[rule_id, number])


# --- the form ----------------------------------------------------------------------------------


def test_a_pin_rule_created_in_the_form_is_stored_with_its_revision(
    staff: Client, shop: Customer
) -> None:
    response = staff.post(
        add_url(),
        form_data(
            shop,
            name="Trail shoes up",
            surfaces=["search"],
            query_match="contains",
            query_patterns="Trail\nshoe",
            action_kind="pin",
            action_pins="shoe-8 @ 1\n\n shoe-7@3 ",
        ),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    rule = Rule.objects.get(customer=shop)
    assert rule.document() | {"action": None} == {
        "name": "Trail shoes up",
        "description": "",
        "enabled": True,
        "priority": 0,
        "surfaces": ["search"],
        "windows": [],
        "query": {"match": "contains", "patterns": ["trail", "shoe"]},
        "page_categories": [],
        "context": {},
        "selector": RuleIn.model_validate(
            {"name": "x", "action": {"type": "hide"}}
        ).selector.model_dump(mode="json"),
        "action": None,
        "holdout_percent": 0,
    }
    assert rule.action == {
        "type": "pin",
        "pins": [{"item_id": "shoe-8", "position": 1}, {"item_id": "shoe-7", "position": 3}],
    }
    revision = RuleRevision.objects.get(rule_id_value=rule.pk)
    assert (revision.number, revision.kind, rule.revision) == (1, "created", 1)
    assert revision.changed_by is not None


def test_editing_a_rule_shows_its_fields_and_stores_a_boost_with_strength_and_window(
    staff: Client, shop: Customer
) -> None:
    rule = stored_rule(shop, action={"type": "pin", "pins": [{"item_id": "shoe-1", "position": 2}]})

    page = staff.get(change_url(rule)).content.decode()
    response = staff.post(
        change_url(rule),
        form_data(
            name="Acme in December",
            selector_brands="Acme",
            selector_attributes="color=red",
            context="device = mobile\ndevice=tablet",
            action_kind="boost",
            action_strength="strong",
            windows="2026-12-01T00:00+01:00 / 2026-12-24T00:00+01:00\nopen / 2025-01-01T00:00Z",
        ),
    )

    assert "shoe-1 @ 2" in page
    assert response.status_code == 302, response.context["adminform"].form.errors
    rule.refresh_from_db()
    assert rule.name == "Acme in December"
    assert rule.action == {"type": "boost", "factor": None, "strength": "strong"}
    assert rule.action_type == "boost"
    assert rule.selector["brands"] == ["Acme"]
    assert rule.selector["attributes"] == {"color": ["red"]}
    assert rule.context == {"device": ["mobile", "tablet"]}
    assert [RuleIn.stored(rule.document()).windows[0].start] == [
        datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    ]
    assert rule.windows[1] == {"start": None, "end": "2025-01-01T00:00:00Z"}
    assert rule.revision == 2
    edited = staff.get(change_url(rule)).content.decode()
    # Shown back in the shop's time (UTC here), stored in UTC.
    assert rule.windows[0] == {"start": "2026-11-30T23:00:00Z", "end": "2026-12-23T23:00:00Z"}
    assert "2026-11-30 23:00 / 2026-12-23 23:00\nopen / 2025-01-01 00:00" in edited
    assert "device=mobile\ndevice=tablet" in edited


def test_saving_an_unchanged_rule_records_no_revision(staff: Client, shop: Customer) -> None:
    rule = stored_rule(shop, name="Same", selector={"brands": ["Acme"]})

    response = staff.post(change_url(rule), form_data(name="Same", selector_brands="Acme"))

    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.revision == 1
    assert RuleRevision.objects.filter(rule_id_value=rule.pk).count() == 1


ROUND_TRIP_DOCUMENTS = [
    {
        "name": "Everything",
        "description": "all conditions",
        "enabled": False,
        "priority": -3,
        "surfaces": ["search", "autocomplete"],
        "windows": [
            {"start": datetime(2026, 12, 1, tzinfo=UTC), "end": None},
            {"start": None, "end": datetime(2025, 1, 1, 12, 30, tzinfo=UTC)},
        ],
        "query": {"match": "starts_with", "patterns": ["trail", "run"]},
        "page_categories": ["shoes/running", "socks"],
        "context": {"device": ["mobile", "tablet"], "country": ["fr"]},
        "selector": {
            "brands": ["Acme", "Zeta"],
            "categories": ["shoes"],
            "price_min": 9.5,
            "price_max": 120.0,
            "in_stock": False,
            "attributes": {"color": ["red", "black"]},
            "item_ids": ["shoe-1"],
        },
        "action": {"type": "bury", "factor": 0.4},
    },
    {
        "name": "Slots",
        "selector": {"in_stock": True},
        "action": {"type": "slot", "positions": [1, 5, 9]},
    },
    {"name": "Hide", "selector": {"item_ids": ["shoe-2"]}, "action": {"type": "hide"}},
    {
        "name": "Diverse",
        "action": {"type": "diversity", "field": "category", "max_items": 2, "top_k": 10},
    },
    {
        "name": "Pins",
        "action": {
            "type": "pin",
            "pins": [{"item_id": "shoe-3", "position": 4}, {"item_id": "shoe-1", "position": 1}],
        },
    },
]


@pytest.mark.parametrize("document", ROUND_TRIP_DOCUMENTS, ids=lambda d: d["name"])
def test_saving_the_form_as_shown_keeps_the_rule_as_it_was(
    staff: Client, shop: Customer, document: dict[str, Any]
) -> None:
    rule = stored_rule(shop, **document)
    before = rule.document()
    form = staff.get(change_url(rule)).context["adminform"].form
    shown = {**form.initial, **{name: form[name].value() for name in form.fields}}

    response = staff.post(
        change_url(rule),
        {name: value for name, value in shown.items() if value is not None and value is not False},
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    rule.refresh_from_db()
    assert rule.document() == before
    assert rule.revision == 1  # nothing changed, so nothing recorded


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"action_kind": "pin", "action_pins": "shoe-1 @ 0"}, "action_pins", "line 1"),
        ({"action_kind": "pin", "action_pins": "shoe-1\nshoe-2 @ x"}, "action_pins", "line 1"),
        ({"action_kind": "pin", "action_pins": "a @ 1\nb @ 1"}, "action_pins", "the same position"),
        ({"windows": "2026-12-24T00:00Z / 2026-12-01T00:00Z"}, "windows", "ends before"),
        ({"windows": "2026-12-01 25:00 / open"}, "windows", "not a date and time"),
        ({"query_match": "exact"}, "query_patterns", "needs at least one pattern"),
        ({"action_strength": "", "action_factor": "0.5"}, "action_factor", "greater than 1"),
        ({"action_factor": "2"}, "action_factor", "either a factor"),
        (
            {"action_kind": "diversity", "diversity_max_items": "5", "diversity_top_k": "3"},
            "diversity_max_items",
            "below top_k",
        ),
        ({"selector_price_min": "50", "selector_price_max": "10"}, "selector_price_max", "below"),
        ({"action_kind": "slot", "slot_positions": "1, two"}, "slot_positions", "whole numbers"),
        ({"context": "mobile"}, "context", "key=value"),
        (
            {"action_kind": "pin", "action_pins": "a @ 1", "selector_brands": "Acme"},
            "__all__",
            "leave the selector empty",
        ),
    ],
)
def test_bad_input_is_refused_on_the_field_it_concerns_and_nothing_is_saved(
    staff: Client, shop: Customer, fields: dict[str, Any], field: str, says: str
) -> None:
    response = staff.post(add_url(), form_data(shop, **fields))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert says in " ".join(errors[field])
    assert not Rule.objects.exists()
    assert not RuleRevision.objects.exists()


def test_every_mistake_of_a_form_is_named_at_once(staff: Client, shop: Customer) -> None:
    response = staff.post(
        add_url(),
        form_data(
            shop,
            name="",
            windows="2026-12-24T00:00Z / 2026-12-01T00:00Z\n\n2026-12-01 9am / open",
            query_match="exact",
            action_kind="pin",
            action_pins="shoe-1 @ 0\nshoe-2 @ 3\nshoe-3 @ x",
        ),
    )

    errors = response.context["adminform"].form.errors
    assert set(errors) == {"name", "windows", "query_patterns", "action_pins"}
    assert [message[:6] for message in errors["windows"]] == ["line 1", "line 3"]
    assert errors["action_pins"] == [
        "line 1 (position): Input should be greater than or equal to 1",
        "line 3: the position 'x' is not a whole number",
    ]
    assert not Rule.objects.exists()


def test_a_pin_contradicting_another_at_the_same_priority_is_refused(
    staff: Client, shop: Customer
) -> None:
    stored_rule(shop, action={"type": "pin", "pins": [{"item_id": "shoe-1", "position": 1}]})

    response = staff.post(
        add_url(), form_data(shop, name="Clash", action_kind="pin", action_pins="shoe-2 @ 1")
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["action_pins"]
    assert "same priority" in errors["action_pins"][0]
    assert not Rule.objects.filter(name="Clash").exists()


def test_the_form_is_checked_as_it_is_typed_without_saving(staff: Client, shop: Customer) -> None:
    """htmx posts the form to check/ as the merchandiser goes: a typo and a contradicting pin
    are named in words before saving, and nothing is stored."""
    stored_rule(shop, action={"type": "pin", "pins": [{"item_id": "shoe-1", "position": 1}]})
    check = reverse("admin:merchandising_rule_check_new")

    typo = staff.post(check, form_data(shop, name="Zeta up", selector_brands="Zetta"))
    clash = staff.post(
        check, form_data(shop, name="Clash", action_kind="pin", action_pins="shoe-2 @ 1")
    )
    fine = staff.post(check, form_data(shop, name="Zeta up", selector_brands="Zeta"))
    form = staff.get(add_url()).content.decode()

    assert typo.status_code == 200
    assert "No item of brand &#x27;Zetta&#x27; in the catalog. Did you mean &#x27;Zeta&#x27;?" in (
        typo.content.decode()
    )
    assert "<strong>Brands</strong>" in typo.content.decode()
    assert "same priority" in clash.content.decode()
    assert "this rule can be saved" in fine.content.decode()
    assert staff.get(check).status_code == 405
    assert f'hx-post="{check}"' in form
    assert Rule.objects.filter(customer=shop).count() == 1


def test_a_conflict_the_service_finds_after_the_form_checked_is_refused_too(
    staff: Client, shop: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another author's pin saved between the form's check and the save: the service refuses."""
    stored_rule(shop, action={"type": "pin", "pins": [{"item_id": "shoe-1", "position": 1}]})
    monkeypatch.setattr("merchandising.forms.rule_warnings", lambda **kwargs: [])

    response = staff.post(
        add_url(),
        form_data(shop, name="Late clash", action_kind="pin", action_pins="shoe-2 @ 1"),
        follow=True,
    )

    assert response.redirect_chain == [(add_url(), 302)]
    assert any("Not saved" in str(m) for m in response.context["messages"])
    assert not Rule.objects.filter(name="Late clash").exists()
    assert RuleRevision.objects.count() == 1


def test_a_pin_of_an_unknown_item_is_a_field_error_and_nothing_is_stored(
    staff: Client, shop: Customer
) -> None:
    response = staff.post(
        add_url(),
        form_data(shop, name="Ghost pin", action_kind="pin", action_pins="no-such-sku @ 2"),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "No item 'no-such-sku' in the catalog." in " ".join(errors["action_pins"])
    assert not Rule.objects.filter(name="Ghost pin").exists()


def test_a_brand_typo_is_a_field_error_naming_the_brand_meant(
    staff: Client, shop: Customer
) -> None:
    typed = form_data(
        shop,
        name="Acme up",
        action_kind="boost",
        action_strength="strong",
        selector_brands="Acmee\nzeta",
    )
    response = staff.post(add_url(), typed)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["selector_brands"]
    assert errors == ["No item of brand 'Acmee' in the catalog. Did you mean 'Acme'?"]
    assert not Rule.objects.exists()


def test_unknown_item_ids_of_the_selector_are_field_errors_naming_the_items_meant(
    staff: Client, shop: Customer
) -> None:
    typed = form_data(
        shop,
        name="Hide some",
        action_kind="hide",
        selector_item_ids="shoe-1\nshoe-11\n\nTrail shoe 3\nzzz-unheard-of",
    )
    response = staff.post(add_url(), typed)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["selector_item_ids"]
    assert errors["selector_item_ids"] == [
        "line 2: No item 'shoe-11' in the catalog. Did you mean 'shoe-1'?",
        "line 4: No item 'Trail shoe 3' in the catalog. Did you mean 'shoe-3' (Trail shoe 3)?",
        "line 5: No item 'zzz-unheard-of' in the catalog.",
    ]
    assert not Rule.objects.exists()
    assert not RuleRevision.objects.exists()


def test_a_pinned_id_typo_names_the_item_meant(staff: Client, shop: Customer) -> None:
    response = staff.post(
        add_url(),
        form_data(shop, name="Pin", action_kind="pin", action_pins="shoe-8 @ 1\nshoe-33 @ 2"),
    )

    errors = response.context["adminform"].form.errors
    assert errors["action_pins"] == [
        "line 2: No item 'shoe-33' in the catalog. Did you mean 'shoe-3'?"
    ]
    assert not Rule.objects.exists()


def test_an_attribute_or_value_no_item_has_is_a_field_error_naming_the_one_meant(
    staff: Client, shop: Customer
) -> None:
    ItemFactory(customer=shop, external_id="sock-2", attributes={"color": "turquoise"})
    typed = form_data(
        shop,
        name="Colours",
        selector_attributes="colour=red\ncolor=turqoise\ncolor=Red\ncolor=black\n"
        "organic=true\nsize=40\nsize=52",
    )
    response = staff.post(add_url(), typed)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["selector_attributes"]
    assert errors["selector_attributes"] == [
        "No item has the attribute 'colour'. Did you mean 'color'?",
        "No item has color = 'turqoise'; did you mean 'turquoise'?",
        "No item has color = 'Red'; did you mean 'red'?",
        "No item has size = '52'.",
    ]
    assert not Rule.objects.exists()


def test_attributes_beyond_what_the_pickers_list_are_still_known(
    staff: Client, shop: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catalog with more attribute names or values than a picker lists: the form still
    accepts every one an item has, and refuses only those none has."""
    for number in range(3):
        ItemFactory(customer=shop, external_id=f"gtin-{number}", attributes={"gtin": f"40{number}"})
    monkeypatch.setattr("catalog.selectors.MAX_PICKED", 1)
    monkeypatch.setattr("catalog.selectors.MAX_ATTRIBUTE_VALUES_READ", 1)

    accepted = staff.post(
        add_url(), form_data(shop, name="Known", selector_attributes="gtin=402\nsize=40")
    )
    refused = staff.post(
        add_url(), form_data(shop, name="Typo", selector_attributes="gtin=4022\nsizes=40")
    )

    assert accepted.status_code == 302, accepted.context["adminform"].form.errors
    errors = refused.context["adminform"].form.errors["selector_attributes"]
    assert [error.split(".")[0].split(";")[0] for error in errors] == [
        "No item has gtin = '4022'",
        "No item has the attribute 'sizes'",
    ]
    assert list(Rule.objects.values_list("name", flat=True)) == ["Known"]


def test_attributes_and_items_the_catalog_has_are_saved(staff: Client, shop: Customer) -> None:
    typed = form_data(
        shop,
        name="Red socks",
        selector_attributes="color=red\norganic=true\nsize=40",
        selector_item_ids="sock-1",
    )
    response = staff.post(add_url(), typed)

    assert response.status_code == 302, response.context["adminform"].form.errors
    rule = Rule.objects.get(customer=shop)
    assert rule.selector["attributes"] == {"color": ["red"], "organic": ["true"], "size": ["40"]}
    assert rule.selector["item_ids"] == ["sock-1"]


def test_warnings_about_a_stored_rule_are_sentences_on_its_change_page(
    staff: Client, shop: Customer
) -> None:
    # The API stores a pin of an item the catalog does not have yet, with a warning.
    rule = stored_rule(
        shop,
        name="Ghost pin",
        action={"type": "pin", "pins": [{"item_id": "no-such-sku", "position": 2}]},
    )

    page = staff.get(change_url(rule)).content.decode()

    assert preview_url(rule) in page
    assert 'id="rule-warnings"' in page
    assert "<strong>Pins</strong>: No item &#x27;no-such-sku&#x27; in the catalog." in page
    assert "no_matching_item" not in page
    assert "action.pins[0]" not in page


def test_deleting_a_rule_in_the_admin_records_the_deletion(staff: Client, shop: Customer) -> None:
    rule = stored_rule(shop)

    response = staff.post(
        reverse("admin:merchandising_rule_delete", args=[rule.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not Rule.objects.exists()
    assert RuleRevision.objects.get(rule_id_value=rule.pk, number=2).kind == "deleted"


def test_the_changelist_summarises_rules_and_filters_them(staff: Client, shop: Customer) -> None:
    stored_rule(shop, name="Always boost")
    stored_rule(
        shop,
        name="Xmas pin",
        windows=[{"start": datetime(2099, 12, 1, tzinfo=UTC), "end": None}],
        action={"type": "pin", "pins": [{"item_id": "shoe-1", "position": 1}]},
    )
    changelist = reverse("admin:merchandising_rule_changelist")

    everything = staff.get(changelist).content.decode()
    windowed = staff.get(changelist, {"schedule": "windowed"}).content.decode()
    pins = staff.get(changelist, {"action_type__exact": "pin", "q": "xmas"}).content.decode()

    assert "Always boost" in everything
    assert "scheduled: 2099-12-01 00:00 → …" in everything
    assert "Always boost" not in windowed
    assert "Xmas pin" in windowed
    assert "Always boost" not in pins
    assert "Xmas pin" in pins


def test_the_changelist_says_whether_each_rule_serves_and_what_it_touches(
    staff: Client, shop: Customer
) -> None:
    stored_rule(
        shop,
        name="Summer sale",
        windows=[
            {"start": datetime(2020, 6, 1, tzinfo=UTC), "end": datetime(2020, 9, 1, tzinfo=UTC)}
        ],
        query={"match": "contains", "patterns": ["sandals"]},
        selector={"brands": ["Solace"], "price_max": 80},
    )
    stored_rule(shop, name="Switched off", enabled=False, page_categories=["shoes/trail"])
    stored_rule(shop, name="Everywhere")

    page = staff.get(reverse("admin:merchandising_rule_changelist")).content.decode()
    rows = {
        re.sub(
            r"<[^>]+>", "", re.search(r'<th class="field-name"[^>]*>(.*?)</th>', row, re.S)[1]
        ).strip(): row
        for row in page.split("<tr")
        if 'class="field-name"' in row
    }

    def cells(name: str) -> str:
        return re.sub(r"<[^>]+>", "|", rows[name])

    assert "|ended|" in cells("Summer sale")  # its window is over: not a green tick
    assert "query contains “sandals”" in cells("Summer sale")
    assert "brand Solace; price 0 to 80" in cells("Summer sale")
    assert "|off|" in cells("Switched off")
    assert "category shoes/trail" in cells("Switched off")
    assert "|serving|" in cells("Everywhere")
    assert "every request" in cells("Everywhere")
    assert "every item" in cells("Everywhere")


# --- preview -----------------------------------------------------------------------------------


def preview_rows(response: Any, side: str) -> list[tuple[str, int, str]]:
    preview = response.context["preview"]
    return [(row.item_id, row.position, row.move) for row in getattr(preview, side)]


def test_the_preview_shows_the_pinned_item_moving_to_its_position(
    staff: Client, shop: Customer
) -> None:
    signals_refresh(customer_id=shop.pk)
    rule = stored_rule(shop, action={"type": "pin", "pins": [{"item_id": "shoe-8", "position": 2}]})

    response = staff.get(
        preview_url(rule),
        {"surface": "search", "query": "trail shoe", "candidates": "50", "top": "10"},
    )

    assert response.status_code == 200, response.context["form"].errors
    before = {item: position for item, position, _ in preview_rows(response, "without_rule")}
    after = preview_rows(response, "with_rule")
    assert set(before) == {f"shoe-{n}" for n in range(1, 9)}  # no sock: not a shoe
    assert after[1][:2] == ("shoe-8", 2)
    assert after[1][2] == f"▲{before['shoe-8'] - 2}" if before["shoe-8"] > 2 else "="
    html = response.content.decode()
    assert 'data-item-id="shoe-8" data-position="2"' in html
    assert "pinned" in html
    assert response.context["preview"].applies


def test_the_preview_of_a_scheduled_rule_shows_it_only_at_a_time_in_its_window(
    staff: Client, shop: Customer
) -> None:
    signals_refresh(customer_id=shop.pk)
    rule = stored_rule(
        shop,
        enabled=False,
        windows=[
            {
                "start": datetime(2030, 1, 1, tzinfo=UTC),
                "end": datetime(2030, 2, 1, tzinfo=UTC),
            }
        ],
        action={"type": "pin", "pins": [{"item_id": "shoe-8", "position": 1}]},
    )
    query = {"surface": "search", "query": "shoe"}

    now = staff.get(preview_url(rule), query)
    in_window = staff.get(preview_url(rule), {**query, "at": "2030-01-15T12:00:00+01:00"})

    assert not now.context["preview"].applies
    assert "windows" in now.context["preview"].reasons[0]
    assert preview_rows(now, "with_rule") == [
        (item, position, "=") for item, position, _ in preview_rows(now, "without_rule")
    ]
    assert in_window.context["preview"].applies
    assert preview_rows(in_window, "with_rule")[0][:2] == ("shoe-8", 1)
    html = in_window.content.decode()
    assert "disabled" in html
    # A link to preview at the window's start, in the shop's time (UTC here).
    assert "at=2030-01-01%2000%3A00" in html
    assert "at 2030-01-15 11:00 (UTC)" in html  # the time previewed, in the shop's time


def test_the_preview_of_a_browse_hide_rule_lists_what_it_hides(
    staff: Client, shop: Customer
) -> None:
    signals_refresh(customer_id=shop.pk)
    rule = stored_rule(shop, selector={"brands": ["Zeta"]}, action={"type": "hide"})

    response = staff.get(preview_url(rule), {"surface": "browse", "category": "shoes"})

    preview = response.context["preview"]
    hidden = {row.item_id for row in preview.hidden}
    assert hidden == {"shoe-2", "shoe-4", "shoe-6", "shoe-8"}
    assert {row.item_id for row in preview.with_rule}.isdisjoint(hidden)
    assert {row.move for row in preview.without_rule if row.item_id in hidden} == {"hidden"}


def test_the_preview_form_names_a_bad_input(staff: Client, shop: Customer) -> None:
    rule = stored_rule(shop)

    response = staff.get(preview_url(rule), {"surface": "search", "query": "", "at": "soon"})
    midnight = {"surface": "search", "query": "shoe", "at": "2030-01-01"}
    shop_time = staff.get(preview_url(rule), midnight)

    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"query", "at"}
    assert "is not a date and time" in response.context["form"].errors["at"][0]
    assert response.context["preview"] is None
    # A time without an offset is the shop's wall clock (UTC here): midnight of that day.
    assert shop_time.context["form"].cleaned_data["at"] == datetime(2030, 1, 1, tzinfo=UTC)


# --- history -----------------------------------------------------------------------------------


def test_the_history_lists_each_change_with_its_diff_and_revert_restores_it(
    staff: Client, shop: Customer
) -> None:
    staff.post(add_url(), form_data(shop, name="Acme up", selector_brands="Acme"))
    rule = Rule.objects.get()
    original = rule.document()
    staff.post(
        change_url(rule),
        form_data(
            name="Acme way up", selector_brands="Acme", action_factor="3", action_strength=""
        ),
    )

    page = staff.get(history_url(rule))
    html = page.content.decode()
    reverted = staff.post(revert_url(rule.pk, 1))

    assert page.status_code == 200
    assert "Revision 2: updated" in html
    assert "Revision 1: created" in html
    # In the form's words, field by field; the JSON diff only one click away.
    changes = page.context["entries"][0]["changes"]
    assert ("Name", "Acme up", "Acme way up") in [(c.label, c.before, c.after) for c in changes]
    assert ("Factor", "", "3.0") in [(c.label, c.before, c.after) for c in changes]
    assert (
        '<th scope="row">Name</th><td class="del">Acme up</td><td class="add">Acme way up</td>'
        in html
    )
    assert all("{" not in c.before + c.after for c in changes)
    created = [(c.label, c.before, c.after) for c in page.context["entries"][1]["changes"]]
    assert ("Brands", "", "Acme") in created
    assert '<span class="add">+  &quot;name&quot;: &quot;Acme way up&quot;,</span>' in html
    assert html.count("Revert to this revision") == 1  # not to the current revision
    assert reverted.status_code == 302
    rule.refresh_from_db()
    assert rule.document() == original
    assert RuleRevision.objects.get(rule_id_value=rule.pk, number=3).kind == "reverted"


def test_a_deleted_rules_history_stays_reachable_and_revert_recreates_it(
    staff: Client, shop: Customer
) -> None:
    rule = stored_rule(shop, name="Gone soon")
    rule_id = rule.pk
    staff.post(reverse("admin:merchandising_rule_delete", args=[rule_id]), {"post": "yes"})

    revisions = staff.get(reverse("admin:merchandising_rulerevision_changelist")).content.decode()
    history = staff.get(history_url(rule_id)).content.decode()
    staff.post(revert_url(rule_id, 1))

    assert "Gone soon" in revisions
    assert history_url(rule_id) in revisions
    assert "has been deleted" in history
    assert Rule.objects.get(pk=rule_id).name == "Gone soon"


def test_the_revert_action_of_the_revision_list_recreates_a_deleted_rule(
    staff: Client, shop: Customer
) -> None:
    rule = stored_rule(shop, name="Gone soon")
    staff.post(reverse("admin:merchandising_rule_delete", args=[rule.pk]), {"post": "yes"})
    first = RuleRevision.objects.get(rule_id_value=rule.pk, number=1)

    staff.post(
        reverse("admin:merchandising_rulerevision_changelist"),
        {"action": "revert_selected", "_selected_action": [first.pk]},
    )

    assert Rule.objects.get(pk=rule.pk).name == "Gone soon"


def test_a_revert_needs_a_post(staff: Client, shop: Customer) -> None:
    rule = stored_rule(shop)

    assert staff.get(revert_url(rule.pk, 1)).status_code == 405


# --- two tenants -------------------------------------------------------------------------------


def test_staff_of_one_customer_cannot_reach_another_customers_rules(
    staff: Client, shop: Customer, other_shop: Customer
) -> None:
    theirs = stored_rule(other_shop, name="bravozed-rule")
    stored_rule(shop, name="alphaquux-rule")
    deleted = stored_rule(other_shop, name="bravozed-deleted")
    deleted_id = deleted.pk
    rule_delete(rule=deleted)

    changelist = staff.get(reverse("admin:merchandising_rule_changelist")).content.decode()
    revisions = staff.get(reverse("admin:merchandising_rulerevision_changelist")).content.decode()
    change = staff.get(change_url(theirs))
    edit = staff.post(change_url(theirs), form_data(name="hijacked"))
    preview = staff.get(preview_url(theirs), {"surface": "search", "query": "shoe"})
    check = staff.post(
        reverse("admin:merchandising_rule_check", args=[theirs.pk]), form_data(name="x")
    )
    history = staff.get(history_url(theirs))
    deleted_history = staff.get(history_url(deleted_id))
    revert = staff.post(revert_url(theirs.pk, 1))
    revert_deleted = staff.post(revert_url(deleted_id, 1))
    staff.post(
        reverse("admin:merchandising_rulerevision_changelist"),
        {
            "action": "revert_selected",
            "_selected_action": list(
                RuleRevision.objects.filter(customer=other_shop).values_list("pk", flat=True)
            ),
        },
    )
    delete = staff.post(
        reverse("admin:merchandising_rule_delete", args=[theirs.pk]), {"post": "yes"}
    )

    assert "alphaquux-rule" in changelist
    assert "bravozed" not in changelist
    assert "Bravozed" not in changelist
    assert "alphaquux-rule" in revisions
    assert "bravozed" not in revisions
    assert change.status_code in (302, 404)
    assert edit.status_code in (302, 404)
    assert preview.status_code == history.status_code == deleted_history.status_code == 404
    assert check.status_code == 404
    assert "bravozed" not in check.content.decode()
    assert revert.status_code == revert_deleted.status_code == 404
    assert delete.status_code in (302, 404)
    theirs.refresh_from_db()
    assert (theirs.name, theirs.revision) == ("bravozed-rule", 1)
    assert not Rule.objects.filter(pk=deleted_id).exists()
    assert RuleRevision.objects.filter(customer=other_shop).count() == 3


def test_the_rule_form_offers_the_shops_own_brands_and_categories_to_pick(
    staff: Client, shop: Customer, other_shop: Customer
) -> None:
    ItemFactory(customer=other_shop, external_id="bz-2", brand="Bravozed", categories=["bags"])
    rule = stored_rule(shop)

    added = staff.get(add_url()).content.decode()
    changed = staff.get(change_url(rule)).content.decode()

    for page in (added, changed):
        brands = page[page.index('<datalist id="catalog-brands">') :]
        brands = brands[: brands.index("</datalist>")]
        categories = page[page.index('<datalist id="catalog-categories">') :]
        categories = categories[: categories.index("</datalist>")]
        assert brands.count("<option") == 2
        assert '<option value="Acme">' in brands
        assert '<option value="Zeta">' in brands
        assert '<option value="shoes/running">' in categories
        assert '<option value="socks">' in categories
        assert "Bravozed" not in page
        assert "bags" not in categories
        assert 'data-picker="catalog-brands"' in page
        assert "rankwell/rule_pickers.js" in page
