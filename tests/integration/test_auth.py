"""Authentication for every kind of client (issue 12, item 5): named API tokens under the Bearer and Token
schemes, browser sessions with CSRF, their expiry, revocation and last use, the ``api_token`` command, the
admin, and the DRF keys of before the migration.

Requests go through the real URLconf, authentication, permissions and views (``APIClient``); each answer of
the auth routes is also checked against its OpenAPI description, as ``Api.call`` does for the live gateway.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from apps.accounts import tokens
from apps.accounts.authentication import ApiTokenAuthentication
from apps.accounts.models import ApiToken
from tests import openapi_check
from tests.integration.test_executions import minimal

pytestmark = pytest.mark.django_db

READ = "/api/v1/workflows"
PASSWORD = "correct horse battery staple"


def person(role: str = "operator") -> Any:
    user = get_user_model().objects.create_user(f"{role}-{uuid.uuid4().hex[:8]}", password=PASSWORD)
    user.groups.add(Group.objects.get(name=role))
    return user


def with_header(value: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=value)
    return client


def checked(response: Any, method: str, path: str) -> Any:
    """The response, after checking it against the route's OpenAPI description."""
    media = response["Content-Type"].split(";")[0] if response.content else ""
    openapi_check.check_response(method, path, response.status_code, media, response.content.decode())
    return response


@pytest.fixture
def workflow_id() -> str:
    admin = get_user_model().objects.create_user(f"adm-{uuid.uuid4().hex[:8]}", is_superuser=True)
    body = minimal(f"auth-{uuid.uuid4().hex[:10]}")
    response = with_header(f"Bearer {tokens.issue(admin, 'setup')[1]}").post(READ, body, format="json")
    assert response.status_code == 201, response.json()
    return str(body["id"])


def act(client: APIClient, workflow_id: str, **extra: Any) -> Any:
    return client.post(f"/api/v1/workflows/{workflow_id}/execute", {}, format="json", **extra)


# --- the Bearer and Token schemes --------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "Token", "bearer"])
def test_an_api_token_reads_and_acts_under_either_scheme(scheme: str, workflow_id: str) -> None:
    _, key = tokens.issue(person("operator"), "ci")
    client = with_header(f"{scheme} {key}")
    assert client.get(READ).status_code == 200
    started = act(client, workflow_id)
    assert started.status_code == 200, started.json()
    assert started.json()["executionId"]


def test_the_role_still_decides_what_a_token_may_do(workflow_id: str) -> None:
    client = with_header(f"Bearer {tokens.issue(person('viewer'), 'dash')[1]}")
    assert client.get(READ).status_code == 200
    refused = act(client, workflow_id)
    assert refused.status_code == 403 and "operator" in refused.json()["message"]


def test_only_the_hash_of_a_key_is_stored() -> None:
    token, key = tokens.issue(person(), "ci")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken WHERE id = %s", [token.pk])
        row = cursor.fetchone()
    assert len(key) == 40 and key not in [str(v) for v in row]
    assert token.key_hash == tokens.hash_key(key) and token.prefix == key[:6]


def assert_401(response: Any, *words: str) -> str:
    assert response.status_code == 401, response.content
    body = response.json()
    assert body["error"] == "not_authenticated" and body["details"] == {}
    assert response["WWW-Authenticate"].startswith("Bearer")
    for word in words:
        assert word in body["message"], body["message"]
    return str(body["message"])


def test_an_expired_token_is_refused_with_when_it_expired() -> None:
    token, key = tokens.issue(person(), "old", expires_at=timezone.now() - timedelta(seconds=1))
    assert token.expires_at is not None
    assert_401(with_header(f"Bearer {key}").get(READ), "expired at", token.expires_at.isoformat())


def test_a_token_works_until_it_expires() -> None:
    _, key = tokens.issue(person(), "soon", expires_at=timezone.now() + timedelta(minutes=5))
    assert with_header(f"Token {key}").get(READ).status_code == 200


def test_a_revoked_token_is_refused_as_revoked() -> None:
    token, key = tokens.issue(person(), "gone")
    assert with_header(f"Bearer {key}").get(READ).status_code == 200
    assert tokens.revoke(token.pk) and not tokens.revoke(token.pk)
    assert_401(with_header(f"Bearer {key}").get(READ), "revoked")


