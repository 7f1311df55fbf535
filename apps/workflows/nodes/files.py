"""How file nodes reach their files when they run: the path checked again, errors named, atomic writes.

The path policy itself (inside ``WORKFLOW_FILE_ROOTS``, never in the engine's own files, a sink only through
a real directory to a name that is not a link) is ``apps.workflows.engine.paths``; validation applies it when
a workflow is defined, and ``checked_path`` again when a node runs, because the filesystem (or the settings)
may have changed in between.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import re
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from apps.workflows.engine.paths import FilePathError, resolve_path
from apps.workflows.nodes.base import NodeError
from apps.workflows.nodes.sandbox import current_sandbox


def checked_path(path: str, *, for_writing: bool = False) -> Path:
    """The real path ``path`` names, checked again when the node runs against the current roots and private
    paths (the filesystem or the settings may have changed since validation); a refusal is a ``NodeError``
    that is never retryable, since the config must change."""
    sandbox = current_sandbox()
    try:
        return resolve_path(path, sandbox.file_roots, sandbox.private_paths, for_writing=for_writing)
    except FilePathError as exc:
        raise NodeError(str(exc), retryable=False) from exc


def io_error(node: str, path: Path, exc: OSError) -> NodeError:
    """An ``OSError`` as a ``NodeError``: a missing file will not appear by itself; a full disk may clear."""
    if isinstance(exc, FileNotFoundError):
        return NodeError(f"{node}: no such file: {path}", retryable=False)
    if isinstance(exc, IsADirectoryError):
        return NodeError(f"{node}: {path} is a directory", retryable=False)
    if isinstance(exc, (PermissionError, NotADirectoryError)):
        return NodeError(f"{node}: cannot use {path}: {exc.strerror}", retryable=False)
    return NodeError(f"{node}: {path}: {exc.strerror or exc}", retryable=True)


def decode_error(node: str, path: Path, exc: UnicodeDecodeError) -> NodeError:
    # exc.start counts from the start of the decoded chunk, not of the file, so it is not reported.
    return NodeError(f"{node}: {path} is not valid {exc.encoding}: {exc.reason}")


def write_atomically(path: Path, chunks: Iterable[str], *, encoding: str, key: str) -> None:
    """Replace ``path`` with ``chunks`` all at once, so readers and re-runs never see a partial file.

    The temporary file sits in the same directory (``os.replace`` is only atomic within a filesystem). Its
    name is the idempotency key plus a per-run suffix: two runs of one attempt at the same time (a paused
    worker and the re-drive of its attempt) each write their own complete file and the last rename wins,
    with the same content. It is flushed and fsynced before the rename, and the directory after, so that a
    crash leaves either the old file or the complete new one; leftovers of crashed runs are removed later.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}.{_file_safe(key)}."
    temporary = path.with_name(f"{prefix}{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(temporary, "w", encoding=encoding, newline="") as handle:
            handle.writelines(chunks)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    _remove_stale(path.parent, prefix)


STALE_SECONDS = 3600.0


def _remove_stale(directory: Path, prefix: str) -> None:
    """Temporary files of this attempt left by crashed runs (an hour old: no run still writes them)."""
    cutoff = time.time() - STALE_SECONDS
    for leftover in directory.glob(f"{glob.escape(prefix)}*.tmp"):
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()


def _file_safe(key: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", key)
    return cleaned if len(cleaned) <= 100 else hashlib.sha256(key.encode()).hexdigest()[:32]


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; some platforms cannot open directories, where this is a no-op.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
