"""The schedules' work on the cluster's leader: one bounded round every coordinator tick (``apps.py``
registers ``tick`` as a leader hook)."""

from __future__ import annotations

from apps.schedules.services import backfills, firing


def tick() -> int:
    """Released buffers, due schedules, fixed-delay follow-ups, then backfills; how many schedules fired.

    A buffered fire is released before new fires are looked at, so it runs before a later time does."""
    firing.release_buffered()
    fired = firing.fire_due()
    firing.after_runs()
    backfills.advance()
    return fired
