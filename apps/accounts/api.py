"""The web console's sign-in: ``GET /api/v1/auth/session``, ``POST /api/v1/auth/login``, ``POST .../logout``.

A browser first asks for the session: the answer carries the CSRF token (also set as the ``csrftoken``
cookie), which every unsafe request then sends back in ``X-CSRFToken``, login included (so that another site
cannot sign a browser into an account of its choosing). The session cookie is HttpOnly and SameSite=Lax, and
Secure in production (docs/configuration.md, "Sessions").
"""

from __future__ import annotations

from typing import Any

from django.contrib import auth
from django.middleware.csrf import get_token
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers as s
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.authentication import CsrfCheck
from workflow_engine import roles
from workflow_engine.api import throttles
from workflow_engine.api.base import JSONBodyParser
from workflow_engine.api.schema import errors
from workflow_engine.errors import EngineError

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