def test_an_unknown_token_is_refused_as_unknown() -> None:
    assert_401(with_header(f"Bearer {'0' * 40}").get(READ), "Invalid token", "no API token has this key")


@pytest.mark.parametrize(
    "header",
    ["Basic dXNlcjpwYXNz", "Bearer", "Token", "Bearer two parts", "abc123", "Bearer caf\u00e9", "JWT x.y.z"],
)
def test_a_malformed_header_is_a_401_with_a_hint(header: str) -> None:
    message = assert_401(with_header(header).get(READ))
    assert "use 'Authorization: Bearer <token>' or 'Authorization: Token <token>'" in message


def test_without_credentials_it_is_still_not_provided() -> None:
    response = APIClient().get(READ)
    assert response.status_code == 401 and "not provided" in response.json()["message"]


def test_a_token_of_an_inactive_user_is_refused() -> None:
    user = person()
    _, key = tokens.issue(user, "ci")
    user.is_active = False
    user.save()
    assert_401(with_header(f"Bearer {key}").get(READ), "inactive")


def test_last_use_is_recorded_at_most_once_a_minute() -> None:
    token, key = tokens.issue(person(), "ci")
    client = with_header(f"Bearer {key}")
    assert token.last_used_at is None
    client.get(READ)
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first is not None and timezone.now() - first < timedelta(seconds=30)
    client.get(READ)
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first  # within the minute: not written again
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=2))
    client.get(READ)
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first  # type: ignore[operator]


def test_a_live_token_name_is_unique_per_user_but_a_revoked_one_may_be_reused() -> None:
    user = person()
    token, _ = tokens.issue(user, "ci")
    with pytest.raises(tokens.Conflict, match="already has a live token named 'ci'"):
        tokens.issue(user, "ci")
    tokens.issue(person(), "ci")  # another user's
    tokens.revoke(token.pk)
    tokens.issue(user, "ci")


# --- failed tokens are throttled per IP ---------------------------------------------------------------------


@pytest.fixture
def low_limits(settings: Any) -> Any:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "auth_failures": "2/day",
            "login": "3/day",
        },
    }
    return settings


def new_ip() -> str:
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{raw[2] or 1}"


def test_revoked_and_expired_tokens_count_as_failed_guesses(low_limits: Any) -> None:
    ip = new_ip()
    revoked, key = tokens.issue(person(), "gone")
    tokens.revoke(revoked.pk)
    _, expired = tokens.issue(person(), "old", expires_at=timezone.now() - timedelta(days=1))
    _, good = tokens.issue(person(), "good")
    assert APIClient(REMOTE_ADDR=ip, HTTP_AUTHORIZATION=f"Bearer {key}").get(READ).status_code == 401
    assert APIClient(REMOTE_ADDR=ip, HTTP_AUTHORIZATION=f"Token {expired}").get(READ).status_code == 401
    assert APIClient(REMOTE_ADDR=ip, HTTP_AUTHORIZATION=f"Bearer {good}").get(READ).status_code == 429
    assert APIClient(REMOTE_ADDR=new_ip(), HTTP_AUTHORIZATION=f"Bearer {good}").get(READ).status_code == 200


# --- browser sessions with CSRF -----------------------------------------------------------------------------


def browser() -> APIClient:
    return APIClient(enforce_csrf_checks=True, REMOTE_ADDR=new_ip())


def csrf_of(client: APIClient) -> str:
    session = checked(client.get("/api/v1/auth/session"), "GET", "/api/v1/auth/session")
    assert session.status_code == 200
    assert session.cookies["csrftoken"].value
    return str(session.json()["csrfToken"])


def login(client: APIClient, username: str, password: str = PASSWORD, csrf: str | None = None) -> Any:
    extra = {"HTTP_X_CSRFTOKEN": csrf} if csrf else {}
    body = {"username": username, "password": password}
    return checked(
        client.post("/api/v1/auth/login", body, format="json", **extra), "POST", "/api/v1/auth/login"
    )


def signed_in(role: str = "operator") -> tuple[APIClient, str, Any]:
    user, client = person(role), browser()
    response = login(client, user.username, csrf=csrf_of(client))
    assert response.status_code == 200, response.json()
    return client, str(response.json()["csrfToken"]), user


