"""Cluster and events routes under ``/api/v1/`` (origin-product.md §5.5, and the §6.2 routes the original
documented but never built), and ``/monitoring/`` (``monitoring_urlpatterns``).

``events/stats`` comes before ``events/<event_type>``, and the workflows' ``events/workflow/<id>`` is included
before these (``workflow_engine/urls.py``): those names are not event types (filter with ``?event_type=``).
Where executions live (``cluster/workflow/<id>/location``, ``executions/<id>/location``) is the workflows'.
"""

from __future__ import annotations

from django.urls import path

from apps.cluster.api import views

urlpatterns = [
    path("cluster/stats", views.ClusterStatsView.as_view(), name="cluster-stats"),
    path("cluster/shards", views.ClusterShardsView.as_view(), name="cluster-shards"),
    path("cluster/members", views.ClusterMembersView.as_view(), name="cluster-members"),
    path("events", views.EventsView.as_view(), name="events"),
    path("events/stats", views.EventStatsView.as_view(), name="events-stats"),
    path("events/<str:event_type>", views.EventsOfTypeView.as_view(), name="events-type"),
]

monitoring_urlpatterns = [
    path("cluster/status", views.ClusterStatusTextView.as_view(), name="monitoring-cluster-status"),
]
