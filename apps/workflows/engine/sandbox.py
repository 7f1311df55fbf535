"""What an operator allows node configs to reach, as one pure value that validation is given.

The checks of a definition that depend on configuration (the HTTP allow-list, the file roots and the engine's
private paths, the Celery tasks, the database connections, the Python callables) read it from a ``Sandbox``
instead of from Django's settings, so that the engine and the node descriptions validate a definition in a
bare Python. ``apps/workflows/nodes/sandbox.py`` builds the current one from the settings; tests build their
own. The defaults allow nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from apps.workflows.engine.paths import Private
from apps.workflows.engine.urlpolicy import AllowList

# A SQL text's problem for sql.query (None: one statement that parses). Parsing takes DuckDB, which the engine
# does not import: the nodes layer gives its parser here.
SqlParser = Callable[[str], str | None]


@dataclass(frozen=True)
class Sandbox:
    # WORKFLOW_HTTP_ALLOWED_HOSTS, parsed: the hosts http.request may call
    http_allow: AllowList = field(default_factory=lambda: AllowList(()))
    # WORKFLOW_FILE_ROOTS: file nodes' paths must resolve inside one; relative paths start at the first
    file_roots: tuple[Path, ...] = ()
    # the engine's own files, which no file node may touch even inside a root
    private_paths: tuple[Private, ...] = ()
    # WORKFLOW_CELERY_TASKS: the task names celery.task may send ("*": any)
    celery_tasks: tuple[str, ...] = ()
    # WORKFLOW_CONNECTION_<NAME>: each connection's lower-case name and its URL's scheme (never the URL,
    # which holds credentials)
    connections: Mapping[str, str] = field(default_factory=dict)
    # WORKFLOW_PYTHON_CALLABLES: the dotted paths python.call may name
    python_callables: tuple[str, ...] = ()
    # sql.query's statement parser; None: only the checks that need no parser run
    sql_parser: SqlParser | None = None
