"""Scheduler metrics, updated by the coordinator leader after each firing transaction commits."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

schedule_fires_total = Counter(
    "workflow_schedule_fires_total",
    "Schedule fire times handled, by outcome (started, queued, skipped, buffered) and kind.",
    ["outcome", "kind"],
)
schedule_missed_total = Counter(
    "workflow_schedule_missed_total", "Fire times the catch-up policy did not fire (the leader was down)."
)
schedule_lag_seconds = Histogram(
    "workflow_schedule_lag_seconds",
    "From a fire time's due time (with jitter) to the start of its execution.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
