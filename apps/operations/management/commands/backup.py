"""``manage.py backup FILE``: an online backup of the whole store, taken while the cluster runs
(apps/operations/backup.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.operations import backup
from apps.operations.errors import OperationError


class Command(BaseCommand):
    help = (
        "Write a consistent backup of the whole store (one snapshot, taken while the cluster runs) to FILE: "
        "a gzip-compressed tar with a manifest (versions, migration state, row counts, sha256)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", type=Path, help="the backup to write (replaced if it exists)")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.resolve().parent.is_dir():
            raise CommandError(f"FILE: the directory {path.resolve().parent} does not exist")
        started = time.monotonic()
        try:
            manifest = backup.take(path)
        except OperationError as exc:
            raise CommandError(str(exc)) from exc
        for table in manifest.tables:
            self.stdout.write(f"{table.name:<40} {table.rows:>12}")
        self.stdout.write(
            f"backup {path} written in {time.monotonic() - started:.1f}s: {manifest.total_rows} rows in "
            f"{len(manifest.tables)} tables, {path.stat().st_size} bytes, snapshot at {manifest.created_at}, "
            f"sha256 {manifest.sha256}"
        )
