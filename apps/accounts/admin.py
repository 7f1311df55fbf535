"""API tokens in the Django admin: create one (its key is shown once, on the page after saving), rename it,
change its expiry, revoke it. The key is never stored, so it can never be shown again."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from apps.accounts import tokens
from apps.accounts.models import ApiToken


class ApiTokenForm(forms.ModelForm):
    def clean(self) -> dict[str, Any]:
        """A live name is unique per user: checked here, since the database constraint also involves
        ``revoked_at``, which is not on the form (Django skips such constraints)."""
        data: dict[str, Any] = super().clean() or {}
        user_id = data["user"].pk if data.get("user") else self.instance.user_id
        name = data.get("name")
        if self.instance.revoked_at is None and user_id and name:
            taken = ApiToken.objects.filter(user_id=user_id, name=name, revoked_at=None)
            if taken.exclude(pk=self.instance.pk).exists():
                self.add_error("name", "This user already has a live token with this name.")
        return data


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = ("name", "user", "prefix", "state", "created_at", "expires_at", "last_used_at")
    list_filter = ("revoked_at", "expires_at")
    search_fields = ("name", "user__username", "prefix")
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    autocomplete_fields = ("user",)
    actions = ("revoke_tokens",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # a token keeps its owner: giving a key to someone else would be a new token
        return (*self.readonly_fields, "user") if obj is not None else self.readonly_fields

    @admin.display(description="state")
    def state(self, token: ApiToken) -> str:
        if token.revoked:
            return "revoked"
        return "expired" if token.expired(timezone.now()) else "live"

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        key = tokens.new_key()
        obj.key_hash, obj.prefix = tokens.hash_key(key), key[: tokens.PREFIX_LENGTH]
        super().save_model(request, obj, form, change)
        messages.warning(
            request,
            f"The key of token {obj.name!r}: {key} — copy it now: it is stored hashed and not shown again.",
        )

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = sum(tokens.revoke(pk) for pk in queryset.values_list("pk", flat=True))
        self.message_user(request, f"Revoked {revoked} token(s).")
