"""Online backup and verified restore of the whole store (every table of every installed app).

**Consistency.** A backup reads every table inside one ``REPEATABLE READ, READ ONLY`` transaction: PostgreSQL
gives it one snapshot for all its statements, so the file holds exactly the transactions committed before it
began, across all tables, while the cluster goes on writing. This is the snapshot ``pg_dump`` takes (its
default, without ``--serializable-deferrable``); it takes no lock that a writer waits for. Every durable
change of the engine is one transaction (services own them), so a snapshot never holds half of one. We read
the tables with ``COPY ... TO STDOUT`` rather than run ``pg_dump``: the same snapshot and the same exact text
form of every value, with no client binary that must be at least as new as the server on every host, and a
manifest (migration state, counts, checksums) that a restore can check before it writes anything.

**Restore** checks before it writes: the file's format version, the migration state (the database must be
at the backup's, and this code must know every migration the backup has), that no cluster member is live,
that the database holds nothing but what ``migrate`` puts there (unless forced), and every checksum. Then one
transaction replaces every table, resets the sequences and checks each table's count against the manifest.

Redis is not in the backup: it holds only hints and leases. After a restore the leases name members whose
liveness keys are gone, so the first leader fails every shard over to the live workers, and each new owner
recovers the active executions of its shards (services/recovery.py); due timers are rows, fired on the
database's clock. Nothing needs re-sending by hand.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from django.apps import apps
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader
from psycopg import sql

from apps.cluster import membership
from apps.operations import archive
from apps.operations.archive import Manifest
from apps.operations.errors import OperationError

logger = logging.getLogger(__name__)

# what `manage.py migrate` writes into an empty database: their rows do not make a database "not empty" (a
# restore replaces them with the backup's, whose ids its other rows reference)
SEEDED = frozenset(
    {
        "django_content_type",
        "auth_permission",
        "auth_group",
        "auth_group_permissions",
        "cluster_clusteridentity",  # the backup's row replaces it: a restored cluster keeps its id
    }
)
MIGRATIONS_TABLE = "django_migrations"  # its rows are the manifest's migration state, not table data


def store_tables() -> list[str]:
    """Every existing table of every installed app's models (auto-created many-to-many tables included)."""
    names = connection.introspection.django_table_names(only_existing=True, include_views=False)
    return sorted(set(names) - {MIGRATIONS_TABLE})


# --------------------------------------------------------------------------------------------- backup


def take(path: Path) -> Manifest:
    """Write a backup of the whole store to ``path``; returns its manifest.

    The table data is spooled next to ``path`` while the snapshot is open (the snapshot's transaction lasts as
    long as the reading, not the compression), then compressed into the file and renamed into place.
    """
    path = path.resolve()
    if connection.in_atomic_block:
        raise OperationError("a backup needs a transaction of its own (its snapshot); call it outside one")
    with tempfile.TemporaryDirectory(prefix=f".{path.name}-", dir=path.parent) as spool_dir:
        spool = archive.Spool(Path(spool_dir))
        with transaction.atomic(), connection.cursor() as cursor:
            created_at, server_version, migrations = _open_snapshot(cursor)
            for table in store_tables():
                columns = [c.name for c in connection.introspection.get_table_description(cursor, table)]
                spool.table(table, columns, _copy_out(cursor, table, columns))
        manifest = Manifest(
            format_version=archive.FORMAT_VERSION,
            app_version=archive.app_version(),
            created_at=created_at,
            server_version=server_version,
            migrations=migrations,
            tables=spool.tables,
            sha256=spool.content_sha256(),
        )
        spool.write(path, manifest)
    logger.info("backup written", extra={"path": str(path), "rows": manifest.total_rows})
    return manifest


def _open_snapshot(cursor: Any) -> tuple[str, str, list[tuple[str, str]]]:
    """Make this transaction one read-only snapshot; returns its time, the server version and migrations."""
    # must be the transaction's first statement; checked below rather than trusted
    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    cursor.execute(
        "SELECT current_setting('transaction_isolation'), now(), current_setting('server_version')"
    )
    isolation, now, server_version = cursor.fetchone()
    if isolation != "repeatable read":
        raise OperationError(f"the backup's transaction runs at {isolation}, not one snapshot")
    cursor.execute(f"SELECT app, name FROM {MIGRATIONS_TABLE} ORDER BY id")
    return now.isoformat(), str(server_version), [(app, name) for app, name in cursor.fetchall()]


def _copy_out(cursor: Any, table: str, columns: list[str]) -> Iterator[bytes]:
    statement = sql.SQL("COPY {} ({}) TO STDOUT").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with cursor.cursor.copy(statement) as copy:
        for chunk in copy:
            yield bytes(chunk)


# --------------------------------------------------------------------------------------------- restore


@dataclass
class RestoreReport:
    manifest: Manifest
    counts: dict[str, int]  # rows per table, counted after loading (each equals the manifest's)
    replaced: dict[str, int] = field(default_factory=dict)  # what --force replaced
    warnings: list[str] = field(default_factory=list)


def inspect(path: Path) -> Manifest:
    """The manifest, with every checksum verified."""
    manifest = archive.read_manifest(path)
    archive.verify(path, manifest)
    return manifest


