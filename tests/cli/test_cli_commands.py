"""The rest of ``wfe``'s commands against a real node, as a script uses them: the installed console script,
builder files, schedules, the cluster, every execution command, and what each role may do. The CLI runs as
a real subprocess (tests/cli/test_cli.py's helpers); what it did is read back through the API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import wfe as wfe_package
from devservices import free_port
from tests.cli.test_cli import ROOT, create, delayed, env_for, failing, simple, wfe, write
from tests.conftest import make_token
from tests.harness import Api, wait_for
from tests.integration.test_control import signal_workflow
from tests.integration.test_executions import step, workflow
from tests.integration.test_schedules import _stop_schedules  # noqa: F401 - autouse: stops our schedules
from wfe.cli import exits

pytestmark = pytest.mark.usefixtures("live_db")


def ok(done: subprocess.CompletedProcess[str]) -> Any:
    """The JSON a command printed, after checking that it exited 0."""
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def event_types(api: Api, execution_id: str) -> list[str]:
    return [e["type"] for e in api.get(f"/api/v1/executions/{execution_id}/events")[1]["events"]]


def wait_waiting(api: Api, execution_id: str, count: int = 1) -> None:
    wait_for(
        f"{count} NodeWaiting of {execution_id}",
        lambda: event_types(api, execution_id).count("NodeWaiting") >= count,
        timeout=30,
    )


def wait_status(api: Api, execution_id: str, status: str) -> None:
    wait_for(
        f"{execution_id} to be {status}",
        lambda: api.get(f"/api/v1/executions/{execution_id}")[1]["status"] == status,
        timeout=30,
    )


# --- the console script ------------------------------------------------------------------------------------


def test_the_console_script_is_installed_and_its_help_lists_every_exit_code(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "wfe"
    assert script.is_file() and os.access(script, os.X_OK), f"{script}: not installed (pip install -e .)"
    env = env_for(None, tmp_path)
    del env["PYTHONPATH"]  # the installed package, from anywhere
    helped = subprocess.run(
        [str(script), "--help"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert helped.returncode == 0, helped.stderr
    for line in exits.TABLE.splitlines():
        assert line.strip() in helped.stdout
    codes = {getattr(exits, n) for n in dir(exits) if n.isupper() and isinstance(getattr(exits, n), int)}
    assert codes == set(range(9))
    documented = (ROOT / "docs" / "cli.md").read_text()
    assert all(f"\n| {code} | " in documented for code in codes)
    version = subprocess.run(
        [str(script), "--version"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert version.returncode == 0 and version.stdout.strip() == f"wfe {wfe_package.__version__}"


# --- builder files -----------------------------------------------------------------------------------------

FLOWS = """\
from wfe.builder import Workflow

numbers = Workflow("{numbers}", name="Numbers", tags=["cli"])
nums = numbers.source("sequence.numbers", id="nums", start=1, end=4)
big = numbers.transform("filter", id="big", condition="value > 2")
nums >> big >> numbers.sink("console.log", id="log")

