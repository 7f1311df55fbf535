"""The journal: hydrating an execution's state and appending its events, snapshots included.

Hydrated states are kept in a per-process LRU with an idle timeout (passivation). A cached state is only a
starting point: it is always checked against ``execution.last_seq`` read under the row lock, and only the
missing events are folded in.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence

from apps.workflows import metrics
from apps.workflows.engine import state as st
from apps.workflows.models import Event, Execution, Snapshot
from workflow_engine.tunables import engine_settings

logger = logging.getLogger(__name__)


class _EntityCache:
    """``{execution_id: (state, last_used)}``, least recently used first."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, tuple[st.ExecutionState, float]] = OrderedDict()

    def get(self, execution_id: str) -> st.ExecutionState | None:
        self._passivate()
        item = self._items.pop(execution_id, None)
        if item is None:
            return None
        self._items[execution_id] = (item[0], time.monotonic())
        return item[0]

    def put(self, state: st.ExecutionState) -> None:
        self._items.pop(state.execution_id, None)
        if not state.terminal:
            self._items[state.execution_id] = (state, time.monotonic())
        while len(self._items) > engine_settings.max_cached_entities:
            self._items.popitem(last=False)
        metrics.workflow_entity_count.set(len(self._items))

    def drop(self, execution_id: str) -> None:
        self._items.pop(execution_id, None)
        metrics.workflow_entity_count.set(len(self._items))

    def clear(self) -> None:
        self._items.clear()
        metrics.workflow_entity_count.set(0)

    def _passivate(self) -> None:
        deadline = time.monotonic() - engine_settings.passivate_idle_entity_after
        passivated = False
        while self._items and next(iter(self._items.values()))[1] < deadline:
            self._items.popitem(last=False)
            passivated = True
        if passivated:
            metrics.workflow_entity_count.set(len(self._items))

    def __len__(self) -> int:
        return len(self._items)


cache = _EntityCache()


def _records(rows: Sequence[Event]) -> list[st.EventRecord]:
    return [st.EventRecord(e.seq, e.type, e.payload) for e in rows]


def events_of(execution_id: str, after_seq: int = 0) -> list[st.EventRecord]:
    rows = Event.objects.filter(execution_id=execution_id, seq__gt=after_seq).order_by("seq")
    return _records(list(rows.only("seq", "type", "payload")))


def _from_snapshot(execution: Execution) -> st.ExecutionState:
    empty = st.ExecutionState(execution.id, execution.workflow_id)
    snap = Snapshot.objects.filter(execution_id=execution.id).order_by("-seq").first()
    if snap is None:
        return empty
    try:
        return st.from_json(snap.state)
    except ValueError:
        logger.warning(
            "snapshot ignored, replaying in full", extra={"execution_id": execution.id, "seq": snap.seq}
        )
        return empty


def hydrate(execution: Execution) -> st.ExecutionState:
    """The state at ``execution.last_seq`` (call with the row locked)."""
    if execution.last_seq == 0:  # nothing written yet: no snapshot or event to read
        return st.ExecutionState(execution.id, execution.workflow_id)
    state = cache.get(execution.id)
    if state is None or state.last_seq > execution.last_seq:
        state = _from_snapshot(execution)
    if state.last_seq < execution.last_seq:
        state = st.fold(state, events_of(execution.id, state.last_seq))
    return state


def maybe_snapshot(before_seq: int, state: st.ExecutionState) -> None:
    """Every ``snapshot-every`` events, keep ``keep-n-snapshots``. Same transaction as the events."""
    every = engine_settings.snapshot_every
    if before_seq // every == state.last_seq // every:
        return
    Snapshot.objects.create(
        execution_id=state.execution_id,
        seq=state.last_seq,
        schema_version=st.SCHEMA_VERSION,
        state=st.to_json(state),
    )
    keep = Snapshot.objects.filter(execution_id=state.execution_id).order_by("-seq")
    old = keep.values_list("seq", flat=True)[engine_settings.keep_n_snapshots :]
    Snapshot.objects.filter(execution_id=state.execution_id, seq__in=list(old)).delete()
    metrics.workflow_snapshots_total.inc()
