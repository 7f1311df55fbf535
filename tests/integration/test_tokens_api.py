"""The admins' API tokens over HTTP (issue 14, for ``wfe tokens``): ``GET|POST /api/v1/auth/tokens`` and
``DELETE /api/v1/auth/tokens/{id}``.

Requests go through the real URLconf, authentication, permissions and views (``APIClient``); every answer is
checked against its OpenAPI description, as ``Api.call`` does for the live gateway. Who may call these routes
is in the role matrix (test_roles.py); the walk of every operation is test_response_schemas.py.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts import tokens
from apps.accounts.models import ApiToken
from tests import openapi_check

pytestmark = pytest.mark.django_db

TOKENS = "/api/v1/auth/tokens"
READ = "/api/v1/workflows"


def person(role: str | None = "viewer") -> Any:
    user = get_user_model().objects.create_user(f"{role or 'none'}-{uuid.uuid4().hex[:8]}")
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def client_of(user: Any) -> APIClient:
    return bearer(tokens.issue(user, f"setup-{uuid.uuid4().hex[:8]}")[1])


@pytest.fixture
def admin() -> APIClient:
    """A member of the admin group, not a superuser: the role's permissions must be enough."""
    return client_of(person("admin"))


def call(client: APIClient, method: str, path: str, body: Any = None, raw: str | None = None) -> Any:
    """The answer (status, JSON), after checking it against the route's OpenAPI description."""
    if raw is not None:
        response = getattr(client, method.lower())(path, data=raw, content_type="application/json")
    else:
        response = getattr(client, method.lower())(path, body, format="json")
    media = response["Content-Type"].split(";")[0] if response.content else ""
    openapi_check.check_response(
        method, path.split("?")[0], response.status_code, media, response.content.decode()
    )
    return response.status_code, (response.json() if response.content else None)


# --- create, list, revoke -----------------------------------------------------------------------------------


def test_an_admin_creates_a_token_for_a_user_and_its_key_works_at_once(admin: APIClient) -> None:
    owner = person("viewer")
    status, created = call(
        admin, "POST", TOKENS, {"name": "ci", "username": owner.username, "expires": "30d"}
    )
    assert status == 201, created
    assert created["username"] == owner.username and created["name"] == "ci"
    assert created["prefix"] == created["token"][: tokens.PREFIX_LENGTH] and len(created["token"]) == 40
    expires = ApiToken.objects.get(pk=created["id"]).expires_at
    assert expires is not None and timedelta(days=29, hours=23) < expires - timezone.now() <= timedelta(
        days=30
    )
    assert created["lastUsedAt"] is None and created["expired"] is False
    assert bearer(created["token"]).get(READ).status_code == 200


def test_a_token_without_a_username_is_the_callers_and_without_expires_never_expires() -> None:
    caller = person("admin")
    status, created = call(client_of(caller), "POST", TOKENS, {"name": "mine", "expires": None})
    assert status == 201, created
    assert created["username"] == caller.username and created["expiresAt"] is None


def test_the_list_shows_tokens_without_key_or_hash_and_filters_by_username(admin: APIClient) -> None:
    owner = person("operator")
    live, key = tokens.issue(owner, "grafana")
    gone, _ = tokens.issue(owner, "old")
    tokens.revoke(gone.pk)
    late, _ = tokens.issue(owner, "late", timezone.now() - timedelta(minutes=1))
    bearer(key).get(READ)  # a use: lastUsedAt
    status, listed = call(admin, "GET", f"{TOKENS}?username={owner.username}")
    assert status == 200, listed
    by_name = {t["name"]: t for t in listed["tokens"]}
    assert sorted(by_name) == ["grafana", "late"] and listed["count"] == 2  # a revoked one is gone
    assert by_name["grafana"]["id"] == live.pk and by_name["grafana"]["lastUsedAt"] is not None
    assert by_name["late"]["expired"] is True and by_name["grafana"]["expired"] is False
    text = json.dumps(listed)
    assert key not in text and live.key_hash not in text
    assert set(by_name["grafana"]) == {
        "id",
        "name",
        "username",
        "prefix",
        "createdAt",
        "expiresAt",
        "lastUsedAt",
        "expired",
    }
    everyone = call(admin, "GET", TOKENS)[1]
    assert {late.pk, live.pk} <= {t["id"] for t in everyone["tokens"]}
    assert call(admin, "GET", f"{TOKENS}?username=nobody-{uuid.uuid4().hex}")[1] == {"tokens": [], "count": 0}


def test_the_list_costs_the_same_queries_for_one_token_or_many(admin: APIClient) -> None:
    owners = [person("viewer") for _ in range(3)]
    tokens.issue(owners[0], "one")
    call(admin, "GET", TOKENS)  # the caller's permissions are cached on its user for the next request
    with CaptureQueriesContext(connection) as few:
        call(admin, "GET", f"{TOKENS}?username={owners[0].username}")
    for owner in owners:
        for n in range(3):
            tokens.issue(owner, f"many-{n}")
    with CaptureQueriesContext(connection) as many:
        assert call(admin, "GET", TOKENS)[1]["count"] >= 9
    assert len(many) == len(few), [q["sql"] for q in many]


