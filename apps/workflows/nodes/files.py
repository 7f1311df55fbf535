"""Which files file nodes may touch, and how they write them.

Workflows are defined over an API, so a path in a node's config is untrusted input. Every path is resolved
(symbolic links and ``..`` included) before it is checked: it must fall inside one of the configured roots
(``WORKFLOW_FILE_ROOTS``; a relative path starts at the first root, never at the working directory), and
never inside the engine's own files (``apps.workflows.private_paths``: its data directory's servers and
secrets, secret files, the Python environment, the source). A sink writes only through a real directory to a
name that is not a link. Nodes check this when a workflow is defined, so a bad path is rejected up front, and
again when they run, because the filesystem (or the setting) may have changed in between.
"""

from __future__ import annotations

import codecs
import contextlib
import glob
import hashlib
import os
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from apps.workflows.nodes.base import NodeError
from apps.workflows.private_paths import is_within, private_reason, real


class FilePathError(NodeError, ValueError):
    """A path outside the allowed file roots; never retryable, the config must change."""


def allowed_roots() -> list[Path]:
    """The configured roots; imported lazily because the settings object needs Django configured."""
    from apps.workflows.conf import engine_settings

    return [Path(root) for root in engine_settings.file_roots]


def resolve_path(path: str, *, for_writing: bool = False) -> Path:
    """The real path ``path`` names; relative paths start at the first root. Raises ``FilePathError``.

    ``for_writing``: the directory is resolved and the last name kept, which must not be a link, so that a
    write replaces a file inside the roots rather than following a link planted there.
    """
    roots = allowed_roots()
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
    if reason := private_reason(resolved):
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


def path_problems(
    config: Mapping[str, Any], key: str = "path", *, for_writing: bool = False
) -> dict[str, list[str]]:
    """``check`` helper: the path policy's verdict on ``config[key]``, as a validation problem."""
    try:
        resolve_path(config[key], for_writing=for_writing)
    except FilePathError as exc:
        return {key: [str(exc)]}
    return {}


def encoding_problems(config: Mapping[str, Any], key: str = "encoding") -> dict[str, list[str]]:
    """Only text encodings: ``codecs.lookup`` also knows bytes-to-bytes codecs (zlib_codec, base64_codec,
    rot13...) that ``open()`` refuses only once a node runs."""
    try:
        info = codecs.lookup(config[key])
    except (LookupError, ValueError):  # ValueError: a NUL character in the name
        return {key: [f"Unknown encoding {config[key][:100]!r}."]}
    if not getattr(info, "_is_text_encoding", True):
        return {key: [f"{config[key]!r} is not a text encoding; use one such as utf-8, latin-1 or cp1252."]}
    return {}


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
