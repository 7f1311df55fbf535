"""The pure engine's control: retry policies, timeouts, cancel, pause, resume, signals, approvals, delays."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from apps.workflows.engine import decide as d
from apps.workflows.engine import state as st
from apps.workflows.engine.graph import compile_graph
from apps.workflows.engine.policies import RetryPolicy
from apps.workflows.engine.validation import DefinitionInvalid, resolver, validate
from apps.workflows.nodes.sandbox import current_sandbox


def graph_of(nodes: list[dict[str, Any]], edges: list[tuple[str, str]], **settings: Any) -> Any:
    raw: dict[str, Any] = {
        "id": "w",
        "name": "w",
        "nodes": nodes,
        "edges": [{"id": f"e{i}", "source": s, "target": t} for i, (s, t) in enumerate(edges)],
    }
    if settings:
        raw["settings"] = settings
    return compile_graph(validate(raw, current_sandbox()), resolver(current_sandbox()))


def node(node_id: str, node_type: str, **extra: Any) -> dict[str, Any]:
    config = extra.pop("config", {})
    return {"id": node_id, "nodeType": node_type, "config": config, **extra}


def chain(*middle: dict[str, Any], **settings: Any) -> Any:
    nodes = [node("src", "sequence.numbers"), *middle, node("out", "file.text", config={"path": "x.txt"})]
    ids = [n["id"] for n in nodes]
    return graph_of(nodes, list(pairwise(ids)), **settings)


def io_graph(**io: Any) -> Any:
    """``src`` (inline) and ``io`` (a file.csv task) into ``out``: io is the node that fails or times out."""
    settings = io.pop("settings", {})
    nodes = [
        node("src", "sequence.numbers"),
        node("io", "file.csv", config={"path": "in.csv"}, **io),
        node("out", "aggregate.count"),
    ]
    return graph_of(nodes, [("src", "out"), ("io", "out")], **settings)


class Run:
    """Drive an execution through ``decide``, keeping state and everything it asked for."""

    def __init__(self, graph: Any) -> None:
        self.graph, self.state, self.now = graph, st.ExecutionState("e", "w"), 1_000
        self.events: list[st.EventRecord] = []
        self.runs: list[d.RunNode] = []
        self.timers: list[d.Timer] = []
        self.stops: list[tuple[str, int]] = []
        self.outputs: dict[str, Any] = {}

    def send(self, command: d.Command, advance: int = 0) -> d.Decision:
        self.now += advance
        decision = d.decide(self.state, self.graph, command, self.now)
        self.state = decision.state
        self.events += decision.events
        self.runs += decision.runs
        self.timers += decision.timers
        self.stops += decision.stops
        self.outputs.update(decision.outputs)
        return decision

    def complete_inline(self) -> None:
        """Succeed every inline run, as the apply transaction does."""
        while pending := [r for r in self.runs if r.inline]:
            self.runs = [r for r in self.runs if not r.inline]
            for r in pending:
                self.send(d.NodeSucceeded(r.node_id, r.attempt, 1, 1))

    def types(self) -> list[str]:
        return [e.type for e in self.events]

    def timer(self, kind: str) -> d.Timer:
        return next(t for t in reversed(self.timers) if t.kind == kind)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (RetryPolicy(max_attempts=5, backoff="fixed", initial_ms=1000, jitter=0), [1000, 1000, 1000, 1000]),
        (RetryPolicy(max_attempts=5, backoff="linear", initial_ms=1000, jitter=0), [1000, 2000, 3000, 4000]),
        (
            RetryPolicy(max_attempts=5, backoff="exponential", initial_ms=1000, multiplier=2, jitter=0),
            [1000, 2000, 4000, 8000],
        ),
        (
            RetryPolicy(max_attempts=5, backoff="exponential", initial_ms=1000, max_ms=3000, jitter=0),
            [1000, 2000, 3000, 3000],
        ),
    ],
)
def test_back_off_grows_by_its_kind_up_to_the_cap(policy: RetryPolicy, expected: list[int]) -> None:
    assert [policy.delay_ms(a, "seed") for a in range(1, 5)] == expected


def test_jitter_stays_within_its_fraction_and_is_stable_per_attempt() -> None:
    policy = RetryPolicy(max_attempts=3, initial_ms=1000, jitter=0.2)
    delays = {policy.delay_ms(1, f"e:n:{i}") for i in range(50)}
    assert all(800 <= x <= 1200 for x in delays) and len(delays) > 10
    assert policy.delay_ms(1, "e:n:1") == policy.delay_ms(1, "e:n:1")


def test_a_retryable_failure_schedules_a_durable_timer_and_the_timer_starts_the_next_attempt() -> None:
    retry = {"maxAttempts": 3, "backoff": "fixed", "initialInterval": "2s", "jitter": 0}
    run = Run(io_graph(retry=retry))
    run.send(d.Start())
    run.complete_inline()
    run.send(d.NodeFailed("io", 1, "disk busy", retryable=True))
    assert run.types()[-2:] == ["NodeExecutionFailed", "NodeRetryScheduled"]
    timer = run.timer("retry")
    assert (timer.node_id, timer.attempt, timer.fire_at_ms) == ("io", 2, run.now + 2000)
    run.send(d.TimerFired("retry", "io", 2), advance=2000)
    assert run.types()[-1] == "NodeExecutionStarted" and run.events[-1].payload["attempt"] == 2
    assert run.send(d.TimerFired("retry", "io", 2)).events == [], "a timer fires once"


def test_a_non_retryable_failure_or_the_last_attempt_fails_the_execution() -> None:
    run = Run(io_graph(retry={"maxAttempts": 2}))
    run.send(d.Start())
    run.complete_inline()
    run.send(d.NodeFailed("io", 1, "bad header", retryable=False))
    assert run.state.status == st.ExecutionStatus.FAILED and "bad header" in (run.state.error or "")


def test_retry_on_all_retries_even_non_retryable_errors() -> None:
    run = Run(io_graph(retry={"maxAttempts": 2, "retryOn": "all"}))
    run.send(d.Start())
    run.complete_inline()
    run.send(d.NodeFailed("io", 1, "bad header", retryable=False))
    assert run.types()[-1] == "NodeRetryScheduled"


def test_an_attempt_timeout_fails_the_attempt_asks_it_to_stop_and_retries() -> None:
    run = Run(io_graph(timeout="5s", retry={"maxAttempts": 2}))
    run.send(d.Start())
    run.complete_inline()
    timer = run.timer("node_timeout")
    assert timer.fire_at_ms == run.now + 5000
    run.send(d.TimerFired("node_timeout", "io", 1), advance=5000)
    failed = next(e for e in run.events if e.type == "NodeExecutionFailed").payload
    assert failed["timedOut"] and failed["willRetry"] and ("io", 1) in run.stops
    assert run.send(d.NodeSucceeded("io", 1, 1, 1)).events == [], "the late result of a timed-out attempt"


def test_a_workflow_timeout_fails_it_and_stops_running_attempts() -> None:
    run = Run(io_graph(settings={"timeout": "10s"}))
    run.send(d.Start())
    run.complete_inline()
    run.send(d.TimerFired("workflow_timeout"), advance=10_000)
    assert run.state.status == st.ExecutionStatus.FAILED and "timed out after 10s" in (run.state.error or "")
    assert ("io", 1) in run.stops


def test_cancel_ends_the_execution_and_stops_what_runs() -> None:
    run = Run(io_graph())
    run.send(d.Start())
    run.complete_inline()
    run.send(d.Cancel("ada", "no longer needed"))
    assert run.state.status == st.ExecutionStatus.CANCELLED and ("io", 1) in run.stops
    assert run.state.node("io").status == st.NodeStatus.CANCELLED
    assert run.send(d.Cancel("ada")).events == [] and run.send(d.NodeSucceeded("io", 1, 1, 1)).events == []


def test_paused_executions_start_nothing_until_resumed() -> None:
    run = Run(io_graph())
    run.send(d.Start())
    run.complete_inline()
    run.send(d.Pause("ada"))
    before = len(run.runs)
    run.send(d.NodeSucceeded("io", 1, 3, 5))
    assert run.state.node("io").status == st.NodeStatus.COMPLETED and len(run.runs) == before
    run.send(d.Resume("ada"))
    assert run.state.status == st.ExecutionStatus.RUNNING and run.runs[-1].node_id == "out"


def test_a_retry_due_while_paused_starts_on_resume() -> None:
    run = Run(io_graph(retry={"maxAttempts": 2}))
    run.send(d.Start())
    run.complete_inline()
    run.send(d.NodeFailed("io", 1, "busy", retryable=True))
    run.send(d.Pause())
    assert run.send(d.TimerFired("retry", "io", 2), advance=60_000).events == []
    run.send(d.Resume())
    assert run.runs[-1] == d.RunNode("io", 2, False, "run")


def test_retry_from_failed_restarts_only_failed_nodes() -> None:
    run = Run(io_graph())
    run.send(d.Start())
    run.complete_inline()
    run.send(d.NodeFailed("io", 1, "missing"))
    run.send(d.RetryFailed("ada"))
    assert run.state.status == st.ExecutionStatus.RUNNING and run.runs[-1] == d.RunNode("io", 2, False, "run")
    assert run.state.node("src").status == st.NodeStatus.COMPLETED


def test_a_delay_completes_when_its_timer_fires_and_passes_its_inputs_on() -> None:
    run = Run(chain(node("wait", "delay", config={"duration": "30s"})))
    run.send(d.Start())
    run.complete_inline()
    assert (
        run.state.node("wait").status == st.NodeStatus.WAITING
        and run.timer("wait").fire_at_ms == run.now + 30_000
    )
    run.send(d.TimerFired("wait", "wait", 1), advance=30_000)
    assert run.outputs["wait"] == ("passthrough", None) and run.runs[-1].node_id == "out"


def test_a_signal_sent_before_the_node_waits_is_kept_for_it() -> None:
    g = graph_of(
        [node("go", "wait.signal", config={"name": "go"}), node("k", "aggregate.count")], [("go", "k")]
    )
    run = Run(g)
    run.send(d.Signal("early", {"x": 1}))  # before the start: an unrelated name, buffered
    run.send(d.Start())
    run.send(d.Signal("go", {"n": 7}, "ada"))
    assert (
        run.outputs["go"] == ("records", [{"n": 7}])
        and run.state.node("go").status == st.NodeStatus.COMPLETED
    )
    assert run.state.signals == {"early": ({"payload": {"x": 1}, "by": ""},)}


def test_an_approval_records_the_approver_and_a_rejection_fails_it() -> None:
    g = chain(node("gate", "approval"))
    ok = Run(g)
    ok.send(d.Start())
    ok.complete_inline()
    ok.send(d.Signal("approve", {"comment": "fine"}, "ada"))
    completed = [
        e.payload for e in ok.events if e.type == "NodeExecutionCompleted" and e.payload["nodeId"] == "gate"
    ]
    assert completed[0]["approvedBy"] == "ada"
    no = Run(g)
    no.send(d.Start())
    no.complete_inline()
    no.send(d.Signal("approve.reject", {"comment": "too dear"}, "bob"))
    assert no.state.status == st.ExecutionStatus.FAILED and "rejected by bob: too dear" in (
        no.state.error or ""
    )


def test_a_signal_wait_gives_up_after_its_timeout() -> None:
    g = graph_of(
        [node("go", "wait.signal", config={"name": "go", "timeout": "1m"}), node("k", "aggregate.count")],
        [("go", "k")],
    )
    run = Run(g)
    run.send(d.Start())
    run.send(d.TimerFired("wait_timeout", "go", 1), advance=60_000)
    assert run.state.status == st.ExecutionStatus.FAILED and "no signal 'go' within 60s" in (
        run.state.error or ""
    )


@pytest.mark.parametrize(
    ("where", "value", "field"),
    [
        ("node", {"maxAttempts": 0}, "nodes[0].retry.maxAttempts"),
        ("node", {"backoff": "random"}, "nodes[0].retry.backoff"),
        ("node", {"initialInterval": "soon"}, "nodes[0].retry.initialInterval"),
        ("settings", {"concurrency": {"max": 0}}, "settings.concurrency.max"),
        ("settings", {"concurrency": {"max": 2, "policy": "drop"}}, "settings.concurrency.policy"),
        ("settings", {"timeout": "-1s"}, "settings.timeout"),
    ],
)
def test_bad_policies_are_refused_naming_the_field(where: str, value: Any, field: str) -> None:
    raw: dict[str, Any] = {
        "id": "w",
        "name": "w",
        "nodes": [node("s", "sequence.numbers"), node("k", "console.log")],
        "edges": [{"id": "e", "source": "s", "target": "k"}],
    }
    if where == "node":
        raw["nodes"][0]["retry"] = value
    else:
        raw["settings"] = value
    with pytest.raises(DefinitionInvalid) as caught:
        validate(raw, current_sandbox())
    assert field in caught.value.problems, caught.value.problems


def test_node_retry_inherits_the_workflow_default_and_overrides_parts_of_it() -> None:
    g = io_graph(retry={"backoff": "fixed"}, settings={"retry": {"maxAttempts": 4, "initialInterval": "3s"}})
    policy = g.nodes["io"].retry
    assert (policy.max_attempts, policy.backoff, policy.initial_ms) == (4, "fixed", 3000)
    assert g.nodes["out"].retry.max_attempts == 4