def test_a_revoked_token_stops_authenticating_at_once(admin: APIClient) -> None:
    owner = person("viewer")
    token, key = tokens.issue(owner, "short-lived")
    user_client = bearer(key)
    assert user_client.get(READ).status_code == 200
    assert call(admin, "DELETE", f"{TOKENS}/{token.pk}") == (204, None)
    refused = user_client.get(READ)
    assert refused.status_code == 401 and "revoked" in refused.json()["message"]
    status, again = call(admin, "DELETE", f"{TOKENS}/{token.pk}")  # revoked already: nothing live to revoke
    assert status == 404 and again["error"] == "not_found"


def test_an_admin_may_revoke_the_token_it_is_calling_with() -> None:
    caller = person("admin")
    token, key = tokens.issue(caller, "self")
    assert call(bearer(key), "DELETE", f"{TOKENS}/{token.pk}")[0] == 204
    assert bearer(key).get(READ).status_code == 401


@pytest.mark.parametrize("token_id", ["0", "999999999", "9" * 19, "9" * 40, "abc", "-1", "1.5", "%C2%B2"])
def test_revoking_an_unknown_token_is_a_404(admin: APIClient, token_id: str) -> None:
    status, answer = call(admin, "DELETE", f"{TOKENS}/{token_id}")
    assert status == 404 and answer["error"] == "not_found", answer


def test_a_second_live_token_of_the_same_name_is_a_409_and_a_revoked_name_is_free_again(
    admin: APIClient,
) -> None:
    owner = person("viewer")
    body = {"name": "deploy", "username": owner.username}
    first = call(admin, "POST", TOKENS, body)[1]
    status, refused = call(admin, "POST", TOKENS, body)
    assert status == 409 and refused["error"] == "conflict" and "name" in refused["details"], refused
    assert call(admin, "DELETE", f"{TOKENS}/{first['id']}")[0] == 204
    assert call(admin, "POST", TOKENS, body)[0] == 201


# --- hostile input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "x" * 1_000_000}, "name"),
        ({"name": ["ci"]}, "name"),
        ({"name": 7.5e300}, "name"),
        ({"name": "ci", "username": "nobody-such"}, "username"),
        ({"name": "ci", "username": "u" * 151}, "username"),
        ({"name": "ci", "username": {"a": 1}}, "username"),
        ({"name": "ci", "expires": "30 days"}, "expires"),
        ({"name": "ci", "expires": "0d"}, "expires"),
        ({"name": "ci", "expires": "-1d"}, "expires"),
        ({"name": "ci", "expires": "999999w"}, "expires"),
        ({"name": "ci", "expires": "3651d"}, "expires"),
        ({"name": "ci", "expires": 30}, "expires"),
        ({"name": "ci", "expires": "1" * 500}, "expires"),
        ([{"name": "ci"}], "non_field_errors"),
        ("ci", "non_field_errors"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(admin: APIClient, body: Any, field: str) -> None:
    before = ApiToken.objects.count()
    status, answer = call(admin, "POST", TOKENS, raw=json.dumps(body))
    assert status in (400, 413), answer
    if status == 400:
        assert field in answer["details"], answer
    assert ApiToken.objects.count() == before


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ('{"name": "a\\u0000b"}', "name"),
        ('{"name": "ci", "username": "\\ud800"}', "username"),
        ('{"name": "ci", "expires": "\\u0000"}', "expires"),
        ("{not json", "JSON"),
        ("null", "non_field_errors"),
        ("1e400", "JSON"),
    ],
)
def test_unstorable_or_malformed_bodies_are_refused_naming_what(
    admin: APIClient, raw: str, named: str
) -> None:
    status, answer = call(admin, "POST", TOKENS, raw=raw)
    assert status == 400, answer
    assert named in answer["message"] or named in answer["details"], answer


def test_a_huge_body_is_a_413_not_a_500(admin: APIClient) -> None:
    status, answer = call(admin, "POST", TOKENS, raw=json.dumps({"name": "x" * 3_000_000}))
    assert status == 413, answer


@pytest.mark.parametrize("query", ["username=" + "u" * 151, "username=a%00b"])
def test_a_bad_username_filter_is_a_400_or_matches_nothing(admin: APIClient, query: str) -> None:
    status, answer = call(admin, "GET", f"{TOKENS}?{query}")
    assert status in (200, 400), answer
    if status == 400:
        assert "username" in answer["details"], answer
    else:
        assert answer["count"] == 0


# --- who may ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [None, "viewer", "operator", "approver"])
def test_no_one_but_an_admin_lists_creates_or_revokes_tokens(role: str | None) -> None:
    victim, _ = tokens.issue(person("viewer"), "target")
    rest = client_of(person(role))
    for method, path, body in (
        ("GET", TOKENS, None),
        ("POST", TOKENS, {"name": "escalate"}),
        ("DELETE", f"{TOKENS}/{victim.pk}", None),
    ):
        status, answer = call(rest, method, path, body)
        assert status == 403 and answer["error"] == "permission_denied", (role, method, answer)
        if role is not None:
            assert "admin" in answer["message"], answer
    assert not ApiToken.objects.get(pk=victim.pk).revoked
    assert not ApiToken.objects.filter(name="escalate").exists()


def test_without_credentials_it_is_a_401() -> None:
    status, answer = call(APIClient(), "GET", TOKENS)
    assert status == 401 and answer["error"] == "not_authenticated"
