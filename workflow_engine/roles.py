"""Roles: who may do what (ARCHITECTURE.md §10). Declared once here; the API, the admin, the ``user_role``
command and docs/security.md follow this table.

A role is a Django group holding permissions (created by migration ``0008_role_groups``). A superuser counts
as an admin. A user may also hold a permission directly (``user.user_permissions``); every check is on the
permission, never on the group's name, so either way works. A user holding none of them has no role and is
refused everywhere under ``/api/``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

READ = "workflows.read_api"
OPERATE = "workflows.operate_execution"
APPROVE = "workflows.approve_execution"
MANAGE_WORKFLOWS = "workflows.manage_workflows"
MANAGE_SCHEDULES = "workflows.manage_schedules"
# API tokens (``/api/v1/auth/tokens``): Django's model permissions, given to the admin group by migration
# accounts 0002. A revocation sets ``revoked_at`` (rows are kept for their last use), hence "change".
VIEW_TOKENS = "accounts.view_apitoken"
ADD_TOKENS = "accounts.add_apitoken"
REVOKE_TOKENS = "accounts.change_apitoken"


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    APPROVER = "approver"
    ADMIN = "admin"


# each role's permissions; a role includes reading, and admin includes everything
ROLE_PERMISSIONS: dict[Role, tuple[str, ...]] = {
    Role.VIEWER: (READ,),
    Role.OPERATOR: (READ, OPERATE),
    Role.APPROVER: (READ, APPROVE),
    Role.ADMIN: (
        READ,
        OPERATE,
        APPROVE,
        MANAGE_WORKFLOWS,
        MANAGE_SCHEDULES,
        VIEW_TOKENS,
        ADD_TOKENS,
        REVOKE_TOKENS,
    ),
}

ALL_PERMISSIONS = ROLE_PERMISSIONS[Role.ADMIN]


def roles_of(user: Any) -> list[str]:
    """The user's roles, for messages and the API: a superuser is an admin; else its role groups."""
    if not (user and user.is_authenticated):
        return []
    if user.is_superuser:
        return [Role.ADMIN.value]
    names = set(user.groups.values_list("name", flat=True))
    return [role.value for role in Role if role.value in names]


def roles_holding(permission: str) -> list[str]:
    """The roles that hold ``permission``, least powerful first (for messages)."""
    return [role.value for role, perms in ROLE_PERMISSIONS.items() if permission in perms]


def has_any_role(user: Any) -> bool:
    return any(user.has_perm(p) for p in ALL_PERMISSIONS)
