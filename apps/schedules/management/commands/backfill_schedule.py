"""``manage.py backfill_schedule <id> --start ... --end ... --max-active 3``: a backfill the leader runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from apps.schedules.services import backfills
from workflow_engine.errors import EngineError


def _instant(text: str, name: str) -> datetime:
    value = parse_datetime(text)
    if value is None or value.tzinfo is None:
        raise CommandError(f"--{name} must be an ISO 8601 time with a zone, e.g. 2026-01-01T00:00:00Z")
    return value


class Command(BaseCommand):
    help = "Run a schedule's fire times over [start, end), at most --max-active at once (the leader runs it)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("schedule_id")
        parser.add_argument("--start", required=True, help="inclusive, ISO 8601 with a zone")
        parser.add_argument("--end", required=True, help="exclusive, ISO 8601 with a zone")
        parser.add_argument("--max-active", type=int, default=3)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run = backfills.create(
                options["schedule_id"],
                _instant(options["start"], "start"),
                _instant(options["end"], "end"),
                options["max_active"],
            )
        except EngineError as exc:
            raise CommandError(f"{exc.message} {exc.details or ''}".strip()) from None
        self.stdout.write(f"backfill {run.id}: {run.total} interval(s), at most {run.max_active} at once")
