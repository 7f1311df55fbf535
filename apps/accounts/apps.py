from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Who is calling: named API tokens (hashed), browser sessions with CSRF, their login API."""

    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts and API tokens"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.apps import apps
        from django.db.models.signals import post_delete, post_save

        from apps.accounts import tokens

        # keys DRF's authtoken still makes become named tokens (one lookup for all), and die with their row
        if apps.is_installed("rest_framework.authtoken"):
            post_save.connect(tokens.mirror_drf_token, sender="authtoken.Token", dispatch_uid="accounts-drf")
            post_delete.connect(
                tokens.revoke_drf_token, sender="authtoken.Token", dispatch_uid="accounts-drf"
            )
