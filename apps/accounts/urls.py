"""``/api/v1/auth/``: the console's sign-in routes (open by design) and the admins' API tokens (api.py)."""

from __future__ import annotations

from django.urls import path

from apps.accounts import api

urlpatterns = [
    path("session", api.SessionView.as_view(), name="auth-session"),
    path("login", api.LoginView.as_view(), name="auth-login"),
    path("logout", api.LogoutView.as_view(), name="auth-logout"),
    path("tokens", api.TokensView.as_view(), name="auth-tokens"),
    path("tokens/<str:token_id>", api.TokenView.as_view(), name="auth-token"),
]
