"""Logs of real processes with ``LOG_FORMAT=json``: every line one JSON object, gunicorn's and Celery's own
lines included, and a failure that repeats while PostgreSQL or Redis is down logged a bounded number of
times, with its count, instead of once per retry (workflow_engine/logs.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import TOKEN, Scenario, http_status, pipeline
from tests.harness import Api, Proc, free_port, wait_for

pytestmark = pytest.mark.cluster

WINDOW = 3  # LOG_REPEAT_WINDOW of these processes, seconds
OUTAGE = 9.0  # seconds PostgreSQL or Redis is down: three windows


def records(proc: Proc) -> list[dict[str, Any]]:
    """Every line ``proc`` wrote, parsed; fails naming the first lines that are not one JSON object."""
    lines = Path(proc.log_path).read_text().splitlines()
    parsed, bad = [], []
    for number, line in enumerate(lines, 1):
        try:
            fields = json.loads(line)
            assert isinstance(fields, dict) and {"ts", "level", "logger", "msg"} <= fields.keys()
            parsed.append(fields)
        except (ValueError, AssertionError):
            bad.append(f"{number}: {line[:160]!r}")
    assert not bad, f"{len(bad)} of {len(lines)} lines of {proc.name} are not JSON records:\n" + "\n".join(
        bad[:20]
    )
    return parsed


def test_every_line_of_a_node_is_one_json_object_gunicorn_and_celery_banner_included(
    make_scenario: Callable[..., Scenario],
) -> None:
    s = make_scenario(env={"LOG_FORMAT": "json", "LOG_LEVEL": "INFO", "GATEWAY_ACCESS_LOG": "1"})
    http = free_port()
    node = s.cluster.start_node(http, free_port())
    api = Api(f"http://127.0.0.1:{http}", TOKEN)
    wait_for("the node's gateway", lambda: http_status(f"{api.base}/health/ready") == 200, 60)
    body, _ = pipeline("logs", s.out / "logs.txt")  # with a node task: Celery's task lines too
    assert api.post("/api/v1/workflows", body)[0] == 201
    status, started = api.post("/api/v1/workflows/logs/execute")
    assert status == 200, started
    assert api.wait_finished(started["executionId"])["status"] == "completed"
    node.stop()  # SIGTERM: the shutdown lines of gunicorn, Celery and run_node too

    lines = records(node)
    loggers = {line["logger"] for line in lines}
    assert {"gunicorn.error", "gunicorn.access", "workflow_engine.celery"} <= loggers, loggers
    banner = [line for line in lines if line["msg"] == "celery worker starting"]
    assert len(banner) == 1 and "wf.nodes" in banner[0]["queues"], banner
    assert any(line["msg"].startswith("Listening at: http://127.0.0.1") for line in lines)
    assert any("Warm shutdown" in line["msg"] for line in lines)
    assert not [line for line in lines if line["msg"].startswith("Started consuming from")]


def failures(lines: list[dict[str, Any]], message: str) -> tuple[int, int]:
    """(records written, failures they stand for) of ``message``: a summary stands for its count."""
    written = [line for line in lines if line["msg"].startswith(message)]
    return len(written), sum(int(line.get("repeated", 1)) for line in written)


def test_a_coordinator_failing_every_round_while_postgresql_is_down_logs_it_once_per_window_with_a_count(
    make_scenario: Callable[..., Scenario],
) -> None:
    s = make_scenario(dedicated_pg=True, env={"LOG_FORMAT": "json", "LOG_REPEAT_WINDOW": str(WINDOW)})
    assert s.postgres is not None
    coordinator = s.coordinator("c1")
    wait_for("a leader", lambda: s.term()[0] > 0, 30)
    down = time.monotonic()
    s.postgres.stop()
    time.sleep(OUTAGE)
    s.postgres.start()
    outage = time.monotonic() - down  # stopping and starting take a while too
    time.sleep(1)
    coordinator.stop()  # its handler writes what it held back when the process ends

    written, stood_for = failures(records(coordinator), "coordinator round failed")
    print(f"\nPostgreSQL down {outage:.1f}s: {stood_for} failed rounds in {written} records")
    # a round every 250 ms: ~36 failures; at most one full record and one summary per window
    windows = int(outage / WINDOW) + 2
    assert stood_for >= 10, f"only {stood_for} failures logged"
    assert written <= 2 * windows, f"{written} records for {stood_for} failures in {outage:.1f}s"
    with_traceback = [line for line in records(coordinator) if "exc" in line]
    assert len(with_traceback) <= windows


def test_a_worker_losing_redis_writes_json_records_only_and_each_kind_of_failure_a_bounded_number_of_times(
    make_scenario: Callable[..., Scenario],
) -> None:
    s = make_scenario(env={"LOG_FORMAT": "json", "LOG_REPEAT_WINDOW": str(WINDOW)})
    worker = s.worker("w1")
    s.coordinator("c1")
    s.wait_ready(["w1"])
    s.redis_server.stop()
    time.sleep(OUTAGE)
    s.redis_server.start()
    s.wait_ready(["w1"], timeout=60)
    worker.stop()

    lines = records(worker)
    kinds: dict[tuple[str, str], int] = {}
    for line in lines:
        if line["level"] in ("WARNING", "ERROR", "CRITICAL") and "repeated" not in line:
            kind = (line["logger"], line["msg"][:60])
            kinds[kind] = kinds.get(kind, 0) + 1
    print(f"\nRedis down {OUTAGE:.0f}s: {len(lines)} records; warnings and errors by kind: {kinds}")
    assert not [line for line in lines if line["msg"].strip() in ("^", "~")], "a traceback in fragments"
    noisy = {kind: n for kind, n in kinds.items() if n > OUTAGE / WINDOW + 2}
    assert not noisy, f"logged more than once per {WINDOW} s window: {noisy}"
