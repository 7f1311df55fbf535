"""The web console's sign-in: ``GET /api/v1/auth/session``, ``POST /api/v1/auth/login``, ``POST .../logout``;
and the admins' API tokens: ``GET|POST /api/v1/auth/tokens``, ``DELETE /api/v1/auth/tokens/{id}``.

A browser first asks for the session: the answer carries the CSRF token (also set as the ``csrftoken``
cookie), which every unsafe request then sends back in ``X-CSRFToken``, login included (so that another site
cannot sign a browser into an account of its choosing). The session cookie is HttpOnly and SameSite=Lax, and
Secure in production (docs/configuration.md, "Sessions").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import auth
from django.middleware.csrf import get_token
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers as s
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import tokens
from apps.accounts.authentication import CsrfCheck
from apps.accounts.models import ApiToken
from workflow_engine import roles, times
from workflow_engine.api import throttles
from workflow_engine.api.base import ApiView, JSONBodyParser, Query, who
from workflow_engine.api.schema import errors
from workflow_engine.errors import EngineError, NotFound

MAX_PASSWORD = 4096  # Django hashes what it is given: bound the work a request can ask for


class InvalidCredentials(EngineError):
    """Unable to log in with this username and password."""

    code = "invalid_credentials"
    status = 400


class LoginSerializer(s.Serializer):
    username = s.CharField(max_length=150)
    password = s.CharField(max_length=MAX_PASSWORD, trim_whitespace=False)


class SessionSerializer(s.Serializer):
    authenticated = s.BooleanField(help_text="Whether the request carried a valid session or token.")
    username = s.CharField(allow_null=True, help_text="Who is signed in; null when no one is.")
    roles = s.ListField(
        child=s.CharField(), help_text="viewer, operator, approver, admin (docs/security.md)."
    )
    csrfToken = s.CharField(  # the API's JSON is camelCase
        help_text="Send back as the X-CSRFToken header on every POST, PUT, PATCH and DELETE of a session."
    )


SESSION_EXAMPLE = OpenApiExample(
    "signed in",
    value={"authenticated": True, "username": "ada", "roles": ["operator"], "csrfToken": "Xq3…"},
    response_only=True,
)


def session_of(request: Request, user: Any) -> dict[str, Any]:
    signed_in = user is not None and user.is_authenticated
    return {
        "authenticated": signed_in,
        "username": user.get_username() if signed_in else None,
        "roles": roles.roles_of(user),
        "csrfToken": get_token(request._request),  # also sets the csrftoken cookie on the response
    }


class _AuthView(APIView):
    parser_classes = [JSONBodyParser]
    permission_classes = [AllowAny]  # open routes: they are how one signs in


class SessionView(_AuthView):
    @extend_schema(
        tags=["auth"],
        summary="Who is signed in, and the CSRF token",
        description="Open. Sets the `csrftoken` cookie; its value is also `csrfToken` in the body.",
        responses={200: SessionSerializer, **errors(401)},
        examples=[SESSION_EXAMPLE],
    )
    def get(self, request: Request) -> Response:
        return Response(session_of(request, request.user))


class LoginView(_AuthView):
    @extend_schema(
        tags=["auth"],
        summary="Sign in with a username and password (starts a session)",
        description=(
            "Needs the CSRF token of `GET /api/v1/auth/session` in `X-CSRFToken` (403 naming CSRF "
            "otherwise). Sets the session cookie and a new CSRF token. Attempts are limited per client "
            "address and per "
            "username (429). A wrong username or password is one answer: 400 `invalid_credentials`."
        ),
        request=LoginSerializer,
        responses={200: SessionSerializer, **errors(400, 403, 429)},
        examples=[
            OpenApiExample("sign in", value={"username": "ada", "password": "…"}, request_only=True),
            SESSION_EXAMPLE,
        ],
    )
    def post(self, request: Request) -> Response:
        CsrfCheck().check(request)
        given = LoginSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        username, password = given.validated_data["username"], given.validated_data["password"]
        throttles.check_login_attempt(request, username)
        user = auth.authenticate(request._request, username=username, password=password)
        if user is None:  # unknown user, wrong password or inactive account: the same answer
            raise InvalidCredentials()
        auth.login(request._request, user)
        return Response(session_of(request, user))


class LogoutView(_AuthView):
    @extend_schema(
        tags=["auth"],
        summary="Sign out (ends the session)",
        description="Needs the CSRF token in `X-CSRFToken`. Signing out without a session does nothing.",
        request=None,
        responses={204: OpenApiResponse(description="Signed out."), **errors(403, 429)},
    )
    def post(self, request: Request) -> Response:
        CsrfCheck().check(request)
        auth.logout(request._request)
        return Response(status=204)


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """The OpenAPI description of ``ApiTokenAuthentication``: one token, under either of two schemes (OR, so
    two requirements). Here, not beside the class: DRF loads authentication classes while ``rest_framework.
    views`` is being imported, so that module cannot import drf_spectacular's, which imports the views."""

    target_class = "apps.accounts.authentication.ApiTokenAuthentication"
    name = ["bearerAuth", "tokenAuth"]

    def get_security_requirement(self, auto_schema: AutoSchema) -> list[dict[str, list[Any]]]:
        return [{"bearerAuth": []}, {"tokenAuth": []}]

    def get_security_definition(self, auto_schema: AutoSchema) -> list[dict[str, Any]]:
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "description": "`Authorization: Bearer <key>`: an API token (manage.py api_token, admin).",
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "`Authorization: Token <key>`: the same API tokens, the original's scheme.",
            },
        ]


# --- API tokens (admins) ------------------------------------------------------------------------------------

