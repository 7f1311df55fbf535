"""Execution policies read from a definition: retries, timeouts, concurrency. Pure.

A node's ``retry`` and ``timeout`` sit on the node object; workflow-wide defaults and the concurrency limit
sit in the definition's optional ``settings`` object (fields the original DSL did not have, which its
parser ignored, so old clients keep working):

    "settings": {"retry": {...}, "timeout": "10m", "concurrency": {"max": 2, "policy": "queue"}}
    node: {"id": ..., "retry": {"maxAttempts": 3, "backoff": "exponential", "initialInterval": "1s",
                                "maxInterval": "1m", "multiplier": 2, "jitter": 0.1, "retryOn": "retryable"},
           "timeout": "30s"}
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Problems = dict[str, list[str]]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, None: 1000}
BACKOFFS = ("fixed", "linear", "exponential")
RETRY_ON = ("retryable", "all")
CONCURRENCY_POLICIES = ("allow", "queue", "skip", "reject")


# The longest duration a definition may hold: node and workflow timeouts, delays, waits and retry intervals
# (docs/security.md). Anything longer is a mistake, and an unbounded number would overflow the timers'
# timestamps. Query and request timeouts have lower caps of their own (nodes/sql.py).
MAX_DURATION_MS = 30 * _UNIT_MS["d"]


def duration_ms(value: Any, maximum_ms: int = MAX_DURATION_MS) -> int | None:
    """Milliseconds from ``"30s"``, ``"5m"``, ``"250ms"``, ``"1h"``, ``"1d"`` or a number of seconds; None
    when ``value`` is not a duration or is longer than ``maximum_ms``."""
    ms = _any_ms(value)
    return int(ms) if ms is not None and ms <= maximum_ms else None


def _any_ms(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        # "not value < 0" would let NaN through; an infinite value is refused by the maximum
        return value * 1000.0 if value >= 0 else None
    match = _DURATION.match(value) if isinstance(value, str) else None
    return float(match.group(1)) * _UNIT_MS[match.group(2)] if match else None


def format_ms(ms: int) -> str:
    """``2592000000`` -> ``"30d"``: the largest unit that divides ``ms``, for messages."""
    for unit in ("d", "h", "m", "s"):
        if ms % _UNIT_MS[unit] == 0 and ms >= _UNIT_MS[unit]:
            return f"{ms // _UNIT_MS[unit]}{unit}"
    return f"{ms}ms"


def duration_problem(value: Any, *, maximum_ms: int = MAX_DURATION_MS, positive: bool = True) -> str | None:
    """What is wrong with ``value`` as a duration (None when it is fine), naming the maximum."""
    ms = _any_ms(value)
    if ms is None or (positive and ms < 1):
        kind = "a positive duration" if positive else "a duration"
        return f"Must be {kind} such as 500ms, 30s, 5m or 1h, or a number of seconds."
    if not ms <= maximum_ms:
        return f"Must be at most {format_ms(maximum_ms)}; got {value!r}."
    return None


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 1
    backoff: str = "exponential"
    initial_ms: int = 1000
    max_ms: int = 300_000
    multiplier: float = 2.0
    jitter: float = 0.1
    retry_on: str = "retryable"

    def should_retry(self, attempt: int, retryable: bool) -> bool:
        return attempt < self.max_attempts and (retryable or self.retry_on == "all")

    def delay_ms(self, attempt: int, seed: str) -> int:
        """The wait after failed ``attempt`` (1-based), capped, with deterministic jitter from ``seed``."""
        if self.backoff == "fixed":
            base = float(self.initial_ms)
        elif self.backoff == "linear":
            base = float(self.initial_ms * attempt)
        else:
            base = self.initial_ms * self.multiplier ** (attempt - 1)
        base = min(base, float(self.max_ms))
        unit = int.from_bytes(hashlib.blake2b(seed.encode(), digest_size=4).digest(), "big") / 2**32
        return max(0, int(base * (1 + self.jitter * (2 * unit - 1))))


NO_RETRY = RetryPolicy()


@dataclass(frozen=True)
class Concurrency:
    max_running: int | None = None
    policy: str = "allow"

    @property
    def limited(self) -> bool:
        """Whether starts must be admitted under the workflow's row lock."""
        return self.max_running is not None and self.policy != "allow"


