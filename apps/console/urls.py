"""``/ui/`` and every path below it: the console's shell (the page itself is chosen in the browser)."""

from __future__ import annotations

from django.urls import path

from apps.console import views

urlpatterns = [
    path("", views.shell, name="console"),
    path("<path:path>", views.shell, name="console-page"),
]
