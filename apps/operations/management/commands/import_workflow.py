"""``manage.py import_workflow FILE [--as NEW_ID] [--replace]``: import a workflow export
(apps/operations/transfer.py), in one transaction."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.operations import transfer
from apps.operations.errors import OperationError


class Command(BaseCommand):
    help = (
        "Import a workflow written by export_workflow: its versions (numbers kept) and the executions it "
        "carries (journals in order). Refuses an existing workflow unless --replace; --as imports it under "
        "another id. FILE '-' reads standard input."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", help="the JSON file, or - for standard input")
        parser.add_argument("--as", dest="as_id", metavar="NEW_ID", help="import under this workflow id")
        parser.add_argument("--replace", action="store_true", help="overwrite a workflow with the same id")
        parser.add_argument(
            "--skip-executions", action="store_true", help="import the definition and versions only"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = transfer.import_document(
                _read(options["file"]),
                as_id=options["as_id"],
                replace=options["replace"],
                executions=not options["skip_executions"],
            )
        except OperationError as exc:
            raise CommandError(f"import refused: {exc}") from exc
        self.stdout.write(
            f"imported workflow {report.workflow_id}: {report.versions} versions, {report.executions} "
            f"executions, {report.events} events"
        )


def _read(name: str) -> Any:
    try:
        if name == "-":
            return json.load(sys.stdin)
        with open(name, encoding="utf-8") as f:
            return json.load(f)
    except OSError as exc:
        raise CommandError(f"FILE: cannot read {name}: {exc.strerror}") from exc
    except (ValueError, RecursionError) as exc:
        raise CommandError(f"FILE: {name} is not JSON: {exc}") from exc