rows = Workflow("{rows}")
rows.source("memory.collection", id="rows", data=[{{"a": 1}}]) >> rows.sink("console.log", id="out")
"""


def test_apply_of_a_builder_file_creates_its_workflows_which_then_run(
    api: Api, uid: str, tmp_path: Path
) -> None:
    env = env_for(api, tmp_path)
    ids = {"numbers": f"cli-py-num-{uid}", "rows": f"cli-py-rows-{uid}"}
    flows = tmp_path / "flows.py"
    flows.write_text(FLOWS.format(**ids))
    applied = ok(wfe(env, "workflows", "apply", "-f", str(flows), "-o", "json"))
    assert [(a["workflowId"], a["created"], a["valid"]) for a in applied] == [
        (ids["numbers"], True, True),
        (ids["rows"], True, True),
    ]
    stored = api.get(f"/api/v1/workflows/{ids['numbers']}")[1]
    assert [n["id"] for n in stored["nodes"]] == ["nums", "big", "log"] and stored["tags"] == ["cli"]
    assert [(e["source"], e["target"]) for e in stored["edges"]] == [("nums", "big"), ("big", "log")]
    done = ok(wfe(env, "run", ids["numbers"], "--wait", "-o", "json"))
    assert done["status"] == "completed" and done["outputs"]["big"]["preview"] == [3, 4]
    again = wfe(env, "workflows", "apply", "-f", str(flows))
    assert again.returncode == 0 and f"{ids['rows']}: unchanged, version 1" in again.stdout


def test_validate_reads_builder_files_offline(tmp_path: Path) -> None:
    env = env_for(None, tmp_path, WFE_URL=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    good = tmp_path / "flows.py"
    good.write_text(FLOWS.format(numbers="py-a", rows="py-b"))
    checked = ok(wfe(env, "workflows", "validate", str(good), "-o", "json"))
    assert [(r["id"], r["valid"]) for r in checked] == [("py-a", True), ("py-b", True)]
    bad = tmp_path / "bad.py"
    bad.write_text(FLOWS.format(numbers="py-c", rows="py-d").replace(', condition="value > 2"', ""))
    failed = wfe(env, "workflows", "validate", str(bad))
    assert failed.returncode == exits.FAILED, failed.stdout + failed.stderr
    assert "py-c: invalid" in failed.stdout and "nodes[1].config.condition" in failed.stdout
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('no flows today')\n")
    refused = wfe(env, "workflows", "validate", str(broken))
    assert refused.returncode == exits.USAGE and "no flows today" in refused.stderr
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    none = wfe(env, "workflows", "validate", str(empty))
    assert none.returncode == exits.USAGE and "no module-level wfe.builder.Workflow" in none.stderr


# --- schedules ---------------------------------------------------------------------------------------------


def test_schedules_are_created_listed_previewed_paused_and_resumed(
    api: Api, uid: str, tmp_path: Path
) -> None:
    env = env_for(api, tmp_path)
    workflow_id = create(api, simple(f"cli-sched-{uid}"))
    rate = ok(
        wfe(
            env,
            "schedules",
            "create",
            "-w",
            workflow_id,
            "--type",
            "fixed_rate",
            "--interval",
            "1h",
            "--name",
            "hourly",
            "-o",
            "json",
        )
    )
    assert rate["scheduleType"] == "fixed_rate" and rate["interval"] == "1h" and rate["state"] == "active"
    cron = ok(
        wfe(
            env,
            "schedules",
            "create",
            "-w",
            workflow_id,
            "--type",
            "cron",
            "--cron",
            "30 2 * * MON-FRI",
            "--timezone",
            "Europe/Berlin",
            "-o",
            "json",
        )
    )
    assert cron["cronExpression"] == "30 2 * * MON-FRI" and cron["timezone"] == "Europe/Berlin"
    listed = ok(wfe(env, "schedules", "list", "-w", workflow_id, "-o", "json"))
    assert sorted(s["id"] for s in listed) == sorted([rate["id"], cron["id"]])
    table = wfe(env, "schedules", "list", "-w", workflow_id)
    assert table.returncode == 0 and rate["id"] in table.stdout and "30 2 * * MON-FRI" in table.stdout

    preview = ok(wfe(env, "schedules", "preview", cron["id"], "--count", "4", "-o", "json"))
    times = [datetime.fromisoformat(t).astimezone(ZoneInfo("Europe/Berlin")) for t in preview["fireTimes"]]
    assert len(times) == 4 and times == sorted(times)
    assert all((t.hour, t.minute) == (2, 30) and t.weekday() < 5 for t in times)
    lines = wfe(env, "schedules", "preview", cron["id"], "--count", "3")
    assert lines.returncode == 0 and lines.stdout.splitlines() == preview["fireTimes"][:3]

    paused = ok(wfe(env, "schedules", "pause", cron["id"], "-o", "json"))
    assert paused["scheduleIds"] == [cron["id"]]
    assert api.get(f"/api/v1/schedules/{cron['id']}")[1]["state"] == "paused"
    assert api.get(f"/api/v1/schedules/{rate['id']}")[1]["state"] == "active"
    assert [s["id"] for s in ok(wfe(env, "schedules", "list", "--state", "paused", "-o", "json"))].count(
        cron["id"]
    ) == 1
    assert wfe(env, "schedules", "resume", cron["id"]).returncode == 0
    assert api.get(f"/api/v1/schedules/{cron['id']}")[1]["state"] == "active"
    by_workflow = wfe(env, "schedules", "pause", workflow_id)  # a workflow id: all of its schedules
    assert by_workflow.returncode == 0, by_workflow.stderr
    assert by_workflow.stdout.startswith("Schedule paused: ") and rate["id"] in by_workflow.stdout
    assert {s["state"] for s in api.get(f"/api/v1/schedules?workflowId={workflow_id}")[1]["schedules"]} == {
        "paused"
    }
    missing = wfe(env, "schedules", "preview", f"sch_never_{uid}")
    assert missing.returncode == exits.NOT_FOUND and "404" in missing.stderr


def test_a_backfill_of_a_past_range_runs_each_fire_time(api: Api, uid: str, tmp_path: Path) -> None:
    env = env_for(api, tmp_path)
    workflow_id = create(api, simple(f"cli-backfill-{uid}"))
    schedule = ok(
        wfe(
            env,
            "schedules",
            "create",
            "-w",
            workflow_id,
            "--type",
            "cron",
            "--cron",
            "*/10 * * * *",
            "--paused",
            "-o",
            "json",
        )
    )
    assert schedule["state"] == "paused"
    start = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    end = start + timedelta(minutes=30)
    run = ok(
        wfe(
            env,
            "schedules",
            "backfill",
            schedule["id"],
            "--start",
            start.isoformat(),
            "--end",
            end.isoformat(),
            "--max-active",
            "2",
            "-o",
            "json",
        )
    )
    assert run["total"] == 3, run
    wait_for(
        "the backfill to complete",
        lambda: api.get(f"/api/v1/backfills/{run['id']}")[1]["state"] == "completed",
        timeout=60,
    )
    assert api.get(f"/api/v1/backfills/{run['id']}")[1]["started"] == 3
    page = ok(wfe(env, "executions", "list", "-w", workflow_id, "--trigger", "backfill", "-o", "json"))
    assert len(page["executions"]) == 3
    completed = ("executions", "list", "-w", workflow_id, "--status", "completed", "-o", "json")
    wait_for(
        "the backfill's executions to complete",
        lambda: len(ok(wfe(env, *completed))["executions"]) == 3,
        timeout=60,
        interval=0.5,
    )


def test_a_bad_cron_or_interval_is_the_apis_400_naming_the_field_exit_8(
    api: Api, uid: str, tmp_path: Path
) -> None:
    env = env_for(api, tmp_path)
    workflow_id = create(api, simple(f"cli-badsched-{uid}"))
    for option, value, field in (
        ("--cron", "61 * * * *", "cronExpression"),
        ("--interval", "100ms", "interval"),
    ):
        kind = "cron" if option == "--cron" else "fixed_rate"
        done = wfe(env, "schedules", "create", "-w", workflow_id, "--type", kind, option, value)
        assert done.returncode == exits.API == 8, done.stdout + done.stderr
        assert "400" in done.stderr and f"  {field}: " in done.stderr
        answer = json.loads(
            wfe(
                env, "-o", "json", "schedules", "create", "-w", workflow_id, "--type", kind, option, value
            ).stdout
        )
        assert answer["status"] == 400 and list(answer["details"]) == [field]
    assert api.get(f"/api/v1/schedules?workflowId={workflow_id}")[1]["schedules"] == []


# --- cluster -----------------------------------------------------------------------------------------------


def test_cluster_commands_print_the_apis_objects_and_tables(api: Api, tmp_path: Path) -> None:
    env = env_for(api, tmp_path)
    stats = ok(wfe(env, "cluster", "status", "-o", "json"))
    assert stats["status"] == "Up" and stats["leader"] and stats["members"] == len(stats["memberList"])
    members = ok(wfe(env, "cluster", "members", "--status", "up", "-o", "json"))
    assert members["count"] == len(members["members"]) >= 2
    assert {m["status"] for m in members["members"]} == {"up"}
    assert {"worker", "coordinator"} <= {m["role"] for m in members["members"]}
    shards = ok(wfe(env, "cluster", "shards", "-o", "json"))
    assert shards["totalShards"] == len(shards["shards"]) == 100
    live = {m["address"] for m in stats["memberList"]}
    assert all(s["owner"] in live for s in shards["shards"])
    events = ok(wfe(env, "cluster", "events", "--limit", "5", "-o", "json"))
    assert 1 <= len(events["events"]) <= 5 and events["count"] == len(events["events"])
    ids = [e["id"] for e in events["events"]]
    assert ids == sorted(ids, reverse=True)
    newest = events["events"][0]
    typed = ok(wfe(env, "cluster", "events", "--type", newest["event_type"], "-o", "json"))
    assert {e["event_type"] for e in typed["events"]} == {newest["event_type"]}

    status_table = wfe(env, "cluster", "status")
    assert status_table.returncode == 0 and stats["leader"] in status_table.stdout
    assert "entities" in status_table.stdout
    members_table = wfe(env, "cluster", "members")
    assert members_table.returncode == 0 and "│ coordinator " in members_table.stdout  # the role column
    shards_table = wfe(env, "cluster", "shards")
    assert shards_table.returncode == 0 and shards["shards"][99]["owner"] in shards_table.stdout
    events_table = wfe(env, "cluster", "events", "--limit", "5")
    assert events_table.returncode == 0 and newest["event_type"] in events_table.stdout


# --- executions --------------------------------------------------------------------------------------------


def test_executions_list_narrows_by_status_workflow_and_trigger_and_pages(
    api: Api, uid: str, tmp_path: Path
) -> None:
    env = env_for(api, tmp_path)
    good, bad = create(api, simple(f"cli-lg-{uid}")), create(api, failing(f"cli-lb-{uid}"))
    first = ok(wfe(env, "run", good, "--wait", "-o", "json"))["executionId"]
    second = ok(wfe(env, "run", good, "--wait", "-o", "json"))["executionId"]
    failed = wfe(env, "run", bad, "--wait", "-o", "json")
    assert failed.returncode == exits.FAILED
    broken = json.loads(failed.stdout)["executionId"]

    def listed(*args: str) -> list[str]:
        return [
            e["executionId"] for e in ok(wfe(env, "executions", "list", *args, "-o", "json"))["executions"]
        ]

    assert listed("-w", good) == [second, first]
    assert listed("-w", good, "-w", bad) == [broken, second, first]
    assert listed("-w", good, "-w", bad, "--status", "failed") == [broken]
    assert listed("-w", good, "-w", bad, "--status", "completed", "--status", "cancelled") == [second, first]
    assert listed("-w", good, "--trigger", "rerun") == []
    rerun = ok(wfe(env, "executions", "rerun", first, "-o", "json"))
    assert rerun["executionId"] not in (first, second) and rerun["status"] == "started"
    api.wait_finished(rerun["executionId"])
    assert listed("-w", good, "--trigger", "rerun") == [rerun["executionId"]]
    assert listed("-w", good, "--trigger", "api") == [second, first]

    page = ok(wfe(env, "executions", "list", "-w", good, "--limit", "2", "--count", "-o", "json"))
    assert [e["executionId"] for e in page["executions"]] == [rerun["executionId"], second]
    assert page["total"] == 3 and page["nextCursor"]
    assert listed("-w", good, "--limit", "2", "--cursor", page["nextCursor"]) == [first]
    assert listed("-w", good, "--limit", "1", "--all") == [rerun["executionId"], second, first]
    table = wfe(env, "executions", "list", "-w", good, "--limit", "2")
    assert table.returncode == 0, table.stderr
    [more] = [line for line in table.stdout.splitlines() if line.startswith("more: --cursor ")]
    assert listed("-w", good, "--limit", "2", "--cursor", more.split()[-1]) == [first]  # the line's cursor
    bad_status = wfe(env, "executions", "list", "--status", "sideways")
    assert bad_status.returncode == exits.API and "status" in bad_status.stderr


def test_show_events_logs_and_outputs_are_the_apis_views_of_an_execution(
    api: Api, uid: str, tmp_path: Path
) -> None:
    env = env_for(api, tmp_path)
    workflow_id = create(api, simple(f"cli-views-{uid}"))
    execution_id = ok(wfe(env, "run", workflow_id, "--wait", "-o", "json"))["executionId"]
    detail = api.get(f"/api/v1/executions/{execution_id}")[1]
    assert ok(wfe(env, "executions", "show", execution_id, "-o", "json")) == detail
    shown = wfe(env, "executions", "show", execution_id)
    assert shown.returncode == 0 and "completed" in shown.stdout and "keep" in shown.stdout

    journal = api.get(f"/api/v1/executions/{execution_id}/events")[1]["events"]
    assert ok(wfe(env, "executions", "events", execution_id, "-o", "json")) == journal
    tail = ok(wfe(env, "executions", "events", execution_id, "--after", "2", "-o", "json"))
    assert [e["seq"] for e in tail] == [e["seq"] for e in journal if e["seq"] > 2]

    logs = api.get(f"/api/v1/workflows/{workflow_id}/executions/{execution_id}/logs")[1]["logs"]
    assert logs and ok(wfe(env, "executions", "logs", execution_id, "-o", "json")) == logs
    printed = wfe(env, "executions", "logs", execution_id)
    assert printed.returncode == 0 and printed.stdout.splitlines() == logs

    outputs = ok(wfe(env, "executions", "outputs", execution_id, "-o", "json"))
    assert outputs == detail["outputs"] and outputs["keep"]["preview"] == [2, 3]
    grid = wfe(env, "executions", "outputs", execution_id)
    assert grid.returncode == 0, grid.stderr
    assert "recordCount" in grid.stdout and "keep" in grid.stdout and "[2, 3]" in grid.stdout
    missing = wfe(env, "executions", "show", f"exec_never_{uid}")
    assert missing.returncode == exits.NOT_FOUND


def test_pause_and_resume_hold_and_release_a_running_execution(api: Api, uid: str, tmp_path: Path) -> None:
    env = env_for(api, tmp_path)
    body = workflow(
        f"cli-pause-{uid}",
        [
            step("nums", "sequence.numbers", "source", start=1, end=2),
            step("wait", "delay", "transform", duration="5s"),  # room for the pause
            step("out", "console.log", "sink"),
        ],
        [("nums", "wait"), ("wait", "out")],
    )
    execution_id = ok(wfe(env, "run", create(api, body), "-o", "json"))["executionId"]
    wait_waiting(api, execution_id)
    paused = ok(wfe(env, "executions", "pause", execution_id, "-o", "json"))
    assert paused["command"] == "pause" and paused["executionId"] == execution_id
    wait_status(api, execution_id, "paused")
    again = wfe(env, "executions", "pause", execution_id)
    assert again.returncode == exits.API and "409" in again.stderr
    resumed = wfe(env, "executions", "resume", execution_id)
    assert resumed.returncode == 0 and f"execution {execution_id}" in resumed.stdout
    done = wfe(env, "executions", "wait", execution_id, "--timeout", "60")
    assert done.returncode == 0, done.stdout + done.stderr
    types = [e["type"] for e in ok(wfe(env, "executions", "events", execution_id, "-o", "json"))]
    assert types.index("WorkflowPaused") < types.index("WorkflowResumed") < types.index("WorkflowCompleted")


def test_retry_continues_a_failed_execution_from_its_failed_node(api: Api, uid: str, tmp_path: Path) -> None:
    env = env_for(api, tmp_path)
    missing = tmp_path / "later.csv"
    body = workflow(
        f"cli-retry-{uid}",
        [
            step("nums", "sequence.numbers", "source", start=1, end=2),
            step("late", "file.csv", "source", path=str(missing)),
            step("count", "aggregate.count", "sink"),
        ],
        [("nums", "count"), ("late", "count")],
    )
    failed = wfe(env, "run", create(api, body), "--wait", "-o", "json")
    assert failed.returncode == exits.FAILED, failed.stderr
    execution = json.loads(failed.stdout)
    assert execution["failedNodeId"] == "late"
    missing.write_text("a\n1\n2\n3\n")
    retried = ok(wfe(env, "executions", "retry", execution["executionId"], "-o", "json"))
    assert retried["command"] == "retry_failed" and retried["executionId"] == execution["executionId"]
    wait_for("the retry", lambda: "WorkflowRetried" in event_types(api, execution["executionId"]))
    done = ok(wfe(env, "executions", "wait", execution["executionId"], "-o", "json"))
    assert done["status"] == "completed" and done["outputs"]["count"]["preview"] == [5]
    assert sorted(n["nodeId"] for n in done["nodes"]) == ["count", "late", "late", "nums"]


def test_signal_and_approve_move_a_waiting_execution_to_its_end(api: Api, uid: str, tmp_path: Path) -> None:
    env = env_for(api, tmp_path)
    workflow_id = create(api, signal_workflow(f"cli-sig-{uid}"))
    execution_id = ok(wfe(env, "run", workflow_id, "-o", "json"))["executionId"]
    wait_waiting(api, execution_id)
    not_json = wfe(env, "executions", "signal", execution_id, "order", "--payload", "{item")
    assert not_json.returncode == exits.USAGE and "--payload" in not_json.stderr
    order = '{"item": "book", "qty": 2}'
    sent = ok(wfe(env, "executions", "signal", execution_id, "order", "--payload", order, "-o", "json"))
    assert sent["executionId"] == execution_id
    wait_waiting(api, execution_id, count=2)  # the approval waits now
    gate = next(n for n in api.get(f"/api/v1/executions/{execution_id}")[1]["nodes"] if n["nodeId"] == "gate")
    assert gate["waitingFor"] == "approval"
    operator = env_for(api, tmp_path, token=make_token(f"cli-sig-op-{uid}", "operator"))
    refused = wfe(operator, "executions", "approve", execution_id, "gate")  # may signal, not approve
    assert refused.returncode == exits.AUTH and "approve_execution" in refused.stderr, refused.stderr
    approver = env_for(api, tmp_path, token=make_token(f"cli-approver-{uid}", "approver"))
    approved = wfe(approver, "executions", "approve", execution_id, "gate", "--comment", "within budget")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    watched = wfe(env, "executions", "watch", execution_id, "--timeout", "60")
    assert watched.returncode == 0, watched.stdout + watched.stderr
    done = api.get(f"/api/v1/executions/{execution_id}")[1]
    assert done["status"] == "completed" and done["outputs"]["order"]["preview"] == [
        {"item": "book", "qty": 2}
    ]
    assert next(n for n in done["nodes"] if n["nodeId"] == "gate")["approvedBy"] == f"cli-approver-{uid}"
    again = wfe(env, "executions", "watch", execution_id)  # a finished one: at once, by how it ended
    assert again.returncode == 0 and "completed" in again.stdout

    rejected_id = ok(wfe(env, "run", workflow_id, "-o", "json"))["executionId"]
    assert wfe(env, "executions", "signal", rejected_id, "order", "--payload", '"car"').returncode == 0
    wait_waiting(api, rejected_id, count=2)
    rejected = wfe(
        approver, "executions", "approve", rejected_id, "approve", "--reject", "--comment", "too dear"
    )
    assert rejected.returncode == 0, rejected.stdout + rejected.stderr
    ended = wfe(env, "executions", "watch", rejected_id, "--timeout", "60", "-o", "json")
    assert ended.returncode == exits.FAILED, ended.stderr
    assert "too dear" in json.loads(ended.stdout)["error"]


# --- roles -------------------------------------------------------------------------------------------------


def test_an_operator_runs_and_cancels_but_may_not_apply_and_a_viewer_may_not_list_tokens(
    api: Api, uid: str, tmp_path: Path
) -> None:
    operator = env_for(api, tmp_path, token=make_token(f"cli-op-{uid}", "operator"))
    assert (
        ok(wfe(operator, "run", create(api, simple(f"cli-op-{uid}")), "--wait", "-o", "json"))["status"]
        == "completed"
    )
    waiting = ok(wfe(operator, "run", create(api, delayed(f"cli-opd-{uid}")), "-o", "json"))["executionId"]
    cancelled = wfe(operator, "executions", "cancel", waiting, "--reason", "by an operator")
    assert cancelled.returncode == 0, cancelled.stderr
    assert api.wait_finished(waiting)["status"] == "cancelled"
    refused = wfe(
        operator, "workflows", "apply", "-f", str(write(tmp_path, "wf.json", simple(f"cli-opw-{uid}")))
    )
    assert refused.returncode == exits.AUTH == 6, refused.stdout + refused.stderr
    assert "403" in refused.stderr and api.base in refused.stderr and "lacks the role" in refused.stderr
    assert api.get(f"/api/v1/workflows/cli-opw-{uid}")[0] == 404
    viewer = env_for(api, tmp_path, token=make_token(f"cli-viewer-{uid}", "viewer"))
    listed = wfe(viewer, "tokens", "list")
    assert listed.returncode == exits.AUTH, listed.stdout + listed.stderr
    assert "403" in listed.stderr and "lacks the role" in listed.stderr
    assert wfe(viewer, "executions", "list", "-w", f"cli-op-{uid}").returncode == 0  # but it may read
