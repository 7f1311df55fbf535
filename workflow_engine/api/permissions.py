"""Every API route checks the caller's role (``apps.workflows.roles``) before its handler runs.

A view declares, per HTTP method, the permissions any one of which lets a user in (``ApiView.permissions``).
Undeclared, a read (GET, HEAD, OPTIONS) needs ``roles.READ``, and anything else is for superusers only:
a new route that forgot to declare its permission is closed, not open (and the route x role test fails).
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from workflow_engine import roles

SUPERUSER_ONLY: tuple[str, ...] = ()

NO_ROLE = "Your account has no role; ask an admin to give it one (viewer, operator, approver or admin)."


def required(view: Any, method: str) -> tuple[str, ...]:
    """The permissions any one of which allows ``method`` on ``view``."""
    declared: dict[str, tuple[str, ...]] = getattr(view, "permissions", {})
    if method in declared:
        return declared[method]
    if method in SAFE_METHODS:
        return declared.get("GET", (roles.READ,))
    return SUPERUSER_ONLY


def denial(user: Any, needed: tuple[str, ...]) -> str:
    """Why ``user`` may not: it has no role, or which roles the action needs and which it has."""
    if not roles.has_any_role(user):
        return NO_ROLE
    order = [role.value for role in roles.Role]
    wanted = sorted({r for p in needed for r in roles.roles_holding(p)}, key=order.index)
    if not wanted:
        return "Only a superuser may do this."
    has = ", ".join(roles.roles_of(user)) or "none (only single permissions)"
    return (
        f"This needs the role {' or '.join(wanted)} (permission {' or '.join(needed)}); "
        f"your account's roles: {has}."
    )


def require(user: Any, needed: tuple[str, ...]) -> None:
    """Raise 403 unless ``user`` holds one of ``needed`` (a superuser holds every permission)."""
    if user.is_superuser or any(user.has_perm(p) for p in needed):
        return
    raise PermissionDenied(denial(user, needed))


class HasRole(BasePermission):
    """401 without credentials (DRF answers it when this returns False); 403 naming the role needed."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        require(user, required(view, request.method or "GET"))
        return True
