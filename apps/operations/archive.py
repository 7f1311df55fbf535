"""The backup file: one gzip-compressed tar, ``manifest.json`` first, then one member per table.

Each table member is the table in PostgreSQL's ``COPY`` text format (one row per line, every type in its own
exact text form), so a restore loads what was dumped bit for bit, whatever the column types. The manifest says
what the file holds and how to check it: the format and application versions, the migration state (the
``django_migrations`` rows), each table's columns, row count and sha256, and the sha256 of all the table data
in manifest order. The manifest comes first so that a reader learns what a file is without reading it whole.

This module knows files, not databases: ``backup.py`` fills and loads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from apps.operations.errors import OperationError

FORMAT = "workflow-engine-backup"
FORMAT_VERSION = 1  # raised when a reader of the previous version could not read the new files
MANIFEST = "manifest.json"
CHUNK = 1 << 20


def app_version() -> str:
    """The version of workflow-engine that writes a file (the installed distribution's)."""
    try:
        return metadata.version("workflow-engine")
    except metadata.PackageNotFoundError:  # run from a checkout that was not installed
        return "unknown"


@dataclass(frozen=True)
class TableEntry:
    name: str
    columns: list[str]
    rows: int
    bytes: int
    sha256: str

    @property
    def member(self) -> str:
        return f"tables/{self.name}.copy"


@dataclass(frozen=True)
class Manifest:
    format_version: int
    app_version: str
    created_at: str  # ISO 8601, the database's clock at the snapshot
    server_version: str
    migrations: list[tuple[str, str]]  # (app, name) rows of django_migrations
    tables: list[TableEntry]
    sha256: str  # of every table member's bytes, in this order

    def to_json(self) -> bytes:
        body = {"format": FORMAT, **asdict(self)}
        body["migrations"] = [list(m) for m in self.migrations]
        return json.dumps(body, indent=1).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            body = json.loads(raw)
            if body.get("format") != FORMAT:
                raise OperationError(f"not a workflow-engine backup (format {body.get('format')!r})")
            version = int(body["format_version"])
            if version > FORMAT_VERSION:
                raise OperationError(
                    f"the backup's format version is {version}; this version of workflow-engine reads "
                    f"up to {FORMAT_VERSION}: restore it with the version that wrote it "
                    f"({body.get('app_version')}) or newer"
                )
            return cls(
                format_version=version,
                app_version=str(body["app_version"]),
                created_at=str(body["created_at"]),
                server_version=str(body.get("server_version", "")),
                migrations=[(str(app), str(name)) for app, name in body["migrations"]],
                tables=[TableEntry(**entry) for entry in body["tables"]],
                sha256=str(body["sha256"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise OperationError(f"the backup's manifest is unreadable: {exc!r}") from exc

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)


class Spool:
    """Table data written to temporary files while the snapshot is open, hashed and counted as it comes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.tables: list[TableEntry] = []

    def table(self, name: str, columns: list[str], chunks: Iterator[bytes]) -> TableEntry:
        digest, size, rows = hashlib.sha256(), 0, 0
        with (self.directory / f"{name}.copy").open("wb") as f:
            for chunk in chunks:
                f.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                rows += chunk.count(b"\n")  # COPY's text format escapes newlines inside values
        entry = TableEntry(name=name, columns=columns, rows=rows, bytes=size, sha256=digest.hexdigest())
        self.tables.append(entry)
        return entry

    def content_sha256(self) -> str:
        digest = hashlib.sha256()
        for entry in self.tables:
            with (self.directory / f"{entry.name}.copy").open("rb") as f:
                while chunk := f.read(CHUNK):
                    digest.update(chunk)
        return digest.hexdigest()

    def write(self, path: Path, manifest: Manifest) -> None:
        """Write the file next to ``path`` and rename it into place: a failed backup leaves no half file."""
        partial = path.with_name(path.name + ".partial")
        # 0600 from the first byte: the file holds password and token hashes (docs/security.md)
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        private = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(private, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            _add(tar, MANIFEST, io.BytesIO(manifest.to_json()), None)
            for entry in manifest.tables:
                _add(tar, entry.member, None, self.directory / f"{entry.name}.copy")
        os.replace(partial, path)


def _add(tar: tarfile.TarFile, name: str, data: io.BytesIO | None, path: Path | None) -> None:
    info = tarfile.TarInfo(name)
    if path is not None:
        info.size = path.stat().st_size
        with path.open("rb") as f:
            tar.addfile(info, f)
    else:
        assert data is not None
        info.size = len(data.getbuffer())
        tar.addfile(info, data)


def read_manifest(path: Path) -> Manifest:
    """The manifest, read from the head of the file only."""
    with _open(path) as tar:
        first = _next(tar, path)
        if first is None or first.name != MANIFEST:
            raise OperationError(f"{path} has no manifest first: it was not written by `manage.py backup`")
        return Manifest.from_json(_extract(tar, first).read())


def tables(path: Path, manifest: Manifest) -> Iterator[tuple[TableEntry, IO[bytes]]]:
    """Each table's member in manifest order, as a stream (read once, front to back)."""
    expected = iter(manifest.tables)
    with _open(path) as tar:
        _next(tar, path)  # the manifest
        for entry in expected:
            member = _next(tar, path)
            if member is None or member.name != entry.member:
                found = member.name if member else "the end of the file"
                raise OperationError(f"{path}: expected {entry.member}, found {found}: the file is damaged")
            yield entry, _extract(tar, member)


def verify(path: Path, manifest: Manifest) -> None:
    """Check every table's size, row count and sha256, and the content's sha256; name what does not match."""
    total = hashlib.sha256()
    for entry, stream in tables(path, manifest):
        digest, size, rows = hashlib.sha256(), 0, 0
        while chunk := _read(stream, path):
            digest.update(chunk)
            total.update(chunk)
            size += len(chunk)
            rows += chunk.count(b"\n")
        if (digest.hexdigest(), size, rows) != (entry.sha256, entry.bytes, entry.rows):
            raise OperationError(
                f"{path}: table {entry.name} does not match its checksum "
                f"(sha256 {digest.hexdigest()[:12]}..., manifest {entry.sha256[:12]}...; "
                f"{rows} rows, manifest {entry.rows}): the file is damaged or was changed; "
                "restore another backup"
            )
    if total.hexdigest() != manifest.sha256:
        raise OperationError(
            f"{path}: the content's sha256 is {total.hexdigest()}, the manifest says {manifest.sha256}: "
            "the file is damaged or was changed; restore another backup"
        )


def _open(path: Path) -> tarfile.TarFile:
    try:
        # stream mode: the members are read in order, never seeked, so a large file is read once
        return tarfile.open(path, "r|gz")
    except FileNotFoundError:
        raise OperationError(f"{path}: no such file") from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise OperationError(f"{path} is not a backup file (a gzip-compressed tar): {exc}") from exc


def _next(tar: tarfile.TarFile, path: Path) -> tarfile.TarInfo | None:
    try:
        return tar.next()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise OperationError(f"{path} is damaged (cannot read the next member: {exc})") from exc


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    stream = tar.extractfile(member)
    if stream is None:
        raise OperationError(f"member {member.name} is not a file: the backup is damaged")
    return stream


def _read(stream: IO[bytes], path: Path) -> bytes:
    try:
        return stream.read(CHUNK)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise OperationError(f"{path} is damaged (truncated or corrupt: {exc})") from exc


def as_dict(manifest: Manifest) -> dict[str, Any]:
    return dict(json.loads(manifest.to_json()))
