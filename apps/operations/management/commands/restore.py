"""``manage.py restore FILE [--force]``: verify a backup and replace the whole store with it
(apps/operations/backup.py).

Stop every node first. ``--check`` only verifies the file and prints its manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.operations import backup
from apps.operations.archive import Manifest
from apps.operations.errors import OperationError


class Command(BaseCommand):
    help = (
        "Verify FILE (checksums, format version, migration state) and restore it into this database in one "
        "transaction. Refuses a database that holds data unless --force; prints the rows restored per table."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", type=Path, help="a file written by `manage.py backup`")
        parser.add_argument("--force", action="store_true", help="replace what the database holds")
        parser.add_argument("--check", action="store_true", help="only verify the file; change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            if options["check"]:
                self._summary("verified", backup.inspect(path), None)
                return
            report = backup.restore(path, force=options["force"])
        except OperationError as exc:
            raise CommandError(f"restore refused: {exc}") from exc
        for warning in report.warnings:
            self.stderr.write(f"warning: {warning}")
        if report.replaced:
            self.stdout.write(f"replaced: {', '.join(f'{t} ({n} rows)' for t, n in report.replaced.items())}")
        self._summary("restored", report.manifest, report.counts)
        self.stdout.write(
            "Start the nodes: the leader fails every shard over to the live workers, which recover the "
            "executions that were running (docs/operations.md, Backup and restore)."
        )

    def _summary(self, verb: str, manifest: Manifest, counts: dict[str, int] | None) -> None:
        for table in manifest.tables:
            rows = counts[table.name] if counts is not None else table.rows
            self.stdout.write(f"{table.name:<40} {rows:>12}")
        self.stdout.write(
            f"{verb} {manifest.total_rows} rows in {len(manifest.tables)} tables from the backup of "
            f"{manifest.created_at} (workflow-engine {manifest.app_version}, sha256 {manifest.sha256})"
        )
