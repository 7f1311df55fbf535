"""Trailing slashes are tolerated: ``/api/v1/workflows/`` is served as ``/api/v1/workflows``.

Our routes are written without a trailing slash (as the original's were), Django's admin and the API docs with
one. A client that adds a slash where a route has none is served by that route directly: no redirect, which
some clients would follow by turning a POST into a GET or by dropping the Authorization header. A path that
resolves as it is, or whose slashless form does not resolve either, is left alone (Django's ``APPEND_SLASH``
still adds the slash the admin needs).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve


def _resolves(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


class TrailingSlashMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if len(path) > 1 and path.endswith("/") and not _resolves(path):
            bare = path.rstrip("/") or "/"
            if _resolves(bare):
                request.path_info = bare
                request.path = request.path[: len(request.path) - (len(path) - len(bare))]
        return self.get_response(request)
