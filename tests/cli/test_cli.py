"""The ``wfe`` command line as a person and a script use it: a real subprocess (``python -m wfe``, the same
code as ``.venv/bin/wfe``) against a real node, read through its exit codes, its JSON output and, for
``--watch``, a pseudo-terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from devservices import free_port
from tests.conftest import make_token
from tests.harness import Api, wait_for
from tests.integration.test_executions import step, workflow

pytestmark = pytest.mark.usefixtures("live_db")
ROOT = Path(__file__).resolve().parents[2]


def env_for(api: Api | None, tmp: Path, token: str | None = None, **extra: str) -> dict[str, str]:
    """A clean environment: no Django settings or database, no user config file; WFE_URL/WFE_TOKEN set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WFE_", "DJANGO_", "DATABASE_"))}
    env.update(WFE_CONFIG=str(tmp / "wfe.toml"), PYTHONPATH=str(ROOT), COLUMNS="200")
    if api is not None:
        env.update(WFE_URL=api.base, WFE_TOKEN=token or api.token)
    env.update(extra)
    return env


def wfe(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wfe", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def simple(workflow_id: str, **extra: Any) -> dict[str, Any]:
    return workflow(
        workflow_id,
        [
            step("nums", "sequence.numbers", "source", start=1, end=3),
            step("keep", "filter", "transform", condition="value > 1"),
            step("out", "console.log", "sink"),
        ],
        [("nums", "keep"), ("keep", "out")],
    )


def failing(workflow_id: str) -> dict[str, Any]:
    return workflow(
        workflow_id,
        [
            step("rows", "memory.collection", "source", data=[{"a": 1}, {"b": 2}]),
            step("keep", "filter", "transform", condition="a > 0"),
            step("out", "console.log", "sink"),
        ],
        [("rows", "keep"), ("keep", "out")],
    )


def delayed(workflow_id: str) -> dict[str, Any]:
    return workflow(
        workflow_id,
        [
            step("nums", "sequence.numbers", "source", start=1, end=2),
            step("wait", "delay", "transform", duration="1h"),
            step("out", "console.log", "sink"),
        ],
        [("nums", "wait"), ("wait", "out")],
    )


def write(tmp: Path, name: str, value: Any) -> Path:
    path = tmp / name
    path.write_text(json.dumps(value))
    return path


def create(api: Api, body: dict[str, Any]) -> str:
    status, answer = api.post("/api/v1/workflows", body)
    assert status == 201, answer
    return str(body["id"])


def test_apply_creates_a_workflow_then_updates_it_to_a_new_version(
    api: Api, uid: str, tmp_path: Path
) -> None:
    env = env_for(api, tmp_path)
    body = simple(f"cli-apply-{uid}")
    first = wfe(env, "workflows", "apply", "-f", str(write(tmp_path, "wf.json", body)), "-o", "json")
    assert first.returncode == 0, first.stderr
    [created] = json.loads(first.stdout)
    assert created["created"] is True and created["version"] == 1 and created["valid"] is True
    body["description"] = "changed"
    second = wfe(env, "workflows", "apply", "-f", str(write(tmp_path, "wf.json", body)), "-o", "json")
    assert second.returncode == 0, second.stderr
    [updated] = json.loads(second.stdout)
    assert updated["created"] is False and updated["version"] == 2
    assert api.get(f"/api/v1/workflows/{body['id']}")[1]["description"] == "changed"
    table = wfe(env, "workflows", "apply", "-f", str(tmp_path / "wf.json"))
    assert table.returncode == 0 and f"cli-apply-{uid}: unchanged, version 2" in table.stdout


def test_apply_saves_an_invalid_definition_as_a_draft_and_exits_1_naming_the_field(
    api: Api, uid: str, tmp_path: Path
) -> None:
    body = simple(f"cli-draft-{uid}")
    del body["nodes"][1]["config"]["condition"]
    done = wfe(env_for(api, tmp_path), "workflows", "apply", "-f", str(write(tmp_path, "d.json", body)))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "nodes[1].config.condition" in done.stdout


def test_validate_runs_offline_with_the_apis_field_level_problems(tmp_path: Path) -> None:
    env = env_for(None, tmp_path, WFE_URL=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    good = write(tmp_path, "good.json", simple("good"))
    bad_body = simple("bad")
    del bad_body["nodes"][1]["config"]["condition"]
    bad_body["edges"].append({"id": "e9", "source": "out", "target": "ghost"})
    bad = write(tmp_path, "bad.json", [simple("also-good"), bad_body])
    ok = wfe(env, "workflows", "validate", str(good))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "valid" in ok.stdout
    failed = wfe(env, "workflows", "validate", str(bad), "-o", "json")
    assert failed.returncode == 1, failed.stderr
    results = json.loads(failed.stdout)
    assert [r["valid"] for r in results] == [True, False]
    problems = results[1]["problems"]
    assert "nodes[1].config.condition" in problems and any(
        "ghost" in m for m in problems.get("edges[2].target", [])
    )


def test_run_wait_exits_0_when_completed_and_1_when_failed(api: Api, uid: str, tmp_path: Path) -> None:
    env = env_for(api, tmp_path)
    good, bad = create(api, simple(f"cli-ok-{uid}")), create(api, failing(f"cli-fail-{uid}"))
    done = wfe(env, "run", good, "--wait", "-o", "json", "--input", "day=2026-05-01", "--input", "n=3")
    assert done.returncode == 0, done.stderr
    execution = json.loads(done.stdout)
    assert execution["status"] == "completed" and execution["input"] == {"day": "2026-05-01", "n": 3}
    failed = wfe(env, "run", bad, "--wait")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "failed" in failed.stdout


def test_run_wait_exits_3_when_cancelled_from_another_call(api: Api, uid: str, tmp_path: Path) -> None:
    env = env_for(api, tmp_path)
    workflow_id = create(api, delayed(f"cli-cancel-{uid}"))
    waiting = subprocess.Popen(
        [sys.executable, "-m", "wfe", "run", workflow_id, "--wait"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert waiting.stdout is not None
        execution_id = waiting.stdout.readline().split(":")[0]
        assert execution_id.startswith("exec_"), execution_id
        wait_for(
            "the delay to wait",
            lambda: any(
                n.get("status") == "waiting"
                for n in api.get(f"/api/v1/executions/{execution_id}")[1]["nodes"]
            ),
            timeout=30,
        )
        cancelled = wfe(env, "executions", "cancel", execution_id, "--reason", "from the cli test")
        assert cancelled.returncode == 0, cancelled.stderr
        assert waiting.wait(timeout=60) == 3
    finally:
        waiting.kill()
        waiting.wait()


def test_run_wait_exits_4_when_the_timeout_passes_first(api: Api, uid: str, tmp_path: Path) -> None:
    env = env_for(api, tmp_path)
    started = time.monotonic()
    done = wfe(
        env, "run", create(api, delayed(f"cli-timeout-{uid}")), "--wait", "--timeout", "3", "-o", "json"
    )
    assert done.returncode == 4, done.stdout + done.stderr
    assert 2.5 < time.monotonic() - started < 30
    assert "still running" in done.stderr
    execution_id = api.get(f"/api/v1/executions?workflowId=cli-timeout-{uid}")[1]["executions"][0][
        "executionId"
    ]
    api.post(f"/api/v1/executions/{execution_id}/cancel")


def test_watch_shows_a_live_table_of_nodes_and_a_progress_bar_in_a_terminal(
    api: Api, uid: str, tmp_path: Path
) -> None:
    workflow_id = create(api, simple(f"cli-watch-{uid}"))
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wfe", "run", workflow_id, "--watch"],
        env=env_for(api, tmp_path, TERM="xterm"),
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        cwd=ROOT,
    )
    os.close(terminal)
    screen = b""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 1)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed: the process ended
                break
            if not chunk:
                break
            screen += chunk
        elif proc.poll() is not None:
            break
    os.close(controller)
    assert proc.wait(timeout=30) == 0
    text = screen.decode("utf-8", "replace")
    assert "\x1b[" in text  # drawn for a terminal: colours and cursor moves
    for node_id in ("nums", "keep", "out"):
        assert node_id in text
    assert "nodes done" in text and "3/3" in text and "completed" in text


def test_json_output_is_the_apis_objects(api: Api, uid: str, tmp_path: Path) -> None:
    env = env_for(api, tmp_path)
    workflow_id = create(api, simple(f"cli-json-{uid}"))
    started = json.loads(wfe(env, "run", workflow_id, "-o", "json").stdout)
    execution_id = started["executionId"]
    api.wait_finished(execution_id)
    listed = json.loads(wfe(env, "executions", "list", "--workflow", workflow_id, "-o", "json").stdout)
    assert [e["executionId"] for e in listed["executions"]] == [execution_id] and listed["nextCursor"] is None
    shown = json.loads(wfe(env, "--output", "json", "executions", "show", execution_id).stdout)
    assert shown == api.get(f"/api/v1/executions/{execution_id}")[1]
    events = json.loads(wfe(env, "executions", "events", execution_id, "-o", "json").stdout)
    assert events[0]["type"] == "WorkflowStarted" and events[-1]["type"] == "WorkflowCompleted"
    workflows = json.loads(wfe(env, "workflows", "list", "--q", f"cli-json-{uid}", "-o", "json").stdout)
    assert [w["id"] for w in workflows] == [workflow_id]
    stats = json.loads(wfe(env, "cluster", "status", "-o", "json").stdout)
    assert stats["status"] in ("Up", "Degraded") and "leader" in stats


def test_a_refused_connection_exits_7_naming_the_server_and_where_it_came_from(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = wfe(env_for(None, tmp_path, WFE_URL=url, WFE_TOKEN="x"), "workflows", "list")
    assert done.returncode == 7, done.stderr
    assert url in done.stderr and "connection refused" in done.stderr and "WFE_URL" in done.stderr


def test_a_bad_token_exits_6_naming_the_server(api: Api, tmp_path: Path) -> None:
    done = wfe(env_for(api, tmp_path, token="not-a-token"), "workflows", "list")
    assert done.returncode == 6, done.stderr
    assert "401" in done.stderr and api.base in done.stderr and "token was refused" in done.stderr


def test_a_viewer_cancelling_exits_6_with_the_403(api: Api, uid: str, tmp_path: Path) -> None:
    workflow_id = create(api, delayed(f"cli-viewer-{uid}"))
    execution_id = api.post(f"/api/v1/workflows/{workflow_id}/execute")[1]["executionId"]
    try:
        viewer = make_token(f"cli-viewer-{uid}", "viewer")
        done = wfe(env_for(api, tmp_path, token=viewer), "executions", "cancel", execution_id)
        assert done.returncode == 6, done.stderr
        assert "403" in done.stderr and api.base in done.stderr and "permission_denied" in done.stderr
    finally:
        api.post(f"/api/v1/executions/{execution_id}/cancel")


def test_an_unknown_workflow_exits_5_naming_the_server_and_profile(
    api: Api, uid: str, tmp_path: Path
) -> None:
    env = env_for(api, tmp_path)
    del env["WFE_URL"], env["WFE_TOKEN"]
    added = wfe(env, "profile", "add", "staging", "--url", api.base, "--token", api.token)
    assert added.returncode == 0, added.stderr
    done = wfe(env, "run", f"never-made-{uid}")
    assert done.returncode == 5, done.stderr
    assert "404" in done.stderr and api.base in done.stderr and "profile 'staging'" in done.stderr


def test_profiles_are_kept_in_the_config_file_and_chosen_by_name(api: Api, tmp_path: Path) -> None:
    env = env_for(api, tmp_path)
    del env["WFE_URL"], env["WFE_TOKEN"]
    dead = f"http://127.0.0.1:{free_port()}"
    assert wfe(env, "profile", "add", "live", "--url", api.base, "--token", api.token).returncode == 0
    assert wfe(env, "profile", "add", "dead", "--url", dead, "--token", "x", "--default").returncode == 0
    assert (tmp_path / "wfe.toml").stat().st_mode & 0o077 == 0  # it holds tokens
    listed = json.loads(wfe(env, "profile", "list", "-o", "json").stdout)
    assert {p["name"]: p["default"] for p in listed} == {"dead": True, "live": False}
    assert "x" not in json.dumps(listed).replace("default", "")  # tokens are not shown
    refused = wfe(env, "workflows", "list")
    assert refused.returncode == 7 and "profile 'dead'" in refused.stderr
    assert wfe(env, "--profile", "live", "workflows", "list", "-o", "json").returncode == 0
    assert wfe({**env, "WFE_PROFILE": "live"}, "cluster", "status").returncode == 0
    assert wfe(env, "profile", "use", "live").returncode == 0
    assert wfe(env, "workflows", "list").returncode == 0
    unknown = wfe(env, "--profile", "nope", "workflows", "list")
    assert unknown.returncode == 2 and "No profile 'nope'" in unknown.stderr


def test_tokens_are_created_listed_and_revoked_by_an_admin(api: Api, uid: str, tmp_path: Path) -> None:
    env = env_for(api, tmp_path)
    created = wfe(env, "tokens", "create", f"cli-{uid}", "--expires", "1d", "-o", "json")
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)
    assert wfe(env_for(api, tmp_path, token=token["token"]), "workflows", "list").returncode == 0
    listed = json.loads(wfe(env, "tokens", "list", "-o", "json").stdout)
    assert token["id"] in [t["id"] for t in listed]
    assert wfe(env, "tokens", "revoke", str(token["id"])).returncode == 0
    assert wfe(env_for(api, tmp_path, token=token["token"]), "workflows", "list").returncode == 6
