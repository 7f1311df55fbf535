"""The console's one page: every path under ``/ui/`` answers the same HTML shell, and the browser's router
(``static/console/console.js``) draws the page the path names, so a reload or a shared link lands where it
was. Data never passes through here: the browser reads the REST API with the person's session."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe


@require_safe
def shell(request: HttpRequest, path: str = "") -> HttpResponse:
    return render(request, "console/shell.html")