def test_a_browser_signs_in_reads_and_acts_with_the_csrf_token(workflow_id: str) -> None:
    client, csrf, user = signed_in("operator")
    assert client.get(READ).status_code == 200  # reads need no CSRF token
    started = act(client, workflow_id, HTTP_X_CSRFTOKEN=csrf)
    assert started.status_code == 200, started.json()
    session = client.get("/api/v1/auth/session").json()
    assert (
        session["authenticated"] and session["username"] == user.username and session["roles"] == ["operator"]
    )


def test_a_session_request_that_acts_without_the_csrf_token_is_refused_naming_csrf(workflow_id: str) -> None:
    client, _, _ = signed_in("operator")
    refused = act(client, workflow_id)
    assert refused.status_code == 403
    assert refused.json()["error"] == "permission_denied" and "CSRF" in refused.json()["message"]
    wrong = act(client, workflow_id, HTTP_X_CSRFTOKEN="x" * 64)
    assert wrong.status_code == 403 and "CSRF" in wrong.json()["message"]


def test_login_answers_the_user_and_roles_and_sets_safe_cookies() -> None:
    user, client = person("approver"), browser()
    response = login(client, user.username, csrf=csrf_of(client))
    assert response.status_code == 200
    body = response.json()
    assert body["authenticated"] and body["username"] == user.username and body["roles"] == ["approver"]
    session = response.cookies["sessionid"]
    assert session["httponly"] and session["samesite"] == "Lax"
    assert response.cookies["csrftoken"]["samesite"] == "Lax"


def test_login_needs_the_csrf_token_itself() -> None:
    user, client = person(), browser()
    csrf_of(client)
    refused = login(client, user.username)
    assert refused.status_code == 403 and "CSRF" in refused.json()["message"]


@pytest.mark.parametrize("who", ["wrong password", "unknown user", "inactive user"])
def test_wrong_credentials_get_one_answer_that_does_not_say_which(who: str) -> None:
    user, client = person(), browser()
    if who == "inactive user":
        user.is_active = False
        user.save()
    username = "nobody-" + uuid.uuid4().hex if who == "unknown user" else user.username
    response = login(client, username, "wrong" if who == "wrong password" else PASSWORD, csrf_of(client))
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_credentials",
        "message": "Unable to log in with this username and password.",
        "details": {},
    }


def test_a_login_body_without_its_fields_names_them() -> None:
    client = browser()
    response = login(client, "", "", csrf_of(client))
    assert response.status_code == 400 and set(response.json()["details"]) == {"username", "password"}


def test_login_attempts_are_limited_per_ip_and_per_username(low_limits: Any) -> None:
    user, other = person(), person()
    guesser = browser()
    csrf = csrf_of(guesser)
    assert [login(guesser, user.username, "bad", csrf).status_code for _ in range(3)] == [400, 400, 400]
    throttled = login(guesser, other.username, PASSWORD, csrf)  # the same address, another account
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    elsewhere = browser()  # another address, the guessed account: its own limit is spent too
    assert login(elsewhere, user.username, PASSWORD, csrf_of(elsewhere)).status_code == 429
    fresh = browser()
    assert login(fresh, other.username, PASSWORD, csrf_of(fresh)).status_code == 200


def test_logout_ends_the_session_and_needs_the_csrf_token() -> None:
    client, csrf, _ = signed_in()
    refused = checked(client.post("/api/v1/auth/logout"), "POST", "/api/v1/auth/logout")
    assert refused.status_code == 403 and "CSRF" in refused.json()["message"]
    done = checked(client.post("/api/v1/auth/logout", HTTP_X_CSRFTOKEN=csrf), "POST", "/api/v1/auth/logout")
    assert done.status_code == 204
    assert client.get(READ).status_code == 401
    assert client.get("/api/v1/auth/session").json()["authenticated"] is False


def test_the_session_route_is_open_and_says_no_one_is_signed_in() -> None:
    body = checked(APIClient().get("/api/v1/auth/session"), "GET", "/api/v1/auth/session").json()
    assert body["authenticated"] is False and body["username"] is None and body["roles"] == []
    assert body["csrfToken"]


