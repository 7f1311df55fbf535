"""The role groups (workflow_engine/roles.py): viewer, operator, approver, admin, with their permissions.

Permissions are created here rather than left to ``post_migrate`` (which runs after every migration), so that
the groups can hold them on a fresh database. The tables below are a frozen copy of ``roles.py`` at this
migration; ``tests/integration/test_roles.py`` checks that the database still matches ``roles.py``.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

# (app_label, model, codename): name
PERMISSIONS = {
    (
        "workflows",
        "workflow",
        "read_api",
    ): "Can read workflows, executions, schedules and the cluster through the API",
    ("workflows", "workflow", "manage_workflows"): "Can create, edit and delete workflow definitions",
    (
        "workflows",
        "workflow",
        "manage_schedules",
    ): "Can create, edit, delete, pause, resume, stop and backfill schedules",
    (
        "workflows",
        "execution",
        "operate_execution",
    ): "Can start, cancel, pause, resume, retry, rerun and signal executions",
    ("workflows", "execution", "approve_execution"): "Can approve or reject an approval node of an execution",
    # the admin role also manages users and their API tokens in the Django admin (a staff account)
    **{
        ("auth", model, f"{action}_{model}"): f"Can {action} {model}"
        for model in ("user", "group")
        for action in ("add", "change", "delete", "view")
    },
    **{
        ("authtoken", "tokenproxy", f"{action}_tokenproxy"): f"Can {action} token"
        for action in ("add", "change", "delete", "view")
    },
}

ENGINE = ["read_api", "operate_execution", "approve_execution", "manage_workflows", "manage_schedules"]
ROLES = {
    "viewer": ["read_api"],
    "operator": ["read_api", "operate_execution"],
    "approver": ["read_api", "approve_execution"],
    "admin": [*ENGINE, *(codename for (app, _, codename) in PERMISSIONS if app != "workflows")],
}


def create_groups(apps: Any, schema_editor: Any) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    permission = apps.get_model("auth", "Permission")
    group = apps.get_model("auth", "Group")
    db = schema_editor.connection.alias
    created = {}
    for (app_label, model, codename), name in PERMISSIONS.items():
        ct, _ = content_type.objects.using(db).get_or_create(app_label=app_label, model=model)
        created[codename], _ = permission.objects.using(db).get_or_create(
            content_type=ct, codename=codename, defaults={"name": name}
        )
    for role, codenames in ROLES.items():
        role_group, _ = group.objects.using(db).get_or_create(name=role)
        role_group.permissions.add(*(created[c] for c in codenames))


def remove_groups(apps: Any, schema_editor: Any) -> None:
    apps.get_model("auth", "Group").objects.using(schema_editor.connection.alias).filter(
        name__in=list(ROLES)
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0007_roles_audit_and_request_hash"),
        ("auth", "__latest__"),
        ("contenttypes", "__latest__"),
        ("authtoken", "__latest__"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
