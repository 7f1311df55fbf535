"""The engine's tunables, read once from ``settings.WORKFLOW_ENGINE`` and validated.

Keys keep the original product's names (``number-of-shards``, ``snapshot-every`` ...). Unknown keys and values
out of range fail at start with ``ImproperlyConfigured``, as the original's ConfigValidator intended (it was
never called). The object reloads when tests use ``override_settings(WORKFLOW_ENGINE=...)``, as DRF's
``api_settings`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from apps.workflows.private_paths import root_problems
from workflow_engine.env import parse_duration

# key: (kind, default, low, high). Durations are in seconds after parsing.
_SPEC: dict[str, tuple[str, Any, float | None, float | None]] = {
    "number-of-shards": ("int", 100, 10, 1000),
    "snapshot-every": ("int", 100, 10, 10000),
    "keep-n-snapshots": ("int", 2, 1, 10),
    "passivate-idle-entity-after": ("duration", "120s", 1, None),
    "max-cached-entities": ("int", 10000, 1, None),
    "rebalance-interval": ("duration", "10s", 0.1, None),
    "rebalance-threshold": ("int", 1, 1, None),
    "max-simultaneous-rebalance": ("int", 3, 1, None),
    "min-nr-of-members": ("int", 1, 1, None),
    "heartbeat-interval": ("duration", "1s", 0.05, None),
    "liveness-ttl": ("duration", "3s", 0.2, None),
    "leader-lease-ttl": ("duration", "6s", 0.3, None),
    "reconcile-interval": ("duration", "1s", 0.05, None),
    "sweep-interval": ("duration", "5s", 0.1, None),
    "handoff-timeout": ("duration", "30s", 0.1, None),
    "default-node-timeout": ("duration", "1h", 0.1, None),
    "max-node-output-records": ("int", 1_000_000, 1, None),
    # below jsonb's 256 MiB per value, so that any output the limit lets through can be stored
    "max-node-output-bytes": ("int", 64 * 1024 * 1024, 1, 200 * 1024 * 1024),
    "max-apply-failures": ("int", 5, 1, 100),
    # below the apply tasks' 120 s soft time limit (tasks.APPLY_LIMITS)
    "apply-timeout": ("duration", "60s", 1, 100),
    "apply-batch-budget": ("duration", "1s", 0.05, 60),
    "sweeper-max-redrives": ("int", 5, 1, None),
    "file-roots": ("paths", [], None, None),
    # each sql.query's DuckDB database: its memory in MiB and its threads (docs/security.md)
    "sql-memory-limit-mb": ("int", 256, 16, 65536),
    "sql-threads": ("int", 1, 1, 64),
}


@dataclass(frozen=True)
class EngineSettings:
    number_of_shards: int
    snapshot_every: int
    keep_n_snapshots: int
    passivate_idle_entity_after: float
    max_cached_entities: int
    rebalance_interval: float
    rebalance_threshold: int
    max_simultaneous_rebalance: int
    min_nr_of_members: int
    heartbeat_interval: float
    liveness_ttl: float
    leader_lease_ttl: float
    reconcile_interval: float
    sweep_interval: float
    handoff_timeout: float
    default_node_timeout: float
    max_node_output_records: int
    max_node_output_bytes: int
    max_apply_failures: int
    apply_timeout: float
    apply_batch_budget: float
    sweeper_max_redrives: int
    file_roots: list[Path]
    sql_memory_limit_mb: int
    sql_threads: int


def load(raw: dict[str, Any]) -> EngineSettings:
    """Parse and validate ``WORKFLOW_ENGINE``; every problem is reported at once."""
    unknown = sorted(set(raw) - set(_SPEC))  # only possible through settings.py, not the environment
    errors = [f"unknown key {k!r} (known: {', '.join(sorted(_SPEC))})" for k in unknown]
    values: dict[str, Any] = {}
    for key, (kind, default, low, high) in _SPEC.items():
        try:
            values[key.replace("-", "_")] = _parse(key, kind, raw.get(key, default), low, high)
        except (ImproperlyConfigured, TypeError, ValueError) as exc:
            errors.append(str(exc))
    errors.extend(_cross_checks(values) if not errors else [])
    errors.extend(root_problems(values["file_roots"]) if not errors else [])
    if errors:
        raise ImproperlyConfigured("WORKFLOW_ENGINE: " + "; ".join(errors))
    return EngineSettings(**values)


def _parse(key: str, kind: str, value: Any, low: float | None, high: float | None) -> Any:
    if kind == "paths":
        return [Path(p).resolve() for p in value]
    parsed: float = (
        parse_duration(value, name=f"{key} ({env_name(key)})") if kind == "duration" else _int(key, value)
    )
    if (low is not None and parsed < low) or (high is not None and parsed > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ImproperlyConfigured(f"{key} ({env_name(key)})={value!r} must be {bounds}")
    return parsed


def env_name(key: str) -> str:
    """The environment variable that sets ``key`` (settings.py reads ``WORKFLOW_<KEY>``)."""
    return "WORKFLOW_" + key.upper().replace("-", "_")


def _int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ImproperlyConfigured(f"{key} ({env_name(key)})={value!r} must be a whole number")
    return value


def _cross_checks(v: dict[str, Any]) -> list[str]:
    """Timing rules that keep leases safe: renew well before expiry (mechanisms.md §2.5)."""
    errors = []
    if v["heartbeat_interval"] * 2 > v["liveness_ttl"]:
        errors.append("liveness-ttl must be at least twice heartbeat-interval")
    if v["leader_lease_ttl"] < 3 * min(v["heartbeat_interval"], 1.0):
        errors.append("leader-lease-ttl must be at least three renewals (3 x min(heartbeat-interval, 1s))")
    return errors


class _Lazy:
    """Module-level handle that parses settings on first use and again after ``setting_changed``."""

    _value: EngineSettings | None = None

    def __getattr__(self, name: str) -> Any:
        if self._value is None:
            self._value = load(dict(settings.WORKFLOW_ENGINE))
        return getattr(self._value, name)

    def reload(self) -> None:
        self._value = None


engine_settings: Any = _Lazy()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "WORKFLOW_ENGINE":
        engine_settings.reload()


setting_changed.connect(_on_setting_changed)
