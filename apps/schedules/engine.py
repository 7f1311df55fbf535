"""The scheduler's pure core: specs, cron, next fire times, jitter, catch-up and overlap decisions.

Plain Python over frozen dataclasses, no Django and no clock: every function takes ``now`` or ``after``.
All instants are aware datetimes; a cron expression is evaluated on the wall clock of its IANA time zone.

Daylight saving, for cron:

- a local time that does not exist (the spring-forward gap, e.g. 02:30 in Europe/Berlin on the last Sunday
  of March) is **shifted forward by the length of the gap** (02:30 fires at 03:30 CEST), as zoneinfo reads a
  nonexistent time with ``fold=0``; if 03:30 also matches, it fires once;
- a local time that occurs twice (the fall-back hour) **fires once**, at its first occurrence.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

TYPES = ("fixed_rate", "fixed_delay", "cron", "immediate")
CATCHUP_POLICIES = ("skip", "once", "all")
OVERLAP_POLICIES = ("skip", "buffer_one", "allow", "cancel_previous")
DEFAULT_INTERVAL = "1h"  # the original's defaults (origin-product.md §4)
DEFAULT_CRON = "0 0 * * *"
LATE_AFTER = timedelta(seconds=60)  # a due time later than this (or than one period) is "missed"
MAX_CATCHUP = 1000  # fire times looked at in one tick; older ones are counted as missed, not listed
_CRON_HORIZON_DAYS = 366 * 5  # "0 0 29 2 *" fires within four years; "0 0 30 2 *" never does


UTC_ZONE = ZoneInfo("UTC")


class ScheduleInvalid(ValueError):
    """A schedule field is invalid; ``problems`` is ``{field: [messages]}`` in the API's names."""

    def __init__(self, problems: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in problems.items()))
        self.problems = problems


