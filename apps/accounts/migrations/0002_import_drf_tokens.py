"""DRF's ``authtoken`` keys become named API tokens (``drf-token-<prefix>``), and the admin role manages API tokens.

Each key's SHA-256 is stored, so the key keeps working; the plaintext ``authtoken_token`` row is then
deleted: a copy of the database no longer holds usable keys. Not reversible in that direction (the keys are
gone); going back leaves the named tokens as they are.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import migrations

NAME = "drf-token"
ACTIONS = ("add", "change", "delete", "view")


def import_drf_tokens(apps: Any, schema_editor: Any) -> None:
    drf_token = apps.get_model("authtoken", "Token")
    api_token = apps.get_model("accounts", "ApiToken")
    db = schema_editor.connection.alias
    for old in drf_token.objects.using(db).all().iterator():
        digest = hashlib.sha256(old.key.encode()).hexdigest()
        if not api_token.objects.using(db).filter(key_hash=digest).exists():
            created = api_token.objects.using(db).create(
                user_id=old.user_id, name=f"{NAME}-{old.key[:6]}", key_hash=digest, prefix=old.key[:6]
            )
            # auto_now_add stamped the migration's time: keep when the key was really made
            api_token.objects.using(db).filter(pk=created.pk).update(created_at=old.created)
        old.delete()


def admins_manage_tokens(apps: Any, schema_editor: Any) -> None:
    """The admin role (``workflows`` 0008) gets the token permissions; created here, as 0008 does, because
    ``post_migrate`` has not run yet on a fresh database."""
    db = schema_editor.connection.alias
    content_type, _ = (
        apps.get_model("contenttypes", "ContentType")
        .objects.using(db)
        .get_or_create(app_label="accounts", model="apitoken")
    )
    permission = apps.get_model("auth", "Permission")
    held = [
        permission.objects.using(db).get_or_create(
            content_type=content_type, codename=f"{action}_apitoken", defaults={"name": f"Can {action} API token"}
        )[0]
        for action in ACTIONS
    ]
    admin = apps.get_model("auth", "Group").objects.using(db).filter(name="admin").first()
    if admin is not None:
        admin.permissions.add(*held)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_api_tokens"),
        ("authtoken", "__latest__"),
        ("workflows", "0008_role_groups"),
        ("contenttypes", "__latest__"),
        ("auth", "__latest__"),
    ]

    operations = [
        migrations.RunPython(import_drf_tokens, migrations.RunPython.noop),
        migrations.RunPython(admins_manage_tokens, migrations.RunPython.noop),
    ]