def test_a_token_client_sees_itself_in_the_session_route() -> None:
    user = person("viewer")
    body = with_header(f"Token {tokens.issue(user, 'ci')[1]}").get("/api/v1/auth/session").json()
    assert body["authenticated"] and body["username"] == user.username and body["roles"] == ["viewer"]


def test_session_cookies_are_secure_in_production_by_default() -> None:
    code = "from workflow_engine import settings as s; print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE)"
    env = {**os.environ, "WORKFLOW_PROFILE": "production", "SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "a"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["True", "True"], done.stderr


# --- the api_token command ---------------------------------------------------------------------------------


def command(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("api_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_creates_a_token_printing_its_key_once_lists_and_revokes_it() -> None:
    user = person("viewer")
    key, note = command("create", user.username, "--name", "grafana", "--expires", "30d")
    key = key.strip()
    assert "not shown again" in note
    token = ApiToken.objects.get(user=user, name="grafana")
    assert token.expires_at is not None
    assert timedelta(days=29, hours=23) < token.expires_at - timezone.now() <= timedelta(days=30)
    assert with_header(f"Bearer {key}").get(READ).status_code == 200
    listing, _ = command("list", user.username)
    assert "grafana" in listing and token.prefix in listing and "live" in listing and key not in listing
    assert command("revoke", "grafana", "--user", user.username)[0].startswith(f"revoked token {token.pk}")
    assert_401(with_header(f"Bearer {key}").get(READ), "revoked")
    assert "revoked" in command("list", user.username)[0]
    with pytest.raises(CommandError, match="revoked already"):
        command("revoke", str(token.pk))


def test_the_command_revokes_by_id_and_refuses_an_ambiguous_name() -> None:
    first, second = person(), person()
    one, _ = tokens.issue(first, "shared")
    tokens.issue(second, "shared")
    with pytest.raises(CommandError, match="several live tokens are named 'shared'"):
        command("revoke", "shared")
    command("revoke", str(one.pk))
    assert ApiToken.objects.get(pk=one.pk).revoked


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("create", "no-such-user", "--name", "x"), "no user 'no-such-user'"),
        (("create", "{user}", "--name", "x", "--expires", "30 days"), "not a lifetime"),
        (("create", "{user}", "--name", "x", "--expires", "0d"), "not a lifetime"),
        (("create", "{user}", "--name", "  "), "A name of 1 to 100 characters"),
        (("revoke", "99999999999999999999"), "no live token"),
        (("revoke", "nothing-by-this-name"), "no live token"),
    ],
)
def test_the_command_explains_bad_input(args: tuple[str, ...], problem: str) -> None:
    user = person()
    with pytest.raises(CommandError, match=problem):
        command(*(a.replace("{user}", user.username) for a in args))


# --- the admin ---------------------------------------------------------------------------------------------


def staff_admin() -> Client:
    """A staff user with the admin role (not a superuser): the role's permissions must be enough."""
    user = person("admin")
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def test_the_admin_creates_a_token_showing_its_key_once_and_revokes_it() -> None:
    admin, owner = staff_admin(), person("viewer")
    created = admin.post(
        "/admin/accounts/apitoken/add/",
        {"name": "from-admin", "user": owner.pk, "expires_at_0": "", "expires_at_1": ""},
        follow=True,
    )
    assert created.status_code == 200
    shown = [str(m) for m in created.context["messages"]]
    token = ApiToken.objects.get(user=owner, name="from-admin")
    key = next(m for m in shown if "copy it now" in m).split(": ")[1].split(" ")[0]
    assert tokens.hash_key(key) == token.key_hash
    assert with_header(f"Bearer {key}").get(READ).status_code == 200
    page = admin.get(f"/admin/accounts/apitoken/{token.pk}/change/").content.decode()
    assert key not in page and token.prefix in page  # never shown again
    revoked = admin.post(
        "/admin/accounts/apitoken/",
        {"action": "revoke_tokens", "_selected_action": [token.pk]},
        follow=True,
    )
    assert revoked.status_code == 200
    assert ApiToken.objects.get(pk=token.pk).revoked
    assert_401(with_header(f"Bearer {key}").get(READ), "revoked")


