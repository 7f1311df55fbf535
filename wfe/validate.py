"""Offline validation of a definition with the pure engine: the problems the API's 400 ``details`` (and a
draft's ``problems``) would list, keyed by the same field paths, without a server or Django.

The API validates against its sandbox: what the operator allows nodes to reach
(``WORKFLOW_HTTP_ALLOWED_HOSTS``, ``WORKFLOW_FILE_ROOTS``, ``WORKFLOW_CELERY_TASKS``,
``WORKFLOW_CONNECTION_<NAME>``, ``WORKFLOW_PYTHON_CALLABLES``).
A laptop does not know the server's, so the problems that depend on it (every such message names its setting)
are set apart as ``server_checks``: reported, but not counted as invalid. Everything else (the DSL's shape,
the graph, node types, each node's config, expressions, durations, policies) is checked as the API does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apps.workflows.engine import validation
from apps.workflows.engine.sandbox import Sandbox

# The settings a sandbox-dependent problem names (apps/workflows/engine/nodetypes, paths.py, urlpolicy.py).
SERVER_SETTINGS = (
    "WORKFLOW_HTTP_ALLOWED_HOSTS",
    "WORKFLOW_FILE_ROOTS",
    "WORKFLOW_CELERY_TASKS",
    "WORKFLOW_CONNECTION_",
    "WORKFLOW_PYTHON_CALLABLES",
)


@dataclass
class Result:
    problems: dict[str, list[str]] = field(default_factory=dict)  # the definition is invalid when non-empty
    server_checks: dict[str, list[str]] = field(default_factory=dict)  # depend on the server's configuration

    @property
    def valid(self) -> bool:
        return not self.problems


def validate(body: Any, sandbox: Sandbox | None = None) -> Result:
    """Validate ``body`` (a definition dict) as the API would, under ``sandbox`` (default: allows nothing,
    and its problems are set apart as ``server_checks``)."""
    try:
        validation.validate(body, sandbox or Sandbox())
    except validation.DefinitionInvalid as exc:
        return _split(exc.problems)
    return Result()


def _split(problems: dict[str, list[str]]) -> Result:
    result = Result()
    for path, messages in problems.items():
        for message in messages:
            target = result.server_checks if any(s in message for s in SERVER_SETTINGS) else result.problems
            target.setdefault(path, []).append(message)
    return result
