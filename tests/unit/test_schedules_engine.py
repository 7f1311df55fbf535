"""The scheduler's pure core with controlled time: durations, cron (incl. DST), fixed rate phase, jitter,
catch-up after downtime and overlap decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from apps.schedules import engine
from apps.schedules.engine import ScheduleInvalid, Spec

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def cron_times(expr: str, after: datetime, count: int, tz: ZoneInfo = engine.UTC_ZONE) -> list[datetime]:
    spec = Spec("cron", after, cron=engine.parse_cron(expr), tz=tz)
    times, current = [], after
    for _ in range(count):
        nxt = engine.next_after(spec, current)
        assert nxt is not None
        times.append(nxt)
        current = nxt
    return times


# --- durations --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("1d", 86400), ("2H", 7200), (" 10s ", 10)]
)
def test_the_original_duration_grammar_parses(text: str, seconds: int) -> None:
    assert engine.parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["100ms", "1w", "", "h", "0s", "-5m", "1.5h", None, 5])
def test_a_bad_duration_names_its_field(text: object) -> None:
    with pytest.raises(ScheduleInvalid) as err:
        engine.parse_duration(text, "interval")
    assert list(err.value.problems) == ["interval"]


# --- cron -------------------------------------------------------------------------------------------------


def test_cron_fires_at_the_expected_instants_with_lists_ranges_steps_and_names() -> None:
    start = utc(2026, 1, 5, 0, 0)  # a Monday
    assert cron_times("*/15 9-10 * * MON-FRI", start, 9) == [
        utc(2026, 1, 5, 9, 0),
        utc(2026, 1, 5, 9, 15),
        utc(2026, 1, 5, 9, 30),
        utc(2026, 1, 5, 9, 45),
        utc(2026, 1, 5, 10, 0),
        utc(2026, 1, 5, 10, 15),
        utc(2026, 1, 5, 10, 30),
        utc(2026, 1, 5, 10, 45),
        utc(2026, 1, 6, 9, 0),
    ]
    assert cron_times("0 12 1,15 JAN,feb *", start, 3) == [
        utc(2026, 1, 15, 12),
        utc(2026, 2, 1, 12),
        utc(2026, 2, 15, 12),
    ]
    assert cron_times("30 6 * * 0", start, 2) == [utc(2026, 1, 11, 6, 30), utc(2026, 1, 18, 6, 30)]
    assert cron_times("30 6 * * 7", start, 1) == [utc(2026, 1, 11, 6, 30)]  # 7 is Sunday too


def test_restricted_day_of_month_and_day_of_week_fire_on_either() -> None:
    # the 13th, or any Friday: Fri 2 Jan, Fri 9 Jan, Tue 13 Jan, Fri 16 Jan
    assert [t.day for t in cron_times("0 0 13 * FRI", utc(2026, 1, 1), 4)] == [2, 9, 13, 16]


def test_the_next_fire_time_is_strictly_after() -> None:
    assert cron_times("0 * * * *", utc(2026, 1, 1, 10, 0), 1) == [utc(2026, 1, 1, 11, 0)]


@pytest.mark.parametrize(
    "expr",
    ["* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8", "5-1 * * * *",
     "*/0 * * * *", "0 0 30 2 *", "x * * * *", "* * * FOO *"],
)  # fmt: skip
def test_an_invalid_cron_expression_names_the_field(expr: str) -> None:
    with pytest.raises(ScheduleInvalid) as err:
        engine.parse_cron(expr)
    assert list(err.value.problems) == ["cronExpression"]


def test_cron_in_a_time_zone_follows_local_time() -> None:
    # 09:00 in New York is 14:00 UTC in winter and 13:00 UTC in summer
    assert cron_times("0 9 * * *", utc(2026, 3, 6), 3, NEW_YORK) == [
        utc(2026, 3, 6, 14),
        utc(2026, 3, 7, 14),
        utc(2026, 3, 8, 13),  # the spring-forward day
    ]


def test_spring_forward_shifts_a_nonexistent_local_time_by_the_gap() -> None:
    # Berlin, Sunday 29 March 2026: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist
    times = cron_times("30 2 * * *", utc(2026, 3, 27, 12), 3, BERLIN)
    assert times == [
        utc(2026, 3, 28, 1, 30),  # 02:30 CET
        utc(2026, 3, 29, 1, 30),  # shifted: 03:30 CEST
        utc(2026, 3, 30, 0, 30),  # 02:30 CEST
    ]
    assert times[1].astimezone(BERLIN).strftime("%H:%M %Z") == "03:30 CEST"


def test_spring_forward_fires_a_shifted_time_once_when_the_shifted_time_also_matches() -> None:
    times = cron_times("30 2,3 * * *", utc(2026, 3, 28, 12), 3, BERLIN)
    assert times == [utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30), utc(2026, 3, 30, 1, 30)]


def test_spring_forward_hourly_has_no_gap_and_no_duplicate() -> None:
    times = cron_times("0 * * * *", utc(2026, 3, 28, 23), 4, BERLIN)
    assert times == [utc(2026, 3, 29, h) for h in range(0, 4)]  # 01:00 CET, 03:00 CEST, 04:00, 05:00


def test_fall_back_fires_an_ambiguous_local_time_once() -> None:
    # Berlin, Sunday 25 October 2026: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice
    times = cron_times("30 2 * * *", utc(2026, 10, 24, 12), 2, BERLIN)
    assert times == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]  # the first 02:30 (CEST), then CET


def test_fall_back_every_15_minutes_skips_the_repeated_hour() -> None:
    times = cron_times("*/15 * * * *", utc(2026, 10, 25, 0, 15), 6, BERLIN)
    # 02:30, 02:45 CEST, then 03:00 CET, one hour and a quarter later
    assert times[:3] == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 0, 45), utc(2026, 10, 25, 2, 0)]
    assert len(set(times)) == 6


def test_fall_back_in_new_york() -> None:
    # 1 November 2026: 02:00 EDT falls back to 01:00 EST; 01:30 fires once, at its EDT occurrence
    assert cron_times("30 1 * * *", utc(2026, 10, 31, 12), 2, NEW_YORK) == [
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 2, 6, 30),
    ]


def test_starting_inside_the_repeated_hour_does_not_fire_its_second_pass() -> None:
    inside = utc(2026, 10, 25, 1, 10)  # 02:10 CET, the second 02:10
    assert cron_times("30 2 * * *", inside, 1, BERLIN) == [utc(2026, 10, 26, 1, 30)]


def test_leap_day_cron_finds_the_next_leap_year() -> None:
    assert cron_times("0 0 29 2 *", utc(2026, 1, 1), 1) == [utc(2028, 2, 29)]


# --- fixed rate, fixed delay, immediate, jitter -----------------------------------------------------------


def rate(interval: str, start: datetime, **kw: object) -> Spec:
    return Spec("fixed_rate", start, engine.parse_duration(interval), **kw)  # type: ignore[arg-type]


def test_fixed_rate_fires_in_the_phase_of_its_start() -> None:
    spec = rate("5m", utc(2026, 1, 1, 0, 2))
    assert engine.first_fire(spec) == utc(2026, 1, 1, 0, 2)
    assert engine.next_after(spec, utc(2026, 1, 1, 0, 2)) == utc(2026, 1, 1, 0, 7)
    assert engine.next_after(spec, utc(2026, 1, 1, 3, 0, 1)) == utc(2026, 1, 1, 3, 2)


def test_pause_and_resume_keep_the_fixed_rate_phase() -> None:
    spec = rate("1h", utc(2026, 1, 1, 0, 17))
    resumed = engine.resumed(spec, utc(2026, 1, 1, 5, 40), last_fire=utc(2026, 1, 1, 2, 17))
    assert resumed == utc(2026, 1, 1, 6, 17)  # not 06:40: the phase did not restart


def test_a_new_fixed_rate_schedule_first_fires_after_one_interval_as_the_original() -> None:
    now = utc(2026, 1, 1, 12)
    spec = engine.spec_from({"type": "fixed_rate", "interval": "30m"}, now=now)
    assert engine.first_fire(spec) == utc(2026, 1, 1, 12, 30)


def test_fixed_delay_fires_an_interval_after_the_previous_run_ended() -> None:
    spec = Spec("fixed_delay", utc(2026, 1, 1), engine.parse_duration("10m"))
    assert engine.after_run(spec, utc(2026, 1, 1, 0, 3, 20)) == utc(2026, 1, 1, 0, 13, 20)
    assert engine.next_after(spec, utc(2026, 1, 1)) is None  # only a run's end says when


def test_immediate_fires_once_and_not_again_on_resume() -> None:
    now = utc(2026, 1, 1)
    spec = engine.spec_from({"type": "immediate"}, now=now)
    assert engine.first_fire(spec) == now and engine.next_after(spec, now) is None
    assert engine.resumed(spec, now + timedelta(hours=1), last_fire=now) is None


def test_jitter_is_deterministic_per_fire_time_and_bounded() -> None:
    spec = rate("1m", utc(2026, 1, 1), jitter=timedelta(seconds=30), schedule_id="sch_a")
    times = [utc(2026, 1, 1, 0, m) for m in range(60)]
    delays = [engine.jitter_of(spec, t) for t in times]
    assert delays == [engine.jitter_of(spec, t) for t in times]
    assert all(timedelta(0) <= d < timedelta(seconds=30) for d in delays)
    assert len(set(delays)) > 50
    other = rate("1m", utc(2026, 1, 1), jitter=timedelta(seconds=30), schedule_id="sch_b")
    assert [engine.jitter_of(other, t) for t in times] != delays


def test_a_jittered_time_is_not_due_until_its_jitter_has_passed() -> None:
    spec = rate("1h", utc(2026, 1, 1), jitter=timedelta(minutes=10), schedule_id="sch_j")
    delay = engine.jitter_of(spec, utc(2026, 1, 1))
    at, window = utc(2026, 1, 1), timedelta(hours=1)
    assert engine.plan(spec, at, at + delay - timedelta(seconds=1), "all", window).fire == ()
    assert engine.plan(spec, at, at + delay, "all", window).fire == (at,)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"type": "weekly"}, "scheduleType"),
        ({"type": "fixed_rate", "interval": "soon"}, "interval"),
        ({"type": "cron", "cron": "* * *"}, "cronExpression"),
        ({"type": "cron", "timezone": "Mars/Olympus"}, "timezone"),
        ({"type": "fixed_rate", "jitter": "1x"}, "jitter"),
    ],
)
def test_spec_validation_names_the_api_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(ScheduleInvalid) as err:
        engine.spec_from(fields, now=utc(2026, 1, 1))
    assert list(err.value.problems) == [field]


# --- catch-up after ten intervals of downtime -------------------------------------------------------------

START = utc(2026, 1, 1)
HOURLY = rate("1h", START)
DOWN_UNTIL = START + timedelta(hours=10, minutes=20)  # 00:00 .. 10:00 were due: eleven times, ten late + one
WINDOW = timedelta(hours=3, minutes=30)


def test_catchup_skip_fires_none_of_the_missed_times_and_goes_on_at_the_next() -> None:
    plan = engine.plan(HOURLY, START, DOWN_UNTIL, "skip", WINDOW)
    assert plan.fire == ()
    assert plan.missed == tuple(START + timedelta(hours=h) for h in range(11))
    assert plan.next_fire == START + timedelta(hours=11)


def test_catchup_once_fires_the_latest_missed_time_once() -> None:
    plan = engine.plan(HOURLY, START, DOWN_UNTIL, "once", WINDOW)
    assert plan.fire == (START + timedelta(hours=10),)
    assert len(plan.missed) == 10 and plan.next_fire == START + timedelta(hours=11)


def test_catchup_all_fires_every_missed_time_within_the_window_oldest_first() -> None:
    plan = engine.plan(HOURLY, START, DOWN_UNTIL, "all", WINDOW)
    assert plan.fire == tuple(START + timedelta(hours=h) for h in (7, 8, 9, 10))
    assert plan.missed == tuple(START + timedelta(hours=h) for h in range(7))
    assert plan.next_fire == START + timedelta(hours=11)
    everything = engine.plan(HOURLY, START, DOWN_UNTIL, "all", timedelta(days=1))
    assert len(everything.fire) == 11 and everything.missed == ()


@pytest.mark.parametrize("policy", ["skip", "once", "all"])
def test_an_on_time_fire_fires_under_every_policy(policy: str) -> None:
    plan = engine.plan(HOURLY, START, START + timedelta(seconds=0.3), policy, WINDOW)
    assert plan.fire == (START,) and plan.missed == () and plan.next_fire == START + timedelta(hours=1)


def test_catchup_for_cron_after_downtime() -> None:
    spec = Spec("cron", START, cron=engine.parse_cron("0 */2 * * *"), tz=BERLIN)
    first = engine.first_fire(spec)
    assert first == utc(2026, 1, 1, 1)  # 02:00 in Berlin, the first even hour from 01:00
    plan = engine.plan(spec, first, first + timedelta(hours=20, minutes=5), "once", WINDOW)
    assert plan.fire == (first + timedelta(hours=20),) and len(plan.missed) == 10


def test_a_very_long_downtime_is_bounded() -> None:
    spec = rate("1s", START)
    plan = engine.plan(spec, START, START + timedelta(days=30), "skip", timedelta(hours=1))
    assert len(plan.missed) <= engine.MAX_CATCHUP + 1
    assert plan.uncounted_missed > 2_000_000
    assert plan.next_fire == START + timedelta(days=30, seconds=1)


# --- overlap ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "active", "buffered", "action"),
    [
        ("allow", 3, False, "start"),
        ("skip", 0, False, "start"),
        ("skip", 1, False, "skip"),
        ("buffer_one", 1, False, "buffer"),
        ("buffer_one", 1, True, "skip"),
        ("buffer_one", 0, True, "start"),
        ("cancel_previous", 1, False, "cancel_and_start"),
        ("cancel_previous", 0, False, "start"),
    ],
)
def test_overlap_policy_decisions(policy: str, active: int, buffered: bool, action: str) -> None:
    assert engine.overlap_action(policy, active, buffered) == action
