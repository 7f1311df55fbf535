"""``manage.py user_role USERNAME ROLE``: give a user one role (viewer, operator, approver, admin) and print
its API token. Creates the user (without a password: API tokens only) when it does not exist. ``none``
removes every role. Idempotent.

An ``admin`` here is a member of the admin group, not a superuser: it may do everything in the API; to use
the Django admin it must also be staff (``--staff``).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

from workflow_engine.roles import Role

NONE = "none"


class Command(BaseCommand):
    help = "Give a user a role (viewer, operator, approver, admin, or none) and print its API token."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("role", choices=[*(r.value for r in Role), NONE])
        parser.add_argument("--staff", action="store_true", help="also let the user sign in to /admin/")

    def handle(self, *args: Any, **options: Any) -> None:
        username, role = options["username"], options["role"]
        if not username.strip() or len(username) > 150:
            raise CommandError("USERNAME must be 1 to 150 characters.")
        user, created = get_user_model().objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()
        user.is_staff = user.is_staff or options["staff"]
        user.save()
        user.groups.remove(*Group.objects.filter(name__in=[r.value for r in Role]))
        if role != NONE:
            user.groups.add(Group.objects.get(name=role))
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(f"USER={username}\nROLE={role}\nAPI_TOKEN={token.key}")
