"""``manage.py check_invariants [--repair] [--json] [--limit N] [--after ID]``: scan the store for what the
engine's invariants forbid (services/invariants.py), repair what is safe with ``--repair``, and exit 1 when
anything was found (0 when clean), so that cron, CI and the fault campaign can act on the exit code.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.workflows.services import invariants

FINDINGS = 1  # the exit code when anything was found


class Command(BaseCommand):
    help = "Check the engine's invariants over the live store; exit 1 on findings (0 when clean)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--repair", action="store_true", help="repair what can be repaired safely")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument(
            "--limit",
            type=int,
            default=invariants.DEFAULT_LIMIT,
            help=f"executions whose journals are read (default {invariants.DEFAULT_LIMIT})",
        )
        parser.add_argument("--after", default="", help="read journals of executions after this id")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["limit"] < 1:
            raise CommandError("--limit must be at least 1.")
        report = invariants.scan(repair=options["repair"], limit=options["limit"], after=options["after"])
        if options["json"]:
            self.stdout.write(json.dumps(report.as_json(), indent=2))
        else:
            self._print(report)
        if not report.clean:
            sys.exit(FINDINGS)

    def _print(self, report: invariants.Report) -> None:
        for f in report.findings:
            where = f.execution_id or (f"shard {f.shard_id}" if f.shard_id is not None else "")
            state = " (repaired)" if f.repaired else (" (repairable: --repair)" if f.repairable else "")
            self.stdout.write(f"{f.kind}\t{where}\t{f.detail}{state}")
        counts = ", ".join(f"{kind} {n}" for kind, n in report.counts.items())
        more = f"; more after {report.next_after} (--after)" if report.next_after else ""
        self.stdout.write(f"{report.scanned_executions} executions read; {counts}{more}")
