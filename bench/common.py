"""What every benchmark shares: its own PostgreSQL and Redis, Django set up in this process, a cluster of
real processes, the machine's description and the JSON result file.

    with BenchEnv("throughput", extra_env={"WORKFLOW_MIN_NR_OF_MEMBERS": "1"}) as env:
        env.cluster.start_coordinator()
        env.cluster.start_worker("w0")
        ...
        env.write_result(summary)
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devservices import PostgresServer, RedisServer, free_port  # noqa: E402


class BenchEnv:
    """Throwaway servers in a temporary directory, migrated, with Django set up against them.

    ``proc_env`` is the environment of the processes the benchmark starts (``cluster``); this process uses
    the same database and Redis. Leaving the block stops the cluster first, then the servers.
    """

    def __init__(self, name: str, extra_env: dict[str, str] | None = None) -> None:
        self.name = name
        self.workdir = Path(tempfile.mkdtemp(prefix=f"wfe-bench-{name}-"))
        self.pg = PostgresServer(self.workdir / "pg", free_port())
        self.redis = RedisServer(self.workdir / "redis", free_port())
        self.extra_env = extra_env or {}
        self.proc_env: dict[str, str] = {}
        self.cluster: Any = None

    def __enter__(self) -> BenchEnv:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        self.pg.start()
        self.pg.ensure_database("bench")
        self.redis.start()
        urls = {"DATABASE_URL": self.pg.url("bench"), "REDIS_URL": self.redis.url(0)}
        self.proc_env = {
            **os.environ,
            **urls,
            "WORKFLOW_PROFILE": "test",
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "json",
            "WORKFLOW_DATA_DIR": str(self.workdir),
            **self.extra_env,
        }
        manage = [sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"]
        subprocess.run(manage, env=self.proc_env, check=True)
        # this process validates definitions too: its file roots are the nodes' (<data dir>/files)
        os.environ.update(
            {**urls, "DEBUG": "false", "WORKFLOW_DATA_DIR": str(self.workdir), **self.extra_env}
        )
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_engine.settings")
        import django

        django.setup()
        from tests.harness import Cluster

        self.cluster = Cluster(self.workdir, self.proc_env)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
        self.redis.stop()
        self.pg.stop()

    def write_result(self, summary: dict[str, Any]) -> Path:
        return write_result(self.name, summary)


def write_result(name: str, summary: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, **summary, "machine": machine()}, indent=2))
    return path


def machine() -> dict[str, Any]:
    import celery
    import django

    return {
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "celery": celery.__version__,
        "django": django.get_version(),
    }


def wait(what: str, check: Callable[[], Any], timeout: float = 120, interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; exit the benchmark after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise SystemExit(f"timed out waiting for {what}")


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100) by linear interpolation; ``values`` need not be sorted."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)
