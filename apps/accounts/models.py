"""Named API tokens. Only a SHA-256 hash of each key is stored: the key is shown once, when it is created
(``tokens.issue``), and a copy of the database cannot be used to call the API."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q


class ApiToken(models.Model):
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'ci' or 'grafana'.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    # every request looks its token up by this hash (authentication.ApiTokenAuthentication): unique, indexed
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    # the key's first characters, to tell tokens apart in lists; too short to help a guess
    prefix = models.CharField(max_length=8, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    # written at most once a minute per token (tokens.touch), to keep the request path cheap
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API token"
        constraints = [
            # a name picks one live token of its user (``api_token revoke NAME``); revoked names may repeat
            models.UniqueConstraint(
                fields=["user", "name"], condition=Q(revoked_at=None), name="accounts_live_token_name"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now
