"""The engine's tunables, each declared once: a field of ``EngineSettings`` with its spec.

A field's name gives its key (``number_of_shards`` -> ``number-of-shards``, the original product's names) and
its environment variable (``WORKFLOW_NUMBER_OF_SHARDS``); its spec gives the kind, the default, the bounds and
the line of documentation. From the fields come:

- ``from_environment()``: ``settings.WORKFLOW_ENGINE``, read from the environment (``settings.py``);
- ``load()``: that dict parsed into an ``EngineSettings``, every problem reported at once in one
  ``ImproperlyConfigured``: unknown keys, bad values, bounds, the timing rules, and the checks that upper
  layers register (``register_check``; the workflows app checks its file roots);
- ``engine_settings``: the parsed settings of this process, typed ``EngineSettings`` so that mypy checks each
  read; it reloads when tests use ``override_settings(WORKFLOW_ENGINE=...)``, as DRF's ``api_settings`` does;
- ``markdown_table()``: the table in ``docs/configuration.md`` (``python -m workflow_engine.tunables
  --markdown``); a test fails when the doc and the fields differ.

This is the platform: it imports nothing from ``apps``. Adding a tunable is adding one field below.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from workflow_engine.env import env_int, env_list, env_str, parse_duration

Kind = Literal["int", "duration", "paths"]
_SPEC = "tunable"


@dataclass(frozen=True)
class Spec:
    """How one tunable is read, bounded and documented. Durations are seconds once parsed."""

    kind: Kind
    default: int | str | tuple[str, ...]  # as written in the environment; ``{data_dir}`` in paths
    doc: str
    low: float | None = None
    high: float | None = None
    dev: int | str | None = None  # the dev profile's default, when it differs
    shown: str | None = None  # the default as the docs show it, when not the plain value
    rule: str = ""  # a further rule, for the docs' range column (enforced by a check)


def whole(default: int, doc: str, *, low: int | None = None, high: int | None = None, **more: Any) -> int:
    """A whole number (``int``)."""
    return cast(int, field(metadata={_SPEC: Spec("int", default, doc, low, high, **more)}))


def duration(
    default: str, doc: str, *, low: float | None = None, high: float | None = None, **more: Any
) -> float:
    """A duration written ``250ms``, ``30s``, ``5m``, ``1h``, ``1d`` or in seconds; parsed to seconds."""
    return cast(float, field(metadata={_SPEC: Spec("duration", default, doc, low, high, **more)}))


def paths(default: tuple[str, ...], doc: str, **more: Any) -> list[Path]:
    """A comma-separated list of paths, each resolved."""
    return cast(list[Path], field(metadata={_SPEC: Spec("paths", default, doc, **more)}))


@dataclass(frozen=True)
class EngineSettings:
    number_of_shards: int = whole(
        100,
        "Shards (and `wf.shard.<n>` queues). Fixed for the life of a database: an execution's shard is "
        "computed once and stored.",
        low=10,
        high=1000,
    )
    snapshot_every: int = whole(
        100,
        "A snapshot each time an execution's journal crosses a multiple of this many events.",
        low=10,
        high=10000,
        dev=50,
    )
    keep_n_snapshots: int = whole(2, "Snapshots kept per execution.", low=1, high=10)
    passivate_idle_entity_after: float = duration(
        "120s", "Idle time after which a cached execution state is dropped.", low=1
    )
    max_cached_entities: int = whole(10000, "Size of each process's LRU of hydrated states.", low=1)
    rebalance_interval: float = duration(
        "10s",
        "How often the leader compares the shard counts of live workers and starts planned hand-offs.",
        low=0.1,
    )
    rebalance_threshold: int = whole(
        1,
        "Hand-offs start only when the most and the least loaded live worker differ by more than this many "
        "shards.",
        low=1,
    )
    max_simultaneous_rebalance: int = whole(
        3, "Most shards in hand-off at once (started and not yet moved).", low=1
    )
    min_nr_of_members: int = whole(
        1,
        "The **first** allocation (while no shard has an owner) waits for this many live workers, for an "
        "even first spread. Afterwards failover and rebalancing go on with any number of live workers.",
        low=1,
    )
    heartbeat_interval: float = duration(
        "1s",
        "Worker liveness beat, and the refresh of node-attempt claims. It also caps the coordinator tick "
        "(`min(0.25 s, this)`).",
        low=0.05,
    )
    liveness_ttl: float = duration(
        "3s",
        "TTL of a member's liveness key and of node-attempt claims. A worker whose key expired loses its "
        "shards. A worker that cannot beat for 3/4 of it stops consuming its shard queues.",
        low=0.2,
        rule="≥ 2 × heartbeat",  # noqa: RUF001 (the docs' sign)
    )
    leader_lease_ttl: float = duration(
        "6s",
        "TTL of the leader lease. It is renewed every third of it, and the leader stops acting after two "
        "thirds without a renewal.",
        low=0.3,
        rule="≥ 3 × min(heartbeat, 1 s)",  # noqa: RUF001
    )
    reconcile_interval: float = duration(
        "1s", "How often a worker re-reads its shard assignment (sooner after a nudge).", low=0.05
    )
    sweep_interval: float = duration(
        "5s",
        "How often the leader's sweeper runs. A command unprocessed for 2 × this is re-sent.",  # noqa: RUF001
        low=0.1,
    )
    handoff_timeout: float = duration(
        "30s",
        "How long the leader waits for an owner to release a shard in hand-off before moving it anyway "
        "(`handoff_timeout`).",
        low=0.1,
    )
    default_node_timeout: float = duration(
        "1h",
        "The attempt timeout of every task node (not inline, not waiting) without a `timeout` of its own, so "
        "a hung attempt always ends. Read when a version is first compiled by a process.",
        low=0.1,
    )
    max_node_output_records: int = whole(
        1_000_000, "A node attempt producing more records fails (not retryable).", low=1
    )
    # below jsonb's 256 MiB per value, so that any output the limit lets through can be stored
    max_node_output_bytes: int = whole(
        64 * 1024 * 1024,
        "The same for the compact JSON size of its output.",
        low=1,
        high=200 * 1024 * 1024,
        shown="67108864 (64 MiB)",
    )
    # an execution whose applies keep failing ends failed; a slow apply does not hold its shard (issue 10)
    max_apply_failures: int = whole(
        5,
        "Applies of one execution that may fail in a row (not counting lost connections, lock timeouts and "
        'time limits) before it ends `failed` with "apply failed N times: ..." in its journal '
        "(docs/security.md).",
        low=1,
        high=100,
    )
    # below the apply tasks' 120 s soft time limit (tasks.APPLY_LIMITS)
    apply_timeout: float = duration(
        "60s",
        "Statement time limit of an apply made on its own; hitting it counts as a failed apply.",
        low=1,
        high=100,
    )
    apply_batch_budget: float = duration(
        "1s",
        "Time limit of each apply in a shard's batch, and the batch's budget: an apply past it is cancelled "
        "and made alone, the rest go back to the doorbell, so one execution cannot hold its shard.",
        low=0.05,
        high=60,
    )
    sweeper_max_redrives: int = whole(
        5,
        "Re-drives of one execution by the sweeper before it is reported (`execution_stuck` cluster event, "
        "`workflow_sweeper_stuck_total`) instead of hinted again.",
        low=1,
    )
    invariant_timer_overdue: float = duration(
        "60s",
        "How late an unfired timer may be before the invariant checker (`check_invariants`, "
        "`GET /api/v1/cluster/invariants`) reports it as `timer_overdue`.",
        low=1,
    )
    # No shared folder (/tmp) in any profile: the engine's own data must never be inside a root.
    # (RUF009: the call returns a dataclasses.field without a default, so no list is shared)
    file_roots: list[Path] = paths(  # noqa: RUF009
        ("{data_dir}/files",),
        "The only directories file nodes may read or write, after resolving links and `..`. Relative node "
        "paths start at the first root. A root that holds or lies inside the engine's own files "
        "(`<data dir>/dev`, `<data dir>/admin-password`, `<data dir>/metrics`, files named by `*_FILE` "
        "variables, the Python environment, the project's source) is refused at start. Gateways check paths "
        "when a workflow is defined, and workers check them again at run time. Use the same value on every "
        "node.",
        shown="`<data dir>/files`",
        rule="none holding or inside the engine's own files",
    )
    # each sql.query's DuckDB database: its memory in MiB and its threads (docs/security.md)
    sql_memory_limit_mb: int = whole(
        256,
        "Memory of each `sql.query`'s DuckDB database, in MiB (nothing spills to disk); past it the node "
        "fails with `OUT_OF_MEMORY`.",
        low=16,
        high=65536,
    )
    sql_threads: int = whole(1, "Threads of each `sql.query`'s DuckDB database.", low=1, high=64)
    # live updates (apps/workflows/api/streams.py): a stream holds one gateway thread for its whole life
    stream_max_duration: float = duration(
        "30s",
        "A live stream (`.../stream`) closes after this long and the client reconnects with `Last-Event-ID`; "
        "a long poll's `wait` is at most this.",
        low=1,
        high=3600,
    )
    stream_max_open: int = whole(
        0,
        "Streams and waiting long polls at once per gateway process; more get 503 with `Retry-After`. "
        "0: half of `GATEWAY_THREADS`. Never more than `GATEWAY_THREADS` - 1, so that streams cannot take "
        "every thread from ordinary requests.",
        low=0,
        high=1024,
    )
    stream_poll_interval: float = duration(
        "500ms",
        "How often a stream or a waiting long poll reads PostgreSQL for news (one indexed query each).",
        low=0.05,
        high=10,
    )
    stream_heartbeat_interval: float = duration(
        "5s",
        "A stream with nothing to send sends a comment this often, so that proxies keep it open and a gone "
        "client is noticed.",
        low=0.5,
        high=300,
    )


# --- the spec, read from the fields -------------------------------------------------------------------------


@dataclass(frozen=True)
class Tunable:
    attr: str
    spec: Spec

    @property
    def key(self) -> str:
        return self.attr.replace("_", "-")

    @property
    def env(self) -> str:
        """The environment variable that sets it (``WORKFLOW_<KEY IN UPPER SNAKE CASE>``)."""
        return "WORKFLOW_" + self.attr.upper()


TUNABLES: tuple[Tunable, ...] = tuple(Tunable(f.name, f.metadata[_SPEC]) for f in fields(EngineSettings))
BY_KEY: Mapping[str, Tunable] = {t.key: t for t in TUNABLES}


def env_name(key: str) -> str:
    """The environment variable that sets ``key``."""
    return BY_KEY[key].env


# --- the environment -> settings.WORKFLOW_ENGINE ------------------------------------------------------------


def from_environment(*, profile: str, data_dir: Path) -> dict[str, Any]:
    """``WORKFLOW_ENGINE`` from the environment; the values are checked later, by ``load``."""
    return {t.key: _from_env(t, profile, data_dir) for t in TUNABLES}


def _from_env(t: Tunable, profile: str, data_dir: Path) -> Any:
    default = t.spec.dev if profile == "dev" and t.spec.dev is not None else t.spec.default
    if t.spec.kind == "int":
        return env_int(t.env, cast(int, default))
    if t.spec.kind == "duration":
        return env_str(t.env, cast(str, default))
    return env_list(t.env, _paths_default(t, data_dir))


def _paths_default(t: Tunable, data_dir: Path) -> list[str]:
    return [p.format(data_dir=data_dir) for p in cast(tuple[str, ...], t.spec.default)]


# --- settings.WORKFLOW_ENGINE -> EngineSettings -------------------------------------------------------------

Check = Callable[[EngineSettings], list[str]]


def _timing_rules(s: EngineSettings) -> list[str]:
    """Timing rules that keep leases safe: renew well before expiry (mechanisms.md §2.5)."""
    errors = []
    if s.heartbeat_interval * 2 > s.liveness_ttl:
        errors.append("liveness-ttl must be at least twice heartbeat-interval")
    if s.leader_lease_ttl < 3 * min(s.heartbeat_interval, 1.0):
        errors.append("leader-lease-ttl must be at least three renewals (3 x min(heartbeat-interval, 1s))")
    return errors


_checks: list[Check] = [_timing_rules]


def register_check(check: Check) -> None:
    """Add a rule that upper layers own (from ``AppConfig.ready()``); it runs on every load, after parsing."""
    if check not in _checks:
        _checks.append(check)


def load(raw: Mapping[str, Any], *, data_dir: Path | None = None) -> EngineSettings:
    """Parse and validate ``WORKFLOW_ENGINE``; every problem is reported at once. Missing keys take the
    profile-independent default (``data_dir``, for paths, defaults to ``settings.DATA_DIR``)."""
    unknown = sorted(set(raw) - set(BY_KEY))  # only possible through settings.py, not the environment
    errors = [f"unknown key {k!r} (known: {', '.join(sorted(BY_KEY))})" for k in unknown]
    values: dict[str, Any] = {}
    for t in TUNABLES:
        try:
            values[t.attr] = _parse(t, raw[t.key] if t.key in raw else _default(t, data_dir))
        except (ImproperlyConfigured, TypeError, ValueError) as exc:
            errors.append(str(exc))
    loaded = None if errors else EngineSettings(**values)
    if loaded is not None:
        errors = [problem for check in _checks for problem in check(loaded)]
    if errors or loaded is None:
        raise ImproperlyConfigured("WORKFLOW_ENGINE: " + "; ".join(errors))
    return loaded


def _default(t: Tunable, data_dir: Path | None) -> Any:
    if t.spec.kind == "paths":
        return _paths_default(t, data_dir if data_dir is not None else Path(settings.DATA_DIR))
    return t.spec.default


def _parse(t: Tunable, value: Any) -> Any:
    if t.spec.kind == "paths":
        return [Path(p).resolve() for p in value]
    low, high = t.spec.low, t.spec.high
    parsed: float = (
        parse_duration(value, name=f"{t.key} ({t.env})") if t.spec.kind == "duration" else _int(t, value)
    )
    if (low is not None and parsed < low) or (high is not None and parsed > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ImproperlyConfigured(f"{t.key} ({t.env})={value!r} must be {bounds}")
    return parsed


def _int(t: Tunable, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ImproperlyConfigured(f"{t.key} ({t.env})={value!r} must be a whole number")
    return value


# --- this process's settings --------------------------------------------------------------------------------


class _Lazy:
    """Parses ``settings.WORKFLOW_ENGINE`` on first use, and again after ``setting_changed``."""

    value: EngineSettings | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)

    def get(self) -> EngineSettings:
        if self.value is None:
            self.value = load(dict(settings.WORKFLOW_ENGINE))
        return self.value


_lazy = _Lazy()
# Typed as what it stands for, so that mypy checks every read (``engine_settings.number_of_shards: int``).
engine_settings = cast(EngineSettings, _lazy)


def reload() -> EngineSettings:
    """Parse the settings again, now: a bad configuration raises ``ImproperlyConfigured`` here."""
    _lazy.value = None
    return _lazy.get()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "WORKFLOW_ENGINE":
        _lazy.value = None


setting_changed.connect(_on_setting_changed)


# --- docs/configuration.md ----------------------------------------------------------------------------------

TABLE_BEGIN = "<!-- tunables: generated by `python -m workflow_engine.tunables --write-docs`; do not edit -->"
TABLE_END = "<!-- end of tunables -->"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def markdown_table() -> str:
    """The tunables table of ``docs/configuration.md``."""
    lines = ["| key | variable | default | range | meaning |", "|---|---|---|---|---|"]
    lines += [
        f"| `{t.key}` | `{t.env}` | {_shown_default(t.spec)} | {_shown_range(t.spec)} | {t.spec.doc} |"
        for t in TUNABLES
    ]
    return "\n".join(lines) + "\n"


def _shown_default(spec: Spec) -> str:
    if spec.shown is not None:
        return spec.shown
    shown = f"`{spec.default}`" if spec.kind == "duration" else str(spec.default)
    return shown if spec.dev is None else f"{shown} (dev: {spec.dev})"


def _shown_range(spec: Spec) -> str:
    if spec.kind == "paths":
        return "list of paths" + (f", {spec.rule}" if spec.rule else "")
    unit = " s" if spec.kind == "duration" else ""
    if spec.high is not None:
        shown = f"{_number(spec.low)}–{_number(spec.high)}{unit}"  # noqa: RUF001 (an en dash, as in the docs)
    else:
        shown = f"≥ {_number(spec.low)}{unit}"
    return shown + (f" and {spec.rule}" if spec.rule else "")


def _number(value: float | None) -> str:
    return str(int(value)) if value is not None and float(value).is_integer() else str(value)


def documented_table(text: str) -> str:
    """The generated part of ``text`` (the doc), between the markers."""
    start, end = text.index(TABLE_BEGIN) + len(TABLE_BEGIN) + 1, text.index(TABLE_END)
    return text[start:end]


def with_table(text: str) -> str:
    """``text`` with the part between the markers replaced by ``markdown_table()``."""
    start, end = text.index(TABLE_BEGIN) + len(TABLE_BEGIN) + 1, text.index(TABLE_END)
    return text[:start] + markdown_table() + text[end:]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m workflow_engine.tunables", description=__doc__)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--markdown", action="store_true", help="print the tunables table")
    action.add_argument("--write-docs", action="store_true", help=f"rewrite the table in {DOCS}")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown_table())
    else:
        DOCS.write_text(with_table(DOCS.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
