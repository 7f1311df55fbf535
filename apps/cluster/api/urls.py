"""Cluster routes under ``/api/v1/cluster/`` (origin-product.md §5.5)."""

from __future__ import annotations

from django.urls import path

from apps.cluster.api import views

urlpatterns = [
    path("stats", views.ClusterStatsView.as_view(), name="cluster-stats"),
    path("shards", views.ClusterShardsView.as_view(), name="cluster-shards"),
]
