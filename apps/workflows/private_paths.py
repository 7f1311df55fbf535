"""The engine's own files, which no file root may hold and no file node may touch.

File nodes take paths from workflow definitions, which come over the API. Were the engine's data inside a file
root, a definition could read its secrets (the admin password, the embedded PostgreSQL's data) or write code
that Python runs at its next start (a ``.pth`` file in the virtual environment's site-packages). So:

- at start, ``root_problems`` refuses any ``WORKFLOW_FILE_ROOTS`` entry that holds one of these paths or lies
  inside one (registered with the tunables in ``apps.py``, ``workflow_engine.tunables.register_check``);
- when a workflow is defined, validation refuses a path inside one (``private_paths`` goes into the
  ``Sandbox``, ``apps/workflows/nodes/sandbox.py``), and when a file node runs, ``nodes/files.checked_path``
  refuses it again, in case the filesystem changed.

The policy over these paths is pure (``apps.workflows.engine.paths``); this module reads them from the
settings and the environment.

The project's source directory is private too, except the data directory when it lies inside it (as
``./run``'s ``.data``): its ``files`` folder is the default root, and its private parts are listed apart.
"""

from __future__ import annotations

import os
import site
import sys
from pathlib import Path

from django.conf import settings

from apps.workflows.engine.paths import Private, is_within, real

# Inside WORKFLOW_DATA_DIR: the embedded servers of ./run (PostgreSQL, Redis), the admin password written by
# manage.py bootstrap, and the Prometheus multiprocess files.
DATA_DIR_PRIVATE = ("dev", "admin-password", "metrics")


def private_paths() -> list[Private]:
    """Every path of the engine's own, resolved; read from the settings and the environment on each call."""
    data = real(settings.DATA_DIR)
    found = [Private(data / name, "the engine's data directory") for name in DATA_DIR_PRIVATE]
    # Secrets given as files (SECRET_KEY_FILE, WORKFLOW_CONNECTION_<NAME>_FILE, ...; workflow_engine.env).
    found += [
        Private(real(value), f"a secret file ({name})")
        for name, value in os.environ.items()
        if name.endswith("_FILE") and value.strip()
    ]
    python = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        *site.getsitepackages(),
        site.getusersitepackages(),
    }
    found += [Private(real(p), "the Python environment") for p in sorted(python) if p]
    source = real(settings.BASE_DIR)
    exempt = data if data != source and is_within(data, source) else None
    found.append(Private(source, "the project's source directory", except_within=exempt))
    return found


def root_problems(roots: list[Path]) -> list[str]:
    """Why each root may not be a file root: it holds private paths or lies inside one."""
    problems = []
    for root in roots:
        resolved = real(root)
        for private in private_paths():
            inside = private.holds(resolved)
            holds = is_within(private.path, resolved)
            if inside or holds:
                where = "is inside" if inside else "contains"
                problems.append(
                    f"file-roots (WORKFLOW_FILE_ROOTS): {root} {where} {private.path}, {private.why}; "
                    "file nodes must never reach the engine's own files"
                )
                break
    return problems