def test_the_admin_refuses_a_second_live_token_of_the_same_name() -> None:
    admin, owner = staff_admin(), person()
    tokens.issue(owner, "dup")
    page = admin.post("/admin/accounts/apitoken/add/", {"name": "dup", "user": owner.pk})
    assert page.status_code == 200 and ApiToken.objects.filter(user=owner, name="dup").count() == 1


# --- the keys of before: DRF's authtoken --------------------------------------------------------------------


def test_drf_keys_keep_working_after_the_migration_moves_them_to_hashed_tokens() -> None:
    user, key = person("viewer"), tokens.new_key()
    with connection.cursor() as cursor:  # a row of before the migration (SQL: no signal mirrors it)
        cursor.execute(
            "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, now() - interval '1 day', %s)",
            [key, user.pk],
        )
    assert with_header(f"Token {key}").get(READ).status_code == 200  # found in authtoken_token
    loader = MigrationLoader(connection)
    state = loader.project_state([("accounts", "0001_api_tokens"), *loader.graph.leaf_nodes("authtoken")])
    migration = importlib.import_module("apps.accounts.migrations.0002_import_drf_tokens")
    migration.import_drf_tokens(state.apps, connection.schema_editor())
    assert not Token.objects.filter(user=user).exists()  # the plaintext key is gone
    moved = ApiToken.objects.get(user=user)
    assert moved.name == f"drf-token-{key[:6]}" and moved.key_hash == tokens.hash_key(key)
    assert timezone.now() - moved.created_at > timedelta(hours=23)  # when the key was made
    assert with_header(f"Token {key}").get(READ).status_code == 200
    assert with_header(f"Bearer {key}").get(READ).status_code == 200
    assert ApiToken.objects.get(pk=moved.pk).last_used_at is not None


def test_a_drf_key_issued_after_the_migration_is_a_named_token_until_its_row_is_deleted() -> None:
    """``manage.py user_role`` (and older scripts) still make DRF tokens: each is mirrored, so it is found
    by the one lookup, and deleting it (e.g. in the admin's DRF token page) ends it, as before."""
    drf = Token.objects.create(user=person("viewer"))
    mirrored = tokens.find(drf.key)
    assert mirrored is not None and mirrored.name == f"drf-token-{drf.key[:6]}"
    client = with_header(f"Bearer {drf.key}")
    assert client.get(READ).status_code == 200
    drf.delete()
    assert_401(client.get(READ), "revoked")


def test_a_token_costs_one_query_to_authenticate(django_assert_num_queries: Any) -> None:
    token, key = tokens.issue(person("viewer"), "ci")
    request = APIRequestFactory().get(READ, HTTP_AUTHORIZATION=f"Bearer {key}")
    tokens.touch(token, timezone.now())  # used a moment ago: no write this time
    with django_assert_num_queries(1):
        user, found = ApiTokenAuthentication().authenticate(Request(request))  # type: ignore[misc]
    assert user == token.user and found == token


def test_the_admin_role_may_manage_api_tokens() -> None:
    held = set(Group.objects.get(name="admin").permissions.values_list("codename", flat=True))
    assert {"add_apitoken", "change_apitoken", "delete_apitoken", "view_apitoken"} <= held


# --- bootstrap ---------------------------------------------------------------------------------------------


def test_bootstrap_prints_the_same_working_key_each_run_and_replaces_a_revoked_one(
    settings: Any, tmp_path: Any
) -> None:
    settings.DATA_DIR = tmp_path
    username = f"boot-{uuid.uuid4().hex[:8]}"

    def run() -> str:
        out = StringIO()
        call_command(
            "bootstrap", "--username", username, "--no-examples", "--quiet", stdout=out, stderr=StringIO()
        )
        return dict(line.split("=", 1) for line in out.getvalue().split())["API_TOKEN"]

    first = run()
    assert run() == first and (tmp_path / "api-token").stat().st_mode & 0o777 == 0o600
    assert with_header(f"Bearer {first}").get(READ).status_code == 200
    token = tokens.find(first)
    assert token is not None and token.name == "bootstrap"
    tokens.revoke(token.pk)
    second = run()
    assert second != first and with_header(f"Bearer {second}").get(READ).status_code == 200
