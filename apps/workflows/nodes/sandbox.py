"""The node sandbox of this process, read from the settings: what validation is given and nodes re-check.

Each setting is read here and nowhere else in the node layer: ``current_sandbox()`` gathers them into the
pure ``Sandbox`` that ``validate``/``compile_definition`` take, and the implementations call the single
readers (``allow_list``, ``allowed_roots``, ``connection_urls``, ``python_callables``) again when they run,
because the settings may have changed since the workflow was defined. Values are read on each call, so
``override_settings`` and reloaded tunables take effect at once.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.workflows.engine.sandbox import Sandbox
from apps.workflows.engine.urlpolicy import SETTING, AllowList
from apps.workflows.nodes.sql import duckdb_statement_problem
from apps.workflows.private_paths import private_paths
from workflow_engine.tunables import engine_settings


def allow_list() -> AllowList:
    """``WORKFLOW_HTTP_ALLOWED_HOSTS``, parsed. A bad entry is a configuration error (checked at start)."""
    return _parse_allow_list(tuple(getattr(settings, SETTING, [])))


@functools.lru_cache(maxsize=8)
def _parse_allow_list(entries: tuple[str, ...]) -> AllowList:
    try:
        return AllowList.parse(entries)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{SETTING}: {exc}") from exc


def allowed_roots() -> list[Path]:
    """``WORKFLOW_FILE_ROOTS`` (the ``file-roots`` tunable)."""
    return [Path(root) for root in engine_settings.file_roots]


def connection_urls() -> Mapping[str, str]:
    """``WORKFLOW_CONNECTION_<NAME>``: each connection's URL, credentials included, by lower-case name."""
    urls: Mapping[str, str] = getattr(settings, "WORKFLOW_CONNECTIONS", {})
    return urls


def python_callables() -> list[str]:
    """``WORKFLOW_PYTHON_CALLABLES``: the dotted paths python.call may name."""
    return list(getattr(settings, "WORKFLOW_PYTHON_CALLABLES", []))


def current_sandbox() -> Sandbox:
    """The sandbox the settings describe now; connections by scheme only, so no credential leaves here."""
    return Sandbox(
        http_allow=allow_list(),
        file_roots=tuple(allowed_roots()),
        private_paths=tuple(private_paths()),
        celery_tasks=tuple(settings.WORKFLOW_CELERY_TASKS),
        connections={name: urlsplit(url).scheme for name, url in connection_urls().items()},
        python_callables=tuple(python_callables()),
        sql_parser=duckdb_statement_problem,
    )