MAX_TOKEN_ID = 2**63 - 1  # a bigint: a larger id cannot exist, and PostgreSQL would refuse to compare it


class Time(s.DateTimeField):
    """A time as every response writes it (``workflow_engine.times.iso``)."""

    def to_representation(self, value: datetime) -> str:
        return times.iso(value) or ""  # DRF renders a null time as null without calling this


class TokenSerializer(s.Serializer):
    id = s.IntegerField(help_text="Revoke with DELETE /api/v1/auth/tokens/{id}.")
    name = s.CharField(help_text="What the token is for; unique among its user's live tokens.")
    username = s.CharField(source="user.username", help_text="Whose token it is: it acts with their roles.")
    prefix = s.CharField(help_text="The key's first 6 characters, to tell tokens apart; never the key.")
    createdAt = Time(source="created_at")
    expiresAt = Time(source="expires_at", allow_null=True, help_text="null: never expires.")
    lastUsedAt = Time(source="last_used_at", allow_null=True, help_text="Written at most once a minute.")
    expired = s.SerializerMethodField(help_text="Expired but not revoked: refused, and its name stays taken.")

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_expired(self, token: ApiToken) -> bool:
        return token.expired(self.context["now"])


class NewTokenSerializer(TokenSerializer):
    token = s.SerializerMethodField(help_text="The key, shown this once: only its SHA-256 is stored.")

    @extend_schema_field(OpenApiTypes.STR)
    def get_token(self, token: ApiToken) -> str:
        return str(self.context["key"])


class TokenListSerializer(s.Serializer):
    tokens = TokenSerializer(many=True)
    count = s.IntegerField()


class Text(s.CharField):
    """A string, not a number DRF would turn into one (``{"name": 7}`` is a mistake, not the name "7")."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class CreateTokenSerializer(s.Serializer):
    name = Text(max_length=tokens.MAX_NAME, help_text="What the token is for, e.g. ci or grafana.")
    username = Text(
        max_length=tokens.MAX_USERNAME, required=False, help_text="Whose token; default: the caller."
    )
    expires = Text(
        max_length=20,
        required=False,
        allow_null=True,
        help_text="A lifetime: 30d, 12h, 90m, 2w or 3600s (at most 3650d); null or absent: never expires.",
    )


class TokensQuery(Query):
    username = s.CharField(
        required=False,
        max_length=tokens.MAX_USERNAME,
        default=None,
        allow_null=True,
        help_text="Only theirs.",
    )


TOKEN_EXAMPLE = {
    "id": 7,
    "name": "ci",
    "username": "ada",
    "prefix": "3f9a1c",
    "createdAt": "2026-05-01T10:00:00.000Z",
    "expiresAt": "2026-05-31T10:00:00.000Z",
    "lastUsedAt": None,
    "expired": False,
}


class TokensView(ApiView):
    """Admins only, reads too: a list of tokens tells who can call the API and when they last did."""

    permissions = {"GET": (roles.VIEW_TOKENS,), "POST": (roles.ADD_TOKENS,)}

    @extend_schema(
        tags=["auth"],
        summary="API tokens that are not revoked (admins)",
        description=(
            "Live and expired tokens (revoke an expired one to reuse its name), by user then age. Never "
            "the key or its hash. `?username=` lists one user's."
        ),
        parameters=[TokensQuery],
        responses={200: TokenListSerializer, **errors(400, 401)},
        examples=[
            OpenApiExample("tokens", value={"tokens": [TOKEN_EXAMPLE], "count": 1}, response_only=True)
        ],
    )
    def get(self, request: Request) -> Response:
        query = TokensQuery.parse(request.query_params)
        found = list(tokens.live(query["username"]))
        listing = {"tokens": found, "count": len(found)}
        return Response(TokenListSerializer(listing, context={"now": timezone.now()}).data)

    @extend_schema(
        tags=["auth"],
        summary="Create an API token (admins); its key is in the answer, once",
        description=(
            "For `username` (default: the caller). 400 naming the field: a blank or too long `name`, an "
            "unknown `username`, a bad `expires`. 409 when that user has a live token of that `name`."
        ),
        request=CreateTokenSerializer,
        responses={201: NewTokenSerializer, **errors(400, 401, 409, 413, 415)},
        examples=[
            OpenApiExample(
                "for ci", value={"name": "ci", "username": "ada", "expires": "30d"}, request_only=True
            ),
            OpenApiExample("created", value={**TOKEN_EXAMPLE, "token": "3f9a1c…"}, response_only=True),
        ],
    )
    def post(self, request: Request) -> Response:
        given = CreateTokenSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data, now = given.validated_data, timezone.now()
        token, key = tokens.issue_for(
            data.get("username", who(request)), data["name"], data.get("expires"), now
        )
        return Response(NewTokenSerializer(token, context={"now": now, "key": key}).data, status=201)


class TokenView(ApiView):
    permissions = {"DELETE": (roles.REVOKE_TOKENS,)}

    @extend_schema(
        tags=["auth"],
        summary="Revoke an API token (admins)",
        description="It stops authenticating at once. 404 for an unknown or already revoked token.",
        parameters=[OpenApiParameter("token_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses={204: OpenApiResponse(description="Revoked."), **errors(401, 404)},
    )
    def delete(self, request: Request, token_id: str) -> Response:
        number = int(token_id) if token_id.isascii() and token_id.isdigit() and len(token_id) < 20 else None
        if number is None or number > MAX_TOKEN_ID or not tokens.revoke(number):
            raise NotFound(f"No live API token {token_id[:40]!r}.", details={"id": [token_id[:40]]})
        return Response(status=204)
