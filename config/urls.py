from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from catalog.api import CatalogItemApi, CatalogUpsertApi
from core import health
from core.metrics import metrics_view
from core.problems import api_not_found, api_server_error
from core.views import problem_type, proto_file
from events.api import EventsIngestApi
from merchandising.api import RuleDetailApi, RuleHoldoutApi, RuleListApi, RuleRevisionsApi
from ranking.api import RankApi
from ranking.experiments_api import ExperimentListApi, ExperimentResultsApi
from ranking.registry_api import ModelListApi

urlpatterns = [
    path("v1/rank", RankApi.as_view(), name="rank"),
    path("v1/models", ModelListApi.as_view(), name="models"),
    path("v1/experiments", ExperimentListApi.as_view(), name="experiments"),
    path(
        "v1/experiments/<int:experiment_id>/results",
        ExperimentResultsApi.as_view(),
        name="experiment-results",
    ),
    path("v1/events", EventsIngestApi.as_view(), name="events"),
    path("v1/catalog/items", CatalogUpsertApi.as_view(), name="catalog-items"),
    path("v1/catalog/items/<path:item_id>", CatalogItemApi.as_view(), name="catalog-item"),
    path("v1/rules", RuleListApi.as_view(), name="rules"),
    path("v1/rules/<int:rule_id>", RuleDetailApi.as_view(), name="rule"),
    path("v1/rules/<int:rule_id>/revisions", RuleRevisionsApi.as_view(), name="rule-revisions"),
    path("v1/rules/<int:rule_id>/holdout", RuleHoldoutApi.as_view(), name="rule-holdout"),
    path("v1/schema", SpectacularJSONAPIView.as_view(), name="schema"),
    path("v1/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("v1/proto/<str:name>", proto_file, name="proto-file"),
    path("problems/<slug:slug>", problem_type, name="problem-type"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("explain/", include("explain.urls")),
    path("admin/", admin.site.urls),
    # Unknown /v1 paths answer problem+json, with DEBUG on too.
    re_path(r"^v1/", api_not_found),
]

# The product's name on the pages that read it from the site (templates/admin/base_site.html
# names it on every page).
admin.site.site_header = "Rankwell"
admin.site.site_title = "Rankwell"
admin.site.index_title = "Merchandising and ranking"

handler404 = api_not_found
handler500 = api_server_error
