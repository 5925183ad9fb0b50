"""The explain UI under /explain/."""

from django.urls import path

from explain import insight, views, workbench

app_name = "explain"

urlpatterns = [
    path("", views.ranking_view, name="ranking"),
    path("item/", views.item_view, name="item"),
    path("why/", views.why_view, name="why"),
    path("compare/", views.compare_view, name="compare"),
    path("queries/", insight.queries_view, name="queries"),
    path("why-not/", insight.why_not_view, name="why-not"),
    path("workbench/", workbench.workbench_view, name="workbench"),
    path("workbench/change/", workbench.change_view, name="workbench-change"),
    path("workbench/publish/", workbench.publish_view, name="workbench-publish"),
    path("workbench/discard/", workbench.discard_view, name="workbench-discard"),
    path("workbench/turn-off/", workbench.turn_off_view, name="workbench-turn-off"),
    path("export.json", views.export_view, {"fmt": "json"}, name="export-json"),
    path("export.csv", views.export_view, {"fmt": "csv"}, name="export-csv"),
]