def restore(path: Path, *, force: bool = False) -> RestoreReport:
    """Replace the whole store with the backup at ``path``, in one transaction; see the module's docstring."""
    manifest = archive.read_manifest(path)
    check_migrations(manifest)
    warnings = _refuse_live_cluster()
    occupied = occupied_tables([t.name for t in manifest.tables])
    if occupied and not force:
        listed = ", ".join(f"{table} ({rows} rows)" for table, rows in occupied.items())
        raise OperationError(
            f"the database is not empty: {listed}. A restore replaces everything in it; run it again with "
            "--force to do so, or restore into an empty database (create it and run `manage.py migrate`)"
        )
    missing = sorted({t.name for t in manifest.tables} - set(store_tables()))
    if missing:
        raise OperationError(f"the database has no table {', '.join(missing)}: run `manage.py migrate` first")
    archive.verify(path, manifest)
    counts = _load(path, manifest)
    logger.info("backup restored", extra={"path": str(path), "rows": sum(counts.values())})
    return RestoreReport(manifest=manifest, counts=counts, replaced=occupied, warnings=warnings)


def check_migrations(manifest: Manifest) -> None:
    """Refuse a backup from newer code, or a database at another migration state; say what to run."""
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    backup = set(manifest.migrations)
    unknown = sorted(backup - set(loader.disk_migrations))
    if unknown:
        raise OperationError(
            f"the backup was taken at a newer migration state than this code knows (workflow-engine "
            f"{manifest.app_version}); migrations not in this code: {_names(unknown)}. Restore it with that "
            "version or a newer one"
        )
    applied = set(loader.applied_migrations)
    if applied == backup:
        return
    changed = sorted({app for app, _ in applied ^ backup})
    steps = [f"manage.py migrate {app} {_last(backup, app)}" for app in changed]
    raise OperationError(
        "the database's migration state is not the backup's (missing: "
        f"{_names(sorted(backup - applied)) or 'none'}; extra: {_names(sorted(applied - backup)) or 'none'})."
        f" Bring it to the backup's state first: {'; '.join(steps)}. After the restore, `manage.py migrate` "
        "brings it up to this code"
    )


def _last(migrations: set[tuple[str, str]], app: str) -> str:
    # migration names start with their number (0001_initial, 0002_...), so the greatest is the app's leaf
    names = [name for a, name in migrations if a == app]
    return max(names) if names else "zero"


def _names(migrations: list[tuple[str, str]]) -> str:
    return ", ".join(f"{app}.{name}" for app, name in migrations)


def _refuse_live_cluster() -> list[str]:
    """A restore under running nodes would race their writes and their cached state: refuse it."""
    try:
        live = membership.live_members()
    except redis.RedisError as exc:
        return [f"could not check Redis for live nodes ({exc}); make sure every node is stopped"]
    if live:
        names = ", ".join(sorted(m.member_id for m in live))
        raise OperationError(
            f"cluster members are live ({names}): stop every gateway, worker and coordinator first "
            "(systemctl stop workflow-engine-node, or scale the StatefulSet to 0), then restore"
        )
    return []


def occupied_tables(tables: list[str]) -> dict[str, int]:
    """Rows per table of those holding anything that ``migrate`` does not put there."""
    found = {}
    with connection.cursor() as cursor:
        for table in sorted(set(tables) & set(store_tables()) - SEEDED):
            cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
            rows = int(cursor.fetchone()[0])
            if rows:
                found[table] = rows
    return found


def _load(path: Path, manifest: Manifest) -> dict[str, int]:
    """One transaction: empty every table, load the backup's rows, reset sequences, check the counts."""
    names = [t.name for t in manifest.tables]
    with transaction.atomic(), connection.cursor() as cursor:
        # Django's foreign keys are DEFERRABLE: checked at commit, so the load order does not matter
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        cursor.execute(
            sql.SQL("TRUNCATE {} RESTART IDENTITY").format(sql.SQL(", ").join(map(sql.Identifier, names)))
        )
        for entry, stream in archive.tables(path, manifest):
            _copy_in(cursor, entry, stream)
        for statement in connection.ops.sequence_reset_sql(
            no_style(), apps.get_models(include_auto_created=True)
        ):
            cursor.execute(statement)
        counts = _counts(cursor, names)
        wrong = {t.name: (counts[t.name], t.rows) for t in manifest.tables if counts[t.name] != t.rows}
        if wrong:  # rolls the whole restore back
            raise OperationError(
                f"restored counts differ from the manifest (table: restored, manifest): {wrong}"
            )
    return counts


def _copy_in(cursor: Any, entry: archive.TableEntry, stream: Any) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(entry.name), sql.SQL(", ").join(map(sql.Identifier, entry.columns))
    )
    with cursor.cursor.copy(statement) as copy:
        while chunk := stream.read(archive.CHUNK):
            copy.write(chunk)


def _counts(cursor: Any, tables: list[str]) -> dict[str, int]:
    counts = {}
    for table in tables:
        cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        counts[table] = int(cursor.fetchone()[0])
    return counts
