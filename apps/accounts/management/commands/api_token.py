"""``manage.py api_token``: create, list and revoke named API tokens.

manage.py api_token create USER --name NAME [--expires 30d]   prints the key, once
manage.py api_token list [USER]
manage.py api_token revoke ID|NAME [--user USER]
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet
from django.utils import timezone

from apps.accounts import tokens
from apps.accounts.models import ApiToken
from workflow_engine.errors import EngineError


class Command(BaseCommand):
    help = "Create, list and revoke API tokens (the key is printed once, at creation)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="a new token; prints its key once")
        create.add_argument("user")
        create.add_argument(
            "--name", required=True, help="what the token is for, unique among USER's live ones"
        )
        create.add_argument("--expires", help="lifetime: 30d, 12h, 90m, 2w, 3600s (default: never)")
        listing = actions.add_parser("list", help="tokens (all users' or USER's), without keys")
        listing.add_argument("user", nargs="?")
        revoke = actions.add_parser("revoke", help="revoke a token by id, or by name")
        revoke.add_argument("token", help="the token's id, or its name")
        revoke.add_argument("--user", help="whose token NAME is, when several users have one by that name")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"do_{options['action']}")(options)
        except EngineError as exc:
            raise CommandError(exc.message) from None

    def do_create(self, options: dict[str, Any]) -> None:
        # the same checks as POST /api/v1/auth/tokens
        token, key = tokens.issue_for(options["user"], options["name"], options["expires"], timezone.now())
        self.stderr.write(
            f"token {token.pk} {token.name!r} of {token.user.get_username()}; the key is not shown again:"
        )
        self.stdout.write(key)

    def do_list(self, options: dict[str, Any]) -> None:
        found = ApiToken.objects.select_related("user").order_by("user__username", "created_at")
        if options["user"]:
            found = found.filter(user=_user(options["user"]))
        now = timezone.now()
        self.stdout.write("ID\tUSER\tNAME\tPREFIX\tSTATE\tCREATED\tEXPIRES\tLAST USED")
        for t in found:
            state = "revoked" if t.revoked else "expired" if t.expired(now) else "live"
            cells = (
                t.pk,
                t.user.get_username(),
                t.name,
                t.prefix,
                state,
                t.created_at,
                t.expires_at,
                t.last_used_at,
            )
            self.stdout.write("\t".join(_cell(c) for c in cells))

    def do_revoke(self, options: dict[str, Any]) -> None:
        token = _one(options["token"], options["user"])
        if not tokens.revoke(token.pk):
            raise CommandError(f"token {token.pk} {token.name!r} was revoked already")
        self.stdout.write(f"revoked token {token.pk} {token.name!r} of {token.user.get_username()}")


def _user(username: str) -> Any:
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise CommandError(f"no user {username!r}") from None


def _one(given: str, username: str | None) -> ApiToken:
    """The token named by id, else the live token of that name (of ``username``, when given)."""
    found: QuerySet[ApiToken] = ApiToken.objects.select_related("user")
    if given.isascii() and given.isdigit() and len(given) < 19 and found.filter(pk=int(given)).exists():
        return found.get(pk=int(given))
    found = found.filter(name=given, revoked_at=None)
    if username:
        found = found.filter(user=_user(username))
    matches = list(found[:10])
    if not matches:
        raise CommandError(f"no live token with id or name {given!r}")
    if len(matches) > 1:
        owners = ", ".join(f"{t.pk} ({t.user.get_username()})" for t in matches)
        raise CommandError(f"several live tokens are named {given!r}: {owners}; give an id or --user")
    return matches[0]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value)
