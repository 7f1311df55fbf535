"""Live updates (issue 12 item 7) against the real gateway: Server-Sent Events streams of an execution's
events and of a workflow's executions, their long-poll twins, and the bounds that keep streams from taking
every gateway thread (apps/workflows/api/streams.py)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from tests import openapi_check
from tests.conftest import process_env
from tests.harness import Api, Cluster, free_port, wait_for
from tests.integration.test_executions import step, workflow

pytestmark = pytest.mark.usefixtures("live_db")

MAX_DURATION = 3.0  # stream-max-duration of the bounded gateway below


# --- a small SSE client -------------------------------------------------------------------------------------


@dataclass
class Sse:
    """What one connection received: events (id, type, data), in order, and whether it ended by itself."""

    status: int
    events: list[tuple[int | None, str, Any]] = field(default_factory=list)
    last_id: int | None = None
    comments: int = 0
    closed: bool = False  # the server closed the stream
    seconds: float = 0.0


def parse(lines: Iterator[str], sse: Sse, until: Any = None) -> None:
    """The SSE rules the tests need: fields per line, a blank line dispatches, an ``id`` alone moves the last
    event id, comments start with a colon."""
    id_, type_, data = None, "", []
    for line in lines:
        if line == "":
            if id_ is not None:
                sse.last_id = int(id_)
            if data:
                sse.events.append((int(id_) if id_ is not None else None, type_, json.loads("\n".join(data))))
                if until is not None and until(sse.events[-1]):
                    return
            id_, type_, data = None, "", []
        elif line.startswith(":"):
            sse.comments += 1
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                id_ = value
            elif name == "event":
                type_ = value
            elif name == "data":
                data.append(value)
    sse.closed = True


def follow(api: Api, path: str, *, last_id: int | None = None, until: Any = None, timeout: float = 60) -> Sse:
    """Read a stream until the server closes it (or ``until(event)``)."""
    headers = {"Authorization": f"Token {api.token}", "Accept": "text/event-stream"}
    if last_id is not None:
        headers["Last-Event-ID"] = str(last_id)
    started = time.monotonic()
    with requests.get(api.base + path, headers=headers, stream=True, timeout=timeout) as response:
        sse = Sse(response.status_code)
        if response.status_code == 200:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            parse(response.iter_lines(decode_unicode=True), sse, until)
        else:
            text = response.text
            openapi_check.check_response("GET", path, response.status_code, "application/json", text)
    sse.seconds = time.monotonic() - started
    return sse


# --- workflows ---------------------------------------------------------------------------------------------


def delayed(workflow_id: str, seconds: str = "1500ms") -> dict[str, Any]:
    """Events over time: the delay node waits before the sink runs."""
    return workflow(
        workflow_id,
        [
            step("in", "execution.input", "source"),
            step("wait", "delay", "transform", duration=seconds),
            step("out", "aggregate.count", "sink"),
        ],
        [("in", "wait"), ("wait", "out")],
    )


def signalled(workflow_id: str) -> dict[str, Any]:
    return workflow(
        workflow_id,
        [step("order", "wait.signal", "source", name="order"), step("out", "aggregate.count", "sink")],
        [("order", "out")],
    )


def create(api: Api, body: dict[str, Any]) -> str:
    status, answer = api.post("/api/v1/workflows", body)
    assert status == 201, answer
    return str(body["id"])


def start(api: Api, workflow_id: str) -> str:
    status, answer = api.post(f"/api/v1/workflows/{workflow_id}/execute", {"input": {}})
    assert status == 200, answer
    return str(answer["executionId"])


def journal(api: Api, execution_id: str) -> list[dict[str, Any]]:
    status, body = api.get(f"/api/v1/executions/{execution_id}/events")
    assert status == 200
    return list(body["events"])


def waiting(api: Api, execution_id: str) -> bool:
    return any(e["type"] == "NodeWaiting" for e in journal(api, execution_id))


# --- an execution's stream ---------------------------------------------------------------------------------


def test_a_client_following_an_execution_sees_each_new_event_once_in_order_and_the_stream_ends_with_it(
    api: Api, uid: str
) -> None:
    execution = start(api, create(api, delayed(f"st-follow-{uid}")))
    sse = follow(api, f"/api/v1/executions/{execution}/stream")

    assert sse.status == 200 and sse.closed
    *events, end = sse.events
    assert end[1] == "end" and end[2] == {"status": "completed", "lastSeq": events[-1][0]}
    assert [seq for seq, _, _ in events] == list(range(1, len(events) + 1))
    assert [data for _, _, data in events] == journal(api, execution)
    assert [type_ for _, type_, _ in events] == [data["type"] for _, _, data in events]
    assert sse.seconds >= 1.0, "the stream followed the delay, not a finished journal"


def test_resuming_with_last_event_id_sends_nothing_twice_and_a_finished_one_says_stop(
    api: Api, uid: str
) -> None:
    execution = start(api, create(api, delayed(f"st-resume-{uid}", "10ms")))
    api.wait_finished(execution)
    everything = journal(api, execution)

    first = follow(api, f"/api/v1/executions/{execution}/stream", until=lambda e: e[0] == 2)
    assert [seq for seq, _, _ in first.events] == [1, 2]
    rest = follow(api, f"/api/v1/executions/{execution}/stream?after=0", last_id=first.last_id)
    assert [data for _, _, data in first.events + rest.events[:-1]] == everything
    assert rest.events[-1][1] == "end"
    by_query = follow(api, f"/api/v1/executions/{execution}/stream?after={len(everything) - 1}")
    assert [seq for seq, _, _ in by_query.events] == [len(everything), None]

    done = follow(api, f"/api/v1/executions/{execution}/stream", last_id=len(everything))
    assert done.status == 204, "EventSource stops reconnecting on a 204"


@pytest.mark.parametrize(
    ("query", "header", "field"),
    [
        ("after=-1", None, "after"),
        ("after=99999999999999999999", None, "after"),
        ("after=1%00", None, "after"),
        ("after=x", None, "after"),
        ("timeout=1e9", None, "timeout"),
        ("timeout=nan", None, "timeout"),
        ("timeout=0", None, "timeout"),
        ("", "abc", "Last-Event-ID"),
        ("", "-1", "Last-Event-ID"),
        ("", "1" * 30, "Last-Event-ID"),
    ],
)
def test_hostile_stream_input_is_a_400_naming_it(
    api: Api, uid: str, query: str, header: str | None, field: str
) -> None:
    execution = start(api, create(api, delayed(f"st-bad-{uid}", "10ms")))
    for path in (
        f"/api/v1/executions/{execution}/stream",
        f"/api/v1/workflows/st-bad-{uid}/executions/stream",
    ):
        status, body = api.call(
            "GET", f"{path}?{query}", headers={"Last-Event-ID": header} if header else None
        )
        assert status == 400, body
        assert field in body["details"], body


@pytest.mark.parametrize("query", ["wait=1e9", "wait=nan", "wait=inf", "wait=-1", "wait=1%00", "after=-1"])
def test_hostile_long_poll_input_is_a_400_naming_it(api: Api, uid: str, query: str) -> None:
    wf = create(api, delayed(f"st-badpoll-{uid}", "10ms"))
    execution = start(api, wf)
    for path in (f"/api/v1/executions/{execution}/events/poll", f"/api/v1/workflows/{wf}/executions/poll"):
        status, body = api.get(f"{path}?{query}")
        assert status == 400, body
        assert query.split("=")[0] in body["details"], body


def test_unknown_executions_and_workflows_are_a_404_before_any_stream(api: Api) -> None:
    for path in (
        "/api/v1/executions/nope/stream",
        "/api/v1/executions/nope/events/poll?wait=5",
        "/api/v1/workflows/nope/executions/stream",
        "/api/v1/workflows/nope/executions/poll?wait=5",
    ):
        started = time.monotonic()
        status, body = api.get(path)
        assert status == 404 and body["error"] == "not_found", (path, body)
        assert time.monotonic() - started < 2


# --- the long polls ----------------------------------------------------------------------------------------


def test_the_execution_long_poll_answers_at_once_with_events_and_waits_for_new_ones(
    api: Api, uid: str
) -> None:
    execution = start(api, create(api, signalled(f"st-poll-{uid}")))
    wait_for("the signal wait", lambda: waiting(api, execution))
    status, body = api.get(f"/api/v1/executions/{execution}/events/poll?after=0&wait=20")
    assert status == 200 and body["events"] == journal(api, execution) and not body["done"]
    cursor = body["next"]

    started = time.monotonic()
    status, empty = api.get(f"/api/v1/executions/{execution}/events/poll?after={cursor}&wait=1")
    assert status == 200 and empty["events"] == [] and empty["next"] == cursor
    assert 0.9 <= time.monotonic() - started < 5

    threading.Timer(1.0, lambda: api.post(f"/api/v1/executions/{execution}/signals/order", {})).start()
    started = time.monotonic()
    status, news = api.get(f"/api/v1/executions/{execution}/events/poll?after={cursor}&wait=25")
    assert status == 200 and news["events"] and news["events"][0]["seq"] == cursor + 1
    assert time.monotonic() - started < 10, "it answered when the events came, not at the end of the wait"
    api.wait_finished(execution)
    seen = body["events"] + news["events"]
    while True:
        status, more = api.get(f"/api/v1/executions/{execution}/events/poll?after={seen[-1]['seq']}&wait=5")
        seen += more["events"]
        if more["done"]:
            break
    assert seen == journal(api, execution)


def test_the_workflow_long_poll_gives_changes_after_its_cursor(api: Api, uid: str) -> None:
    wf = create(api, delayed(f"st-wpoll-{uid}", "10ms"))
    status, now = api.get(f"/api/v1/workflows/{wf}/executions/poll")
    assert status == 200 and now["executions"] == []
    execution = start(api, wf)
    cursor, statuses = now["next"], []
    while "completed" not in statuses:
        status, body = api.get(f"/api/v1/workflows/{wf}/executions/poll?after={cursor}&wait=20")
        assert status == 200 and body["next"] >= cursor
        cursor = body["next"]
        statuses += [item["status"] for item in body["executions"] if item["executionId"] == execution]
    _, listed = api.get(f"/api/v1/workflows/{wf}/executions")
    assert body["executions"][-1] == listed[0]


# --- a workflow's stream -----------------------------------------------------------------------------------


def test_the_workflow_stream_sees_a_new_execution_start_and_finish(api: Api, uid: str) -> None:
    wf = create(api, delayed(f"st-wf-{uid}"))
    seen: list[Sse] = []
    thread = threading.Thread(
        target=lambda: seen.append(
            follow(
                api,
                f"/api/v1/workflows/{wf}/executions/stream",
                until=lambda e: e[2]["status"] == "completed",
            )
        )
    )
    thread.start()
    time.sleep(1.0)  # the stream is open: it shows changes from now on
    execution = start(api, wf)
    thread.join(60)
    (sse,) = seen
    items = [data for _, _, data in sse.events]
    assert {item["executionId"] for item in items} == {execution}
    assert [item["status"] for item in items] == ["running", "completed"]
    ids = [id_ for id_, _, _ in sse.events]
    assert all(isinstance(i, int) for i in ids) and ids == sorted(ids)
    _, listed = api.get(f"/api/v1/workflows/{wf}/executions")
    assert items[-1] == listed[0], "the same item shape as the executions list"

    again = follow(
        api, f"/api/v1/workflows/{wf}/executions/stream", last_id=ids[0], until=lambda e: True, timeout=60
    )
    assert [(i, data["status"]) for i, _, data in again.events] == [(ids[1], "completed")]


# --- the bounds ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bounded(node: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A second gateway (2 processes x 4 threads) on the session's database, with short streams and one
    stream per process; the session node's worker runs the executions."""
    workdir = tmp_path_factory.mktemp("bounded")
    env = process_env(workdir)
    env.update(
        {
            "GATEWAY_THREADS": "4",
            "WORKFLOW_STREAM_MAX_DURATION": f"{MAX_DURATION}s",
            "WORKFLOW_STREAM_MAX_OPEN": "1",
            "WORKFLOW_STREAM_HEARTBEAT_INTERVAL": "500ms",
            "WORKFLOW_STREAM_POLL_INTERVAL": "100ms",
        }
    )
    cluster = Cluster(workdir, env)
    port = free_port()
    cluster.start_gateway(port)
    api = Api(f"http://127.0.0.1:{port}", node["api"].token)
    try:
        wait_for("the bounded gateway", lambda: api.get("/health/live")[0] == 200, timeout=60)
        yield api
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop()


