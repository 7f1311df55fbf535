"""Read a systemd unit of deploy/systemd and run its command line as systemd would, in a temporary root.

``UnitRun`` does what systemd does before ``ExecStart=``, and no more: it creates the unit's
``RuntimeDirectory=``/``StateDirectory=``... (under the temporary root), builds the environment from
``Environment=`` lines then ``EnvironmentFile=`` (which wins, as in systemd), expands specifiers (``%H``,
``%%``) and ``${VAR}``/``$VAR`` in the command line, and starts it in ``WorkingDirectory=`` under the kernel
part of the unit's sandbox (``tests/deploy/sandbox.py``). Absolute paths of the host
(``/opt/workflow-engine``, ``/run``, ``/var/lib``, ``/srv``, ``/etc/workflow-engine/env``) are mapped into
the test's root, so nothing outside it is created: a directory the unit does not declare is missing here as
it would be on a host.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent.parent
UNIT_DIR = ROOT / "deploy" / "systemd"
INSTALL_DIR = "/opt/workflow-engine"
ENV_FILE = "/etc/workflow-engine/env"
# systemd's own directories for RuntimeDirectory= and the like, relative to the root
MANAGED_DIRECTORIES = {
    "RuntimeDirectory": ("run", "RUNTIME_DIRECTORY"),
    "StateDirectory": ("var/lib", "STATE_DIRECTORY"),
    "CacheDirectory": ("var/cache", "CACHE_DIRECTORY"),
    "LogsDirectory": ("var/log", "LOGS_DIRECTORY"),
    "ConfigurationDirectory": ("etc", "CONFIGURATION_DIRECTORY"),
}


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as ``{section: {key: [values in order]}}`` (comments and continuation lines handled)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def read_env_file(text: str) -> dict[str, str]:
    """``KEY=value`` lines of an ``EnvironmentFile=`` (env.example's format: no quotes, no ``export``)."""
    env = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"not a KEY=value line in the environment file: {raw!r}"
            env[key.strip()] = value.strip()
    return env


def expand_specifiers(text: str, unit_name: str, home: str) -> str:
    values = {
        "%": "%",
        "H": socket.gethostname(),
        "h": home,
        "n": unit_name,
        "N": unit_name.rsplit(".", 1)[0],
    }

    def one(match: re.Match[str]) -> str:
        letter = match.group(1)
        assert letter in values, f"{unit_name}: specifier %{letter} is not one this emulation knows"
        return values[letter]

    return re.sub(r"%(.)", one, text)


def expand_command(words: list[str], env: dict[str, str]) -> list[str]:
    """systemd's rules: ``$VAR`` alone as a word splits on whitespace; ``${VAR}`` is substituted as is."""
    argv: list[str] = []
    for word in words:
        whole = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if whole:
            argv.extend(env.get(whole.group(1), "").split())
            continue
        argv.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), word))
    return argv


def syscall_group(name: str, analyze: str) -> set[str]:
    """The system calls of ``@group`` (nested groups expanded), from ``systemd-analyze syscall-filter``."""
    out = subprocess.run([analyze, "syscall-filter", name], capture_output=True, text=True, check=True).stdout
    calls: set[str] = set()
    for line in out.splitlines()[1:]:
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        calls |= syscall_group(item, analyze) if item.startswith("@") else {item}
    return calls


def allowed_syscalls(filters: list[str], analyze: str) -> set[str]:
    """The allow-list of a unit's ``SystemCallFilter=`` lines (an allow-list first, then ``~`` removals)."""
    allowed: set[str] = set()
    for line in filters:
        deny = line.startswith("~")
        names: set[str] = set()
        for item in line.lstrip("~").split():
            names |= syscall_group(item, analyze) if item.startswith("@") else {item}
        allowed = allowed - names if deny else allowed | names
    return allowed


