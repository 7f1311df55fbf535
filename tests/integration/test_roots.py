"""Discoverable roots: ``/`` leads a browser to the console, ``/api/`` and ``/api/v1/`` list the resource
roots (every link resolves), and a trailing slash where a route has none is served as if it were not there."""

from __future__ import annotations

import http.client
import re
from typing import Any
from urllib.parse import urlsplit

from django.urls import Resolver404, resolve

from tests.harness import Api
from tests.integration.test_control import create, start
from tests.integration.test_executions import minimal


def raw(api: Api, method: str, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    """One request without following redirects."""
    parts = urlsplit(api.base)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    connection.request(method, path, headers=headers or {})
    return connection.getresponse()


def test_the_site_root_redirects_to_the_console(api: Api) -> None:
    response = raw(api, "GET", "/")
    assert response.status == 302
    assert response.getheader("Location") == "/ui/"
    assert raw(api, "GET", "/ui/").status == 200
    assert raw(api, "GET", "/api/docs/").status == 200


def test_the_api_roots_list_every_resource_root_and_each_link_resolves(api: Api) -> None:
    for root in ("/api/", "/api/v1/"):
        status, body = Api(api.base, "no-such-token").get(root)  # open: found before one has a token
        assert status == 200, body
        assert body["version"] == "v1"
        assert {"workflows", "executions", "schedules", "cluster", "docs", "health"} <= set(body["resources"])
    for name, resource in body["resources"].items():
        path = re.sub(r"\{[^}]+\}", "some-id", resource["href"])
        try:
            resolve(path)
        except Resolver404:
            raise AssertionError(f"{name}: {resource['href']} is not a route") from None
        assert resource["description"]


def test_the_api_root_without_its_slash_redirects_to_it(api: Api) -> None:
    response = raw(api, "GET", "/api/v1")
    assert response.status == 301 and response.getheader("Location") == "/api/v1/"


def test_a_trailing_slash_is_served_as_the_route_without_it(api: Api, uid: str) -> None:
    workflow_id = create(api, minimal(f"slash-{uid}"))
    with_slash: dict[str, Any] = api.get(f"/api/v1/workflows/{workflow_id}/")[1]
    assert with_slash == api.get(f"/api/v1/workflows/{workflow_id}")[1]
    # an unsafe method too: no redirect that a client could turn into a GET or follow without its token
    status, started = api.post(f"/api/v1/workflows/{workflow_id}/execute/")
    assert status == 200 and started["workflowId"] == workflow_id
    assert api.wait_finished(started["executionId"])["status"] == "completed"
    assert start(api, workflow_id)  # and the route without a slash still answers as ever


def test_unknown_paths_stay_404_in_the_error_shape_with_or_without_a_slash(api: Api) -> None:
    for path in ("/api/v1/nope", "/api/v1/nope/", "/api/v1/workflows/x/nope/"):
        status, body = api.get(path)
        assert status == 404 and body["error"] == "not_found", (path, body)


def test_the_admin_keeps_its_own_slashes(api: Api) -> None:
    response = raw(api, "GET", "/admin/")
    assert response.status == 302 and response.getheader("Location", "").startswith("/admin/login/")


def test_a_long_query_string_is_answered_by_the_api_not_refused_by_the_gateway(api: Api) -> None:
    # a filtered list can carry many values: a request line past gunicorn's 4094-byte limit got an HTML 414
    query = "&".join(f"workflowId=wf-{i:05d}-{'x' * 40}" for i in range(100))
    assert len(query) > 4094
    response = raw(api, "GET", f"/api/v1/executions?{query}", {"Authorization": f"Token {api.token}"})
    assert response.status == 200, response.read()[:300]
    assert response.getheader("Content-Type", "").startswith("application/json")
