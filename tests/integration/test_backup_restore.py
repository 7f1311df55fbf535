"""``manage.py backup`` and ``manage.py restore``: what a restore checks before it writes (apps/operations).

Each test works on databases of its own (clones of a migrated template on the session's server), running the
commands as an operator does, in a process pointed at them; the drill with running nodes is
tests/cluster/test_backup_drill.py.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from apps.operations import archive
from tests.harness import ROOT, migrate_with_token
from tests.integration.conftest import admin_url, create_database, db_url, drop_database


@pytest.fixture(scope="module")
def template() -> Iterator[str]:
    """A migrated database holding a user and its token."""
    name = create_database("wfe_backup_tmpl")
    try:
        migrate_with_token(db_url(admin_url(), name), uuid.uuid4().hex, "alice")
        yield name
    finally:
        drop_database(name)


@pytest.fixture
def databases(template: str) -> Iterator[Callable[..., str]]:
    """``make(clone=True)``: the URL of a new database, a clone of the template or empty (not migrated)."""
    made: list[str] = []

    def make(clone: bool = True) -> str:
        name = f"wfe_backup_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin_url(), autocommit=True) as conn:
            create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if clone:
                create = sql.SQL("{} TEMPLATE {}").format(create, sql.Identifier(template))
            conn.execute(create)
        made.append(name)
        return db_url(admin_url(), name)

    yield make
    for name in made:
        drop_database(name)


def manage(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    # a Redis database no node of the session uses: restore looks for live members there
    redis_url = os.environ["REDIS_URL"].rsplit("/", 1)[0] + "/13"
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url, "WORKFLOW_PROFILE": "test"}
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def migrated_empty(databases: Callable[..., str]) -> str:
    url = databases(clone=False)
    done = manage(url, "migrate", "--noinput", "-v0")
    assert done.returncode == 0, done.stderr
    return url


def rows(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def rewrite(
    path: Path, out: Path, manifest: bytes | None = None, table: tuple[str, bytes] | None = None
) -> None:
    """A copy of the backup with its manifest or one table's data replaced."""
    with tarfile.open(path, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == archive.MANIFEST and manifest is not None:
                data = manifest
            if table is not None and member.name == f"tables/{table[0]}.copy":
                data = table[1]
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))


@pytest.fixture
def source(databases: Callable[..., str], tmp_path: Path) -> tuple[str, Path]:
    """A database with a user, a token and an API token of another user, and its backup."""
    url = databases()
    added = manage(url, "user_role", "bob", "operator")
    assert added.returncode == 0, added.stderr
    path = tmp_path / "store.tar.gz"
    taken = manage(url, "backup", str(path))
    assert taken.returncode == 0, taken.stderr
    return url, path


def test_a_backup_restores_every_row_and_prints_the_counts_of_its_manifest(
    source: tuple[str, Path], databases: Callable[..., str]
) -> None:
    url, path = source
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # password and token hashes: the owner's only
    manifest = archive.read_manifest(path)
    assert manifest.format_version == archive.FORMAT_VERSION
    assert ("workflows", "0001_initial") in manifest.migrations
    assert {t.name for t in manifest.tables} >= {"workflows_event", "auth_user", "authtoken_token"}
    target = migrated_empty(databases)

    restored = manage(target, "restore", str(path))

    assert restored.returncode == 0, restored.stderr
    printed = dict(line.split() for line in restored.stdout.splitlines() if len(line.split()) == 2)
    assert {k: int(v) for k, v in printed.items()} == {t.name: t.rows for t in manifest.tables}
    for table in ("auth_user", "authtoken_token", "auth_user_groups", "accounts_apitoken"):
        query = f"SELECT * FROM {table} ORDER BY 1"
        assert rows(target, query) == rows(url, query), table
    # sequences follow the restored ids: the next user gets a new id, not a collision
    assert manage(target, "user_role", "carol", "viewer").returncode == 0


def test_it_refuses_a_file_whose_checksum_does_not_match_and_changes_nothing(
    source: tuple[str, Path], databases: Callable[..., str], tmp_path: Path
) -> None:
    _, path = source
    damaged = tmp_path / "damaged.tar.gz"
    rewrite(
        path, damaged, table=("auth_user", b"9\t!\tNULL\tt\tmallory\t\t\t\tt\tt\t2026-01-01 00:00:00+00\n")
    )
    target = migrated_empty(databases)

    refused = manage(target, "restore", str(damaged))

    assert refused.returncode == 1
    assert "table auth_user does not match its checksum" in refused.stderr
    assert rows(target, "SELECT count(*) FROM auth_user") == [(0,)]
    assert manage(target, "restore", "--check", str(damaged)).returncode == 1


def test_it_refuses_a_file_that_is_not_a_backup(databases: Callable[..., str], tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a backup at all")
    refused = manage(migrated_empty(databases), "restore", str(junk))
    assert refused.returncode == 1
    assert "is not a backup file" in refused.stderr


def test_it_refuses_a_database_that_is_not_empty_without_force_naming_what_is_there(
    source: tuple[str, Path], databases: Callable[..., str]
) -> None:
    _, path = source
    target = databases()  # the template: a user and a token
    manage(target, "user_role", "dave", "viewer")

    refused = manage(target, "restore", str(path))

    assert refused.returncode == 1
    assert "the database is not empty: " in refused.stderr
    assert "auth_user (2 rows)" in refused.stderr and "--force" in refused.stderr
    forced = manage(target, "restore", "--force", str(path))
    assert forced.returncode == 0, forced.stderr
    assert "replaced: " in forced.stdout
    assert {r[0] for r in rows(target, "SELECT username FROM auth_user")} == {"alice", "bob"}


def test_it_refuses_a_backup_from_a_newer_migration_state_naming_it(
    source: tuple[str, Path], databases: Callable[..., str], tmp_path: Path
) -> None:
    _, path = source
    body = json.loads(archive.read_manifest(path).to_json())
    body["migrations"].append(["workflows", "9999_from_the_future"])
    newer = tmp_path / "newer.tar.gz"
    rewrite(path, newer, manifest=json.dumps(body).encode())

    refused = manage(migrated_empty(databases), "restore", str(newer))

    assert refused.returncode == 1
    assert "newer migration state" in refused.stderr
    assert "workflows.9999_from_the_future" in refused.stderr


def test_it_refuses_a_database_at_another_migration_state_saying_what_to_run(
    source: tuple[str, Path], databases: Callable[..., str]
) -> None:
    _, path = source
    refused = manage(databases(clone=False), "restore", str(path))
    assert refused.returncode == 1
    assert "migration state is not the backup's" in refused.stderr
    assert "manage.py migrate workflows 0" in refused.stderr


def test_it_refuses_a_newer_format_version(source: tuple[str, Path], tmp_path: Path) -> None:
    _, path = source
    body = json.loads(archive.read_manifest(path).to_json())
    body["format_version"] = archive.FORMAT_VERSION + 1
    newer = tmp_path / "format.tar.gz"
    rewrite(path, newer, manifest=json.dumps(body).encode())
    refused = manage(source[0], "restore", "--check", str(newer))
    assert refused.returncode == 1
    assert f"format version is {archive.FORMAT_VERSION + 1}" in refused.stderr