@dataclass
class UnitRun:
    """One unit's command line, started as a real process in ``root`` with ``env_file`` as its environment
    file; ``extra_env`` are further ``KEY=value`` lines of that file (the test's database, ports...)."""

    unit_path: Path
    root: Path
    env_file_values: dict[str, str]
    unit_text: str = ""
    analyze: str | None = shutil.which("systemd-analyze")
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)
    env: dict[str, str] = field(init=False, default_factory=dict)
    argv: list[str] = field(init=False, default_factory=list)
    pre_argvs: list[list[str]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.unit_text = self.unit_text or self.unit_path.read_text()
        self.service = parse_unit(self.unit_text)["Service"]
        self.log_path = self.root / f"{self.unit_path.stem}.log"

    def host_path(self, text: str) -> str:
        """A path (or a value holding paths) of the host, moved into the temporary root."""
        text = text.replace(f"{INSTALL_DIR}/.venv/bin/python", sys.executable)
        text = text.replace(INSTALL_DIR, str(ROOT)).replace(ENV_FILE, str(self.root / ENV_FILE.lstrip("/")))
        for top in ("/run/", "/var/lib/", "/var/log/", "/var/cache/", "/srv/"):
            text = re.sub(rf"(?<![\w/.-]){re.escape(top)}", f"{self.root}{top}", text)
        return text

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        env_path = Path(self.host_path(ENV_FILE))
        env_path.parent.mkdir(parents=True, exist_ok=True)
        env_path.write_text("".join(f"{k}={self.host_path(v)}\n" for k, v in self.env_file_values.items()))
        home = self.root / "home"
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(home),
            "USER": "workflow",
        }
        for key, (base, variable) in MANAGED_DIRECTORIES.items():
            made = []
            for value in self.service.get(key, []):
                for name in value.split():
                    path = self.root / base / name
                    path.mkdir(parents=True, exist_ok=True)
                    made.append(str(path))
            if made:
                env[variable] = ":".join(made)
        name = self.unit_path.name
        for line in self.service.get("Environment", []):
            for assignment in shlex.split(expand_specifiers(line, name, str(home))):
                key, _, value = assignment.partition("=")
                env[key] = self.host_path(value)
        for line in self.service.get("EnvironmentFile", []):
            path = Path(self.host_path(line.lstrip("-")))
            if path.exists() or not line.startswith("-"):
                env.update(read_env_file(path.read_text()))  # a missing file fails the start, as in systemd
        self.env = env
        (exec_start,) = self.service["ExecStart"]
        self.argv = self._command(exec_start, env)
        self.pre_argvs = [self._command(line, env) for line in self.service.get("ExecStartPre", [])]

    def _command(self, line: str, env: dict[str, str]) -> list[str]:
        line = expand_specifiers(line.lstrip("-@+!:"), self.unit_path.name, str(self.root / "home"))
        words = shlex.split(self.host_path(line))
        return self._sandboxed(expand_command(words, env))

    def _sandboxed(self, argv: list[str]) -> list[str]:
        service = self.service
        flags = []
        if service.get("NoNewPrivileges") == ["yes"]:
            flags.append("--no-new-privileges")
        if service.get("MemoryDenyWriteExecute") == ["yes"]:
            flags.append("--deny-write-execute")
        if service.get("UMask"):
            flags += ["--umask", service["UMask"][-1]]
        if service.get("SystemCallFilter") and self.analyze:
            flags += [
                "--syscalls",
                ",".join(sorted(allowed_syscalls(service["SystemCallFilter"], self.analyze))),
            ]
        return [sys.executable, "-m", "tests.deploy.sandbox", *flags, "--", *argv]

    def start(self) -> UnitRun:
        self.prepare()
        (workdir,) = self.service.get("WorkingDirectory", [str(self.root)])
        log = self.log_path.open("ab")
        # tests.deploy.sandbox is found from the repository; the unit's own environment is otherwise untouched
        env = {**self.env, "PYTHONPATH": str(ROOT)} if "PYTHONPATH" not in self.env else self.env
        for argv in [*self.pre_argvs, self.argv]:  # as systemd: each ExecStartPre must succeed, in order
            self.process = subprocess.Popen(
                argv,
                cwd=self.host_path(workdir),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            if argv is not self.argv and self.process.wait(timeout=120) != 0:
                break  # the unit failed before its main process: self.process is the failed one
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self, lines: int = 80) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """KillMode=mixed: SIGTERM to the main process, then SIGKILL to whatever is left after
        TimeoutStopSec (the unit's cgroup here: every descendant seen before the stop)."""
        if self.process is None:
            return
        try:
            family = [
                psutil.Process(self.process.pid),
                *psutil.Process(self.process.pid).children(recursive=True),
            ]
        except psutil.NoSuchProcess:
            family = []
        timeout = float(self.service.get("TimeoutStopSec", ["90"])[-1])
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        for member in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()
        self.process.wait(timeout=10)
