"""What apps above the workflows app add to it, registered in their ``AppConfig.ready()``; the workflows
app never imports them (the schedules app keeps a definition's ``metadata.schedule`` in step).

- ``on_definition_saved``: called inside the transaction that stores a new version of a definition (create
  or update); raising an ``EngineError`` rolls the version back and answers the error (through the API, a
  400 makes the body a draft with the error's details as its problems). Never called for a draft.
- ``on_created_fields``: fields added to the answer to ``POST /api/v1/workflows`` (``scheduleStatus``);
  called with ``None`` for a draft, which nothing was kept in step with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apps.workflows.models import Workflow

DefinitionSaved = Callable[["Workflow", Any], None]
CreatedFields = Callable[[Any], Mapping[str, Any]]

_definition_saved: list[DefinitionSaved] = []
_created_fields: list[CreatedFields] = []


def on_definition_saved(fn: DefinitionSaved) -> DefinitionSaved:
    if fn not in _definition_saved:  # ready() may run more than once
        _definition_saved.append(fn)
    return fn


def on_created_fields(fn: CreatedFields) -> CreatedFields:
    # a lambda is a new object each time ready() runs: keep one per registering module
    _created_fields[:] = [f for f in _created_fields if f.__module__ != fn.__module__] + [fn]
    return fn


def definition_saved(workflow: Workflow, body: Any) -> None:
    for fn in _definition_saved:
        fn(workflow, body)


def created_fields(body: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fn in _created_fields:
        out.update(fn(body))
    return out
