"""Which files file nodes may touch: the path policy, over roots and private paths it is given. Pure.

Workflows are defined over an API, so a path in a node's config is untrusted input. Every path is resolved
(symbolic links and ``..`` included) before it is checked: it must fall inside one of the file roots (a
relative path starts at the first root, never at the working directory), and never inside the engine's own
files (``Private``: its data directory's servers and secrets, secret files, the Python environment, the
source). A path to write is resolved through a real directory to a name that is not a link.

The roots and the private paths come in a ``Sandbox`` (``engine/sandbox.py``), built from the settings by
``apps/workflows/nodes/sandbox.py``. Validation checks a path when a workflow is defined; the file nodes check
it again when they run, because the filesystem (or the settings) may have changed in between. Resolving reads
the filesystem (``os.path.realpath``), as it must: a link planted in a root is only seen there.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class FilePathError(ValueError):
    """A path outside the allowed file roots, or inside the engine's own files; the config must change."""


@dataclass(frozen=True)
class Private:
    """A private path, and the part of it that is not (None: all of it is private)."""

    path: Path
    why: str
    except_within: Path | None = None

    def holds(self, path: Path) -> bool:
        if not is_within(path, self.path):
            return False
        return self.except_within is None or not is_within(path, self.except_within)


def is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def real(path: str | Path) -> Path:
    """``path`` with every link and ``..`` resolved, whether or not it exists."""
    return Path(os.path.realpath(path))


def private_reason(path: Path, private: Sequence[Private]) -> str | None:
    """Why the resolved ``path`` is private, or None when a file node may use it."""
    return next((p.why for p in private if p.holds(path)), None)


def resolve_path(
    path: str, roots: Sequence[Path], private: Sequence[Private], *, for_writing: bool = False
) -> Path:
    """The real path ``path`` names; relative paths start at the first root. Raises ``FilePathError``.

    ``for_writing``: the directory is resolved and the last name kept, which must not be a link, so that a
    write replaces a file inside the roots rather than following a link planted there.
    """
    if not roots:
        raise FilePathError(f"path {path} cannot be used: no file roots are allowed; set WORKFLOW_FILE_ROOTS")
    if "\x00" in path:
        raise FilePathError("the path contains a NUL character")
    candidate = Path(path) if os.path.isabs(path) else roots[0] / path
    resolved = _writable(path, candidate) if for_writing else real(candidate)
    if not any(is_within(resolved, real(root)) for root in roots):
        listed = ", ".join(str(root) for root in roots)
        raise FilePathError(
            f"path {path} is outside the allowed file roots ({listed}); set WORKFLOW_FILE_ROOTS"
        )
    if reason := private_reason(resolved, private):
        raise FilePathError(f"path {path} is inside {reason}, which file nodes may never use")
    return resolved


def _writable(path: str, candidate: Path) -> Path:
    if candidate.name in ("", ".", ".."):
        raise FilePathError(f"path {path} does not name a file")
    target = real(candidate.parent) / candidate.name
    if target.is_dir():
        raise FilePathError(f"path {path} is a directory; a sink writes a file")
    if target.is_symlink():
        raise FilePathError(
            f"path {path} is a symbolic link; a sink writes only to a file, not through a link"
        )
    return target
