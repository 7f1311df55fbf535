"""``manage.py export_workflow ID [--executions] > f.json``: one workflow as JSON
(apps/operations/transfer.py)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.operations import transfer
from apps.operations.errors import OperationError


class Command(BaseCommand):
    help = (
        "Print workflow ID as JSON: its definition and every version; with --executions, its finished "
        "executions with their events, node outputs and logs."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("id", help="the workflow's id")
        parser.add_argument("--executions", action="store_true", help="add its finished executions")
        parser.add_argument("--output", "-o", help="write to this file instead of standard output")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            document = transfer.export(options["id"], executions=options["executions"])
        except OperationError as exc:
            raise CommandError(str(exc)) from exc
        text = json.dumps(document, indent=1, ensure_ascii=False)
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as f:
                f.write(text + "\n")
        else:
            self.stdout.write(text)
        active = document.get("activeNotExported") or []
        if active:
            self.stderr.write(
                f"{len(active)} active execution(s) not exported (export again once they end): "
                f"{', '.join(active[:10])}{' ...' if len(active) > 10 else ''}"
            )
