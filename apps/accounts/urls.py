"""``/api/v1/auth/``: the console's sign-in routes (``api.py``), open by design."""

from __future__ import annotations

from django.urls import path

from apps.accounts import api

urlpatterns = [
    path("session", api.SessionView.as_view(), name="auth-session"),
    path("login", api.LoginView.as_view(), name="auth-login"),
    path("logout", api.LogoutView.as_view(), name="auth-logout"),
]
