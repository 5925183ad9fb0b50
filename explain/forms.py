"""The explain form: a GET form, so the page's URL holds the whole request (the permalink).

Choices that depend on the customer (its models) are built for the customer the view already
checked the user may see; errors name the field they are about.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from customers.models import Customer
from customers.selectors import customers_visible
from explain import services
from ranking.models import Surface

SOURCE_CHOICES = [
    (services.SOURCE_IDS, "pasted item ids"),
    (services.SOURCE_CATEGORY, "the top items of a category"),
    (services.SOURCE_LOG, "replay a logged request"),
]


# Fields left out of the URL take these values.
DEFAULTS = {
    "surface": "search",
    "source": services.SOURCE_CATEGORY,
    "top_n": "50",
    "show": "50",
    "ranker": services.RANKER_LIVE,
}


class ExplainForm(forms.Form):
    customer = forms.ModelChoiceField(queryset=Customer.objects.none(), empty_label=None)
    surface = forms.ChoiceField(choices=Surface.choices, initial=Surface.SEARCH)
    query = forms.CharField(required=False, max_length=200, help_text="Search words.")
    category = forms.CharField(
        required=False, max_length=200, help_text="The page's category path (browse)."
    )
    user = forms.CharField(
        required=False, max_length=200, label="Shopper", help_text="The shopper's user id."
    )
    context = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 24}),
        help_text="key=value per line, e.g. device=mobile.",
    )
    at = forms.CharField(
        required=False,
        label="At",
        help_text="ISO 8601, e.g. 2026-12-01T09:00+01:00; blank: now. Scheduled rules are "
        "evaluated then.",
    )
    source = forms.ChoiceField(
        choices=SOURCE_CHOICES, initial=services.SOURCE_CATEGORY, label="Candidates"
    )
    ids = forms.CharField(
        required=False,
        max_length=200_000,
        label="Item ids",
        widget=forms.Textarea(attrs={"rows": 4, "cols": 28}),
        help_text="One per line or comma-separated; `id relevance` to send a relevance.",
    )
    from_category = forms.CharField(
        required=False, max_length=200, label="From category", help_text="e.g. shoes/running."
    )
    top_n = forms.IntegerField(
        min_value=1, max_value=services.MAX_CANDIDATES, initial=50, label="Top N"
    )
    request_id = forms.CharField(required=False, max_length=64, label="Logged request id")
    ranker = forms.ChoiceField(choices=[], initial=services.RANKER_LIVE)
    show = forms.IntegerField(min_value=1, max_value=services.MAX_CANDIDATES, initial=50)
    # The other pages' own fields, kept in the same URL.
    item = forms.CharField(required=False, max_length=256)
    a = forms.CharField(required=False, max_length=256, label="A")
    b = forms.CharField(required=False, max_length=256, label="B")
    compare = forms.ChoiceField(choices=[], required=False, label="Compare with")

    def __init__(self, *args: Any, user: Any, customer: Customer | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        customers = customers_visible(user=user)
        customer_field = self.fields["customer"]
        assert isinstance(customer_field, forms.ModelChoiceField)
        customer_field.queryset = customers
        customer = customer or customers.first()
        choices = (
            services.ranker_choices(customer_id=customer.pk, surface=None)
            if customer is not None
            else []
        )
        ranker_field = self.fields["ranker"]
        assert isinstance(ranker_field, forms.ChoiceField)
        ranker_field.choices = choices
        compare_field = self.fields["compare"]
        assert isinstance(compare_field, forms.ChoiceField)
        compare_field.choices = [("", "---"), *choices]

    def clean_at(self) -> Any:
        text = (self.cleaned_data.get("at") or "").strip()
        if not text:
            return None
        try:
            at = parse_datetime(text)
        except ValueError:
            at = None
        if at is None:
            raise forms.ValidationError("Give a date and time, or leave it blank for now.")
        return at if timezone.is_aware(at) else timezone.make_aware(at, UTC)

    def clean_context(self) -> dict[str, str]:
        context = {}
        for line in (self.cleaned_data.get("context") or "").splitlines():
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise forms.ValidationError(f"Write {line.strip()!r} as key=value.")
            context[key.strip()] = value.strip()
        return context

    def clean_ids(self) -> tuple[tuple[str, float | None], ...]:
        try:
            return services.parse_candidates(self.cleaned_data.get("ids") or "")
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        source = data.get("source")
        if source == services.SOURCE_LOG:
            if not (data.get("request_id") or "").strip():
                self.add_error("request_id", "Give the id of the logged request to replay.")
            return data
        if data.get("surface") in ("search", "autocomplete") and not data.get("query"):
            self.add_error("query", "A search needs a query.")
        if source == services.SOURCE_IDS and "ids" in data and not data["ids"]:
            self.add_error("ids", "Paste at least one item id.")
        if source == services.SOURCE_CATEGORY and not data.get("from_category"):
            if data.get("category"):
                data["from_category"] = data["category"]
            else:
                self.add_error("from_category", "Name the category to take the top items of.")
        return data

    def params(self) -> services.ExplainParams:
        data = self.cleaned_data
        return services.ExplainParams(
            customer_id=data["customer"].pk,
            surface=data["surface"],
            query=data["query"],
            category=data["category"],
            user_id=data["user"].strip(),
            context=data["context"],
            at=data["at"],
            source=data["source"],
            ids=data["ids"],
            from_category=data["from_category"],
            top_n=data["top_n"],
            request_id=data["request_id"].strip(),
            ranker=data["ranker"],
        )
