"""What a waiting node waits for. Pure: built from a node's config when its graph is compiled.

``delay`` waits on a timer (a duration, or until a time) and passes its inputs on; ``wait.signal`` waits for a
named signal and outputs its payload; ``approval`` waits for an approve or reject signal from a user allowed
to give it and passes its inputs on when approved. Each may give up after ``timeout_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WaitSpec:
    kind: str  # "timer" or "signal"
    delay_ms: int | None = None
    until_ms: int | None = None  # epoch milliseconds
    signal: str | None = None
    timeout_ms: int | None = None
    approval: bool = False

    def fire_at(self, now_ms: int) -> int:
        """When a timer wait ends (never before now)."""
        if self.until_ms is not None:
            return max(now_ms, self.until_ms)
        return now_ms + (self.delay_ms or 0)


REJECT_SUFFIX = ".reject"


def rejection_of(signal: str) -> str:
    """The signal that rejects an approval waiting for ``signal`` (``approve`` → ``approve.reject``)."""
    return signal + REJECT_SUFFIX