# --- durations ----------------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: Any, field_name: str = "interval") -> timedelta:
    """The original's grammar, ``<n>s|m|h|d`` (``30s``, ``5m``, ``1h``, ``1d``); 0 is refused."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) == 0:
        raise ScheduleInvalid(
            {field_name: [f"{text!r} is not a duration: use <n>s, <n>m, <n>h or <n>d, e.g. 30s, 5m, 1h, 1d."]}
        )
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2).lower()])


# --- cron ---------------------------------------------------------------------------------------------------

_MONTHS = {m: i for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN"), start=1)} | {
    m: i for i, m in enumerate(("JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=7)
}
_DAYS = {d: i for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: Mapping[str, int] = field(default_factory=dict)


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    _Field("day of week", 0, 7, _DAYS),  # 0 and 7 are Sunday
)


@dataclass(frozen=True)
class Cron:
    """A parsed five-field expression. When both day fields are restricted, a day matching either fires
    (the usual cron OR rule); when one is ``*``, only the other counts."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    def matches_date(self, d: date) -> bool:
        if d.month not in self.months:
            return False
        dom, dow = d.day in self.days, (d.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow


def _value(text: str, f: _Field) -> int:
    upper = text.upper()
    if upper in f.names:
        return f.names[upper]
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a number or a name in the {f.name} field")
    number = int(text)
    if not f.low <= number <= f.high:
        raise ValueError(f"{number} is out of range {f.low}-{f.high} in the {f.name} field")
    return number


def _part(part: str, f: _Field) -> set[int]:
    base, _, step_text = part.partition("/")
    step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
    if step_text and step is None:
        raise ValueError(f"{part!r}: the step must be a positive number in the {f.name} field")
    if base == "*":
        low, high = f.low, f.high
    elif "-" in base:
        first, _, last = base.partition("-")
        low, high = _value(first, f), _value(last, f)
        if low > high:
            raise ValueError(f"{part!r}: the range is backwards in the {f.name} field")
    else:
        low = _value(base, f)
        high = f.high if step else low
    return set(range(low, high + 1, step or 1))


def parse_cron(expr: Any) -> Cron:
    """Five fields, minute hour day-of-month month day-of-week: ``*``, lists, ranges, steps, JAN, MON."""
    fields = expr.split() if isinstance(expr, str) else []
    if len(fields) != 5:
        raise ScheduleInvalid(
            {"cronExpression": [f"{expr!r} needs five fields: minute hour day month weekday."]}
        )
    try:
        sets = [
            set().union(*(_part(p, f) for p in text.split(",")))
            for text, f in zip(fields, _FIELDS, strict=True)
        ]
    except ValueError as exc:
        raise ScheduleInvalid({"cronExpression": [f"{expr!r}: {exc}."]}) from None
    weekdays = frozenset(d % 7 for d in sets[4])
    cron = Cron(
        minutes=tuple(sorted(sets[0])),
        hours=tuple(sorted(sets[1])),
        days=frozenset(sets[2]),
        months=frozenset(sets[3]),
        weekdays=weekdays,
        any_day=fields[2] == "*",
        any_weekday=fields[4] == "*",
    )
    if not any(cron.matches_date(date(2024, 1, 1) + timedelta(days=i)) for i in range(_CRON_HORIZON_DAYS)):
        raise ScheduleInvalid({"cronExpression": [f"{expr!r} never matches a date."]})
    return cron


def _wall_times(cron: Cron, start: datetime) -> Iterator[datetime]:
    """Naive local times matching ``cron``, in wall-clock order, from ``start`` (naive, inclusive)."""
    day = start.date()
    for _ in range(_CRON_HORIZON_DAYS):
        if cron.matches_date(day):
            for hour in cron.hours:
                for minute in cron.minutes:
                    wall = datetime(day.year, day.month, day.day, hour, minute)
                    if wall >= start:
                        yield wall
        day += timedelta(days=1)


def _instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of a local wall time: fold=0 is the first of an ambiguous pair and shifts a
    nonexistent time forward by the gap."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def cron_next(cron: Cron, after: datetime, tz: ZoneInfo) -> datetime | None:
    """The first fire instant strictly after ``after``.

    Wall order is instant order except in a spring-forward gap, where a shifted time lands up to the gap's
    length later; so candidates are scanned from two hours before ``after`` (longer than any DST gap) until
    two hours of wall time past the first hit, and the earliest wins.
    """
    start = (after.astimezone(tz).replace(tzinfo=None) - timedelta(hours=2)).replace(second=0, microsecond=0)
    best: datetime | None = None
    stop: datetime | None = None
    for wall in _wall_times(cron, start):
        if stop is not None and wall > stop:
            break
        at = _instant(wall, tz)
        if at > after and (best is None or at < best):
            best = at
            stop = stop or wall + timedelta(hours=2)
    return best


# --- specs and next fire times ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """What fires when. ``start_at`` anchors a fixed rate's phase: fires are ``start_at + k * interval``."""

    type: str
    start_at: datetime
    interval: timedelta | None = None
    cron: Cron | None = None
    tz: ZoneInfo = UTC_ZONE
    jitter: timedelta = timedelta(0)
    schedule_id: str = ""


def zone(name: Any) -> ZoneInfo:
    try:
        return ZoneInfo(name) if isinstance(name, str) and name else ZoneInfo("")
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleInvalid(
            {"timezone": [f"{name!r} is not an IANA time zone, e.g. Europe/Berlin."]}
        ) from None


def first_fire(spec: Spec) -> datetime | None:
    """The first fire time of a new (or resumed, never-fired) schedule."""
    if spec.type == "cron":
        return next_after(spec, spec.start_at - timedelta(microseconds=1))
    return spec.start_at


def next_after(spec: Spec, after: datetime) -> datetime | None:
    """The first fire time strictly after ``after``, ignoring runs (fixed_delay and immediate: ``None``)."""
    if spec.type == "fixed_rate":
        assert spec.interval is not None
        if after < spec.start_at:
            return spec.start_at
        periods = (after - spec.start_at) // spec.interval + 1
        return spec.start_at + periods * spec.interval
    if spec.type == "cron":
        assert spec.cron is not None
        return cron_next(spec.cron, max(after, spec.start_at - timedelta(microseconds=1)), spec.tz)
    return None


def after_run(spec: Spec, ended_at: datetime) -> datetime:
    """fixed_delay: the next fire is the previous run's end plus the interval."""
    assert spec.interval is not None
    return ended_at + spec.interval


def resumed(spec: Spec, now: datetime, last_fire: datetime | None) -> datetime | None:
    """The next fire after a resume: the phase is kept (no catch-up of the paused time); an immediate
    schedule that already fired does not fire again."""
    if spec.type == "immediate":
        return None if last_fire else now
    if spec.type == "fixed_delay":
        return max(now, spec.start_at)
    return next_after(spec, now - timedelta(microseconds=1))


def jitter_of(spec: Spec, fire_time: datetime) -> timedelta:
    """A delay in ``[0, jitter)``, the same for a given schedule and fire time (so every leader agrees)."""
    if not spec.jitter:
        return timedelta(0)
    digest = hashlib.sha256(f"{spec.schedule_id}:{fire_time.isoformat()}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return timedelta(microseconds=int(spec.jitter / timedelta(microseconds=1) * fraction))


def due_at(spec: Spec, fire_time: datetime) -> datetime:
    return fire_time + jitter_of(spec, fire_time)


# --- catch-up -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What one tick does with a due schedule: fire these logical times, record those as missed."""

    fire: tuple[datetime, ...]
    missed: tuple[datetime, ...]
    next_fire: datetime | None
    uncounted_missed: int = 0  # beyond MAX_CATCHUP: missed but not listed


def plan(spec: Spec, next_fire: datetime, now: datetime, catchup: str, window: timedelta) -> Plan:
    """The fire times due at ``now`` from ``next_fire`` on, and what the catch-up policy makes of them.

    A due time is *on time* if it is less than ``min(LATE_AFTER, its period)`` late: it fires under every
    policy. Older ones were missed (the leader was down, or the schedule was paused by a slow tick): ``skip``
    fires none of them, ``once`` fires the latest, ``all`` fires those within ``window`` of now, oldest first.
    Only fixed_rate and cron have several due times; the others fire their one time.
    """
    due, upcoming, uncounted = _due_times(spec, next_fire, now)
    on_time = [t for t, period in due if now - due_at(spec, t) <= min(LATE_AFTER, period)]
    late = [t for t, _ in due if t not in on_time]
    if not late:
        return Plan(tuple(on_time), (), upcoming, uncounted)
    if catchup == "skip":
        fire = on_time
    elif catchup == "once":
        fire = [due[-1][0]]
    else:
        fire = [t for t, _ in due if now - t <= window or t in on_time]
    return Plan(tuple(fire), tuple(t for t, _ in due if t not in fire), upcoming, uncounted)


def _due_times(
    spec: Spec, next_fire: datetime, now: datetime
) -> tuple[list[tuple[datetime, timedelta]], datetime | None, int]:
    """``[(fire_time, period)]`` due at ``now`` (at most ``MAX_CATCHUP``, the latest), the next one not yet
    due, and how many older ones were dropped."""
    dropped = 0
    if spec.type == "fixed_rate" and spec.interval is not None:
        behind = (now - next_fire) // spec.interval
        if behind > MAX_CATCHUP:  # jump ahead arithmetically; the leader was down a long time
            dropped = behind - MAX_CATCHUP
            next_fire += dropped * spec.interval
    due: list[tuple[datetime, timedelta]] = []
    current: datetime | None = next_fire
    while current is not None and due_at(spec, current) <= now:
        following = next_after(spec, current)
        period = (following - current) if following else LATE_AFTER
        due.append((current, period))
        if len(due) > MAX_CATCHUP:
            due.pop(0)
            dropped += 1
        current = following
    return due, current, dropped


# --- overlap ------------------------------------------------------------------------------------------------


def overlap_action(policy: str, active: int, buffered: bool) -> str:
    """What a fire does while ``active`` runs of the schedule are still going: ``start``, ``skip``,
    ``buffer`` (start it when they end; at most one waits, later ones are skipped) or ``cancel_and_start``."""
    if active == 0 or policy == "allow":
        return "start"
    if policy == "buffer_one":
        return "skip" if buffered else "buffer"
    if policy == "cancel_previous":
        return "cancel_and_start"
    return "skip"


# --- validation ---------------------------------------------------------------------------------------------


def spec_from(fields: Mapping[str, Any], *, now: datetime, schedule_id: str = "") -> Spec:
    """A validated ``Spec`` from stored or posted fields (``type``, ``interval``, ``cron``, ``timezone``,
    ``start_at``, ``jitter``); raises ``ScheduleInvalid`` naming the API field."""
    kind = fields.get("type")
    if kind not in TYPES:
        raise ScheduleInvalid(
            {"scheduleType": [f"Unknown schedule type: {kind}. Use one of {', '.join(TYPES)}."]}
        )
    interval = cron = None
    if kind in ("fixed_rate", "fixed_delay"):
        interval = parse_duration(fields.get("interval") or DEFAULT_INTERVAL)
    if kind == "cron":
        cron = parse_cron(fields.get("cron") or DEFAULT_CRON)
    jitter = parse_duration(fields["jitter"], "jitter") if fields.get("jitter") else timedelta(0)
    start_at = fields.get("start_at")
    if start_at is None:
        # the original's fixed rate first fired after one interval; a cron or immediate schedule from now
        start_at = now + interval if interval else now
    return Spec(kind, start_at, interval, cron, zone(fields.get("timezone") or "UTC"), jitter, schedule_id)
