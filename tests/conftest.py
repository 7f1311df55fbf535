"""Fixtures shared by every test: the real database, and a real running node for integration tests.

The database is the one in ``DATABASE_URL`` (./test starts an embedded PostgreSQL for it); it is migrated
once per session. Tests that need committed data visible to other processes use ``live_db`` and unique ids,
never a flush, because worker and coordinator processes share the database during the session.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import TEST_TUNABLES, Api, Cluster, free_port, wait_for


@pytest.fixture(scope="session")
def django_db_setup(django_db_blocker: Any) -> None:
    from django.core.management import call_command

    with django_db_blocker.unblock():
        call_command("migrate", verbosity=0)


@pytest.fixture
def live_db(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Database access with autocommit: what this test writes, other processes see."""
    with django_db_blocker.unblock():
        yield


def process_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(TEST_TUNABLES)
    env.update(
        {
            "WORKFLOW_PROFILE": "test",
            "LOG_FORMAT": "json",
            # File nodes may use the session's temporary directories (tmp_path); the engine's own data must
            # lie outside every file root (apps/workflows/private_paths.py), so it moves out of them.
            "WORKFLOW_FILE_ROOTS": str(workdir.parent),
            "WORKFLOW_DATA_DIR": str(_engine_data_dir(workdir)),
            "PYTHONUNBUFFERED": "1",
            # tasks "of the user's own" that celery.task nodes run (tests/integration/celery_tasks.py)
            "WORKFLOW_CELERY_IMPORTS": "tests.integration.celery_tasks",
            "WORKFLOW_CELERY_TASKS": "*",
        }
    )
    return env


def _engine_data_dir(workdir: Path) -> Path:
    base = Path(os.environ.get("WORKFLOW_DATA_DIR") or tempfile.gettempdir()) / "processes"
    return base / f"{workdir.parent.name}-{workdir.name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session", autouse=True)
def file_roots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """This process' file root is the session's temporary directory, as for the processes it starts
    (``process_env``), so a test's ``tmp_path`` is inside a root wherever the path is checked."""
    from apps.workflows.nodes import sandbox

    base = tmp_path_factory.getbasetemp()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sandbox, "allowed_roots", lambda: [base])
        yield


def make_token(username: str, role: str | None = "admin") -> str:
    """A new API token (``apps.accounts``) of ``username``: a superuser for ``admin`` (every existing test
    acts as one), else a member of the role's group (workflow_engine/roles.py); ``None``: a user without any
    role. Each call issues another token; earlier ones stay valid."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from apps.accounts import tokens

    user, _ = get_user_model().objects.get_or_create(username=username)
    user.is_superuser = role == "admin"
    user.save(update_fields=["is_superuser"])
    user.groups.set([Group.objects.get(name=role)] if role and role != "admin" else [])
    return tokens.issue(user, f"test-{uuid.uuid4().hex[:12]}")[1]


@pytest.fixture(scope="session")
def node(
    tmp_path_factory: pytest.TempPathFactory, django_db_setup: None, django_db_blocker: Any
) -> Iterator[dict[str, Any]]:
    """One real node (``manage.py run_node``: gateway, coordinator, worker, metrics) for the session."""
    workdir = tmp_path_factory.mktemp("node")
    cluster = Cluster(workdir, process_env(workdir))
    http, metrics = free_port(), free_port()
    proc = cluster.start_node(http, metrics)
    with django_db_blocker.unblock():
        token = make_token("integration")
    api = Api(f"http://127.0.0.1:{http}", token)
    try:
        wait_for("the gateway", lambda: api.get("/health/ready")[0] == 200, timeout=60)
        wait_for("a worker to own shards", lambda: _owned_shards(django_db_blocker) > 0, timeout=60)
        yield {"api": api, "cluster": cluster, "proc": proc, "metrics_port": metrics, "workdir": workdir}
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop()


def _owned_shards(blocker: Any) -> int:
    from apps.cluster.models import ShardLease

    with blocker.unblock():
        return ShardLease.objects.exclude(owner=None).count()


@pytest.fixture
def api(node: dict[str, Any]) -> Api:
    return node["api"]


@pytest.fixture
def uid() -> str:
    """A short unique suffix for ids, since the session's data is never flushed."""
    return uuid.uuid4().hex[:10]
