"""The gateway's URLs: the REST API under ``/api/`` and ``/monitoring/`` (authenticated), its schema and docs,
the admin and the open health probes. Paths DRF does not serve answer errors in the same JSON shape as the
API."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from apps.cluster.api.urls import monitoring_urlpatterns
from apps.workflows.api import health
from workflow_engine.api import roots

_OPEN = {"authentication_classes": [], "permission_classes": [AllowAny]}

urlpatterns = [
    path("", roots.site_root, name="site-root"),
    path("api/", roots.ApiRootView.as_view(), name="api-root"),
    path("api/v1/", roots.ApiRootView.as_view(), name="api-v1-root"),
    path("health", health.HealthView.as_view(), name="health"),
    path("health/live", health.LiveView.as_view(), name="health-live"),
    path("health/ready", health.ReadyView.as_view(), name="health-ready"),
    path("api/schema/", SpectacularAPIView.as_view(**_OPEN), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema", **_OPEN), name="docs"),
    path("api/v1/auth/", include("apps.accounts.urls")),  # the console's sign-in (open)
    path("api/", include("apps.workflows.api.urls")),  # before events/<event_type>: events/workflow/<id>
    path("api/v1/", include("apps.cluster.api.urls")),  # cluster/, events
    path("api/v1/", include("apps.schedules.urls")),  # schedules, backfills
    path("monitoring/", include(monitoring_urlpatterns)),  # authenticated like /api/
    path("admin/", admin.site.urls),
    path("ui/", include("apps.console.urls")),  # the web console: one shell, pages drawn in the browser
]

handler400 = "workflow_engine.api.errors.bad_request"
handler403 = "workflow_engine.api.errors.permission_denied"
handler404 = "workflow_engine.api.errors.not_found"
handler500 = "workflow_engine.api.errors.server_error"
