"""``manage.py bootstrap``: an admin user with an API token, and the example workflows. Idempotent.

Used by ./run. The password comes from ``WORKFLOW_ADMIN_PASSWORD`` or is generated once and kept in
``<data dir>/admin-password``. The API token is the admin's named token ``bootstrap``
(``apps.accounts``): only its hash is in the database, so its key is kept beside the password, in
``<data dir>/api-token``, and every run prints the same key (a revoked or expired one is replaced by a new
one). The admin is a superuser (the admin role); give other people a role with ``manage.py user_role`` and
tokens with ``manage.py api_token``.
"""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils import timezone

from apps.accounts import tokens
from apps.workflows.models import Workflow
from apps.workflows.services import definitions
from workflow_engine.env import env_secret
from workflow_engine.errors import EngineError
from workflow_engine.tunables import engine_settings

EXAMPLES = Path(settings.BASE_DIR) / "examples"
TOKEN_NAME = "bootstrap"


class Command(BaseCommand):
    help = "Create the admin user and token, and load the example workflows."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--no-examples", action="store_true")
        parser.add_argument("--quiet", action="store_true", help="print only KEY=value lines")

    def handle(self, *args: Any, **options: Any) -> None:
        password = _password()
        user = _admin(options["username"], password)
        key = _api_token(user)
        loaded = [] if options["no_examples"] else load_examples(by=user.get_username())
        self.stdout.write(f"ADMIN_USER={user.get_username()}\nADMIN_PASSWORD={password}\nAPI_TOKEN={key}")
        if not options["quiet"]:
            self.stderr.write(f"example workflows: {', '.join(loaded) or 'none'}")


def _password() -> str:
    given = env_secret("WORKFLOW_ADMIN_PASSWORD")
    if given:
        return given
    path = Path(settings.DATA_DIR) / "admin-password"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return password


def _api_token(user: Any) -> str:
    """The key of ``user``'s live ``bootstrap`` token, kept in ``<data dir>/api-token``. A key the database
    does not know (a new database) is registered again; one revoked or expired is replaced."""
    path = Path(settings.DATA_DIR) / "api-token"
    kept = path.read_text().strip() if path.exists() else ""
    found = tokens.find(kept) if kept else None
    if found is not None and found.user_id == user.pk and tokens.usable(found, timezone.now()):
        return kept
    tokens.revoke_named(user, TOKEN_NAME)
    _, key = tokens.issue(user, TOKEN_NAME, key=kept if kept and found is None else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)  # private before the key is in it
    path.chmod(0o600)
    path.write_text(key + "\n")
    return key


def _admin(username: str, password: str) -> Any:
    user, _ = get_user_model().objects.get_or_create(
        username=username, defaults={"is_staff": True, "is_superuser": True}
    )
    if not user.check_password(password):
        user.set_password(password)
        user.save()
    return user


def load_examples(by: str = "") -> list[str]:
    """Create (or update) each ``examples/*.json`` workflow; copy ``examples/data`` into the file root."""
    files_root = engine_settings.file_roots[0]
    files_root.mkdir(parents=True, exist_ok=True)
    for data in sorted((EXAMPLES / "data").glob("*")):
        shutil.copyfile(data, files_root / data.name)
    loaded = []
    for path in sorted(EXAMPLES.glob("*.json")):
        body = json.loads(path.read_text())
        try:
            if Workflow.objects.filter(pk=body["id"]).exists():
                definitions.update(body["id"], body, by=by)
            else:
                definitions.create(body, by=by)
        except EngineError as exc:
            raise SystemExit(f"example {path.name} is invalid: {exc.message} {exc.details}") from exc
        loaded.append(body["id"])
    return loaded