@dataclass(frozen=True)
class WorkflowPolicies:
    retry: RetryPolicy = NO_RETRY
    timeout_ms: int | None = None
    concurrency: Concurrency = Concurrency()


def _number(
    raw: Mapping[str, Any],
    key: str,
    path: str,
    out: Problems,
    *,
    low: float,
    high: float | None = None,
    integer: bool = False,
) -> Any:
    value = raw.get(key)
    if value is None:
        return None
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and (not integer or isinstance(value, int))
    )
    if not ok or value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        out[f"{path}.{key}"] = [f"Must be {'a whole number' if integer else 'a number'} {bounds}."]
        return None
    return value


def _duration(raw: Mapping[str, Any], key: str, path: str, out: Problems) -> int | None:
    if raw.get(key) is None:
        return None
    if problem := duration_problem(raw[key], positive=False):
        out[f"{path}.{key}"] = [problem]
        return None
    return duration_ms(raw[key])


def _choice(
    raw: Mapping[str, Any], key: str, path: str, choices: tuple[str, ...], out: Problems
) -> str | None:
    value = raw.get(key)
    if value is not None and value not in choices:
        out[f"{path}.{key}"] = [f"Must be one of {', '.join(choices)}; got {value!r}."]
        return None
    return value


def parse_retry(raw: Any, path: str, out: Problems, default: RetryPolicy = NO_RETRY) -> RetryPolicy:
    if raw is None:
        return default
    if not isinstance(raw, Mapping):
        out[path] = ['Must be an object such as {"maxAttempts": 3, "backoff": "exponential"}.']
        return default
    values = {
        "max_attempts": _number(raw, "maxAttempts", path, out, low=1, high=100, integer=True),
        "backoff": _choice(raw, "backoff", path, BACKOFFS, out),
        "initial_ms": _duration(raw, "initialInterval", path, out),
        "max_ms": _duration(raw, "maxInterval", path, out),
        "multiplier": _number(raw, "multiplier", path, out, low=1, high=100),
        "jitter": _number(raw, "jitter", path, out, low=0, high=1),
        "retry_on": _choice(raw, "retryOn", path, RETRY_ON, out),
    }
    return RetryPolicy(**{**default.__dict__, **{k: v for k, v in values.items() if v is not None}})


def parse_timeout(raw: Any, path: str, out: Problems) -> int | None:
    if raw is None:
        return None
    if problem := duration_problem(raw):
        out[path] = [problem]
        return None
    return duration_ms(raw)


def parse_concurrency(raw: Any, path: str, out: Problems) -> Concurrency:
    if raw is None:
        return Concurrency()
    if not isinstance(raw, Mapping):
        out[path] = ['Must be an object such as {"max": 2, "policy": "queue"}.']
        return Concurrency()
    limit = _number(raw, "max", path, out, low=1, integer=True)
    policy = _choice(raw, "policy", path, CONCURRENCY_POLICIES, out)
    return Concurrency(limit, policy or ("queue" if limit else "allow"))


def parse_settings(raw: Any, out: Problems) -> WorkflowPolicies:
    """The definition's ``settings`` object; problems are keyed ``settings.<field>``."""
    if raw is None:
        return WorkflowPolicies()
    if not isinstance(raw, Mapping):
        out["settings"] = ["Must be an object with retry, timeout and concurrency."]
        return WorkflowPolicies()
    return WorkflowPolicies(
        retry=parse_retry(raw.get("retry"), "settings.retry", out),
        timeout_ms=parse_timeout(raw.get("timeout"), "settings.timeout", out),
        concurrency=parse_concurrency(raw.get("concurrency"), "settings.concurrency", out),
    )