def test_a_stream_closes_after_its_max_duration_and_a_reconnect_continues(
    bounded: Api, api: Api, uid: str
) -> None:
    execution = start(api, create(api, signalled(f"st-max-{uid}")))
    wait_for("the signal wait", lambda: waiting(api, execution))
    first = follow_free(bounded, f"/api/v1/executions/{execution}/stream")
    assert first.closed and MAX_DURATION - 0.5 <= first.seconds < MAX_DURATION + 3
    assert first.comments >= 2, "heartbeats while idle"
    assert first.events and all(type_ != "end" for _, type_, _ in first.events)

    api.post(f"/api/v1/executions/{execution}/signals/order", {})
    rest = follow_free(bounded, f"/api/v1/executions/{execution}/stream", last_id=first.last_id)
    assert rest.events[-1][1] == "end"
    assert [data for _, _, data in first.events + rest.events[:-1]] == journal(api, execution)


def test_over_the_stream_bound_the_gateway_answers_429_while_other_calls_stay_fast(
    bounded: Api, api: Api, uid: str
) -> None:
    wf = create(api, delayed(f"st-busy-{uid}", "10ms"))
    headers = {"Authorization": f"Token {api.token}", "Accept": "text/event-stream"}
    opened = [
        requests.get(f"{bounded.base}/api/v1/workflows/{wf}/executions/stream", headers=headers, stream=True)
        for _ in range(5)
    ]
    try:
        statuses = sorted(r.status_code for r in opened)
        # one stream per process, two processes: at most two streams, the rest refused
        assert statuses.count(200) <= 2 and statuses.count(429) >= 3, statuses
        refused = next(r for r in opened if r.status_code == 429)
        assert int(refused.headers["Retry-After"]) > 0
        assert "retry" in refused.json()["message"]
        for path in ("/health/live", f"/api/v1/workflows/{wf}"):
            started = time.monotonic()
            assert bounded.get(path)[0] == 200
            assert time.monotonic() - started < 1.0, path
    finally:
        for response in opened:
            response.close()


def follow_free(api: Api, path: str, **kwargs: Any) -> Sse:
    """``follow`` on the bounded gateway, once a slot is free (an earlier test's streams end within
    MAX_DURATION)."""
    return wait_for(
        path, lambda: (lambda sse: sse if sse.status != 429 else None)(follow(api, path, **kwargs))
    )


def test_the_workflow_stream_carries_its_cursor_across_a_reconnect(bounded: Api, api: Api, uid: str) -> None:
    wf = create(api, delayed(f"st-wmax-{uid}", "10ms"))
    quiet = follow_free(bounded, f"/api/v1/workflows/{wf}/executions/stream")
    assert quiet.closed and quiet.events == [] and quiet.last_id is not None
    execution = start(api, wf)  # between two connections: the cursor still finds it
    api.wait_finished(execution)
    later = follow_free(
        bounded,
        f"/api/v1/workflows/{wf}/executions/stream",
        last_id=quiet.last_id,
        until=lambda e: e[2]["status"] == "completed",
    )
    assert later.events and {data["executionId"] for _, _, data in later.events} == {execution}
