"""What the journal can store: node outputs jsonb refuses fail their node, with a message naming the value."""

from __future__ import annotations

import math
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from apps.workflows.engine import poison
from apps.workflows.engine.state import ExecutionState, ExecutionStatus, NodeState, NodeStatus
from apps.workflows.services import runner
from apps.workflows.services.persist import engine_json, to_json
from workflow_engine import storable


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([float("inf")], "output record 0 is Infinity, which JSON cannot store"),
        ([1, {"x": -math.inf}], "output record 1 field 'x' is -Infinity, which JSON cannot store"),
        ([{"a": [1, {"b": math.nan}]}], "output record 0 field 'a' item 1 field 'b' is NaN"),
        (["ok", "a\x00b"], "output record 1 is a text with a NUL character (\\u0000), which PostgreSQL"),
        ([{"k\x00": 1}], "output record 0 is an object with a key holding a NUL character"),
        ([{"s": "\ud800"}], "output record 0 field 's' is a text with a lone UTF-16 surrogate"),
        ([{"when": object()}], "output record 0 field 'when' is of type object, which JSON cannot store"),
        ([{(1, 2): "tuple key"}], "output record 0 is an object with a tuple key"),
    ],
)
def test_an_output_jsonb_cannot_store_fails_the_node_naming_the_value(
    records: list[Any], message: str
) -> None:
    outcome = runner.check_limits("m", 1, records, len(records), [])
    assert not outcome.ok and outcome.records is None
    assert message in (outcome.error or ""), outcome.error
    assert outcome.retryable is False


def test_an_output_nested_deeper_than_the_journal_takes_fails_the_node() -> None:
    deep: list[Any] = []
    inner = deep
    for _ in range(2000):
        inner.append([])
        inner = inner[0]
    outcome = runner.check_limits("m", 1, [deep], 1, [])
    assert not outcome.ok and f"nested deeper than {storable.MAX_DEPTH} levels" in (outcome.error or "")


@pytest.mark.parametrize(
    "records",
    [
        [1, 2.5, "text", None, True, {"nested": [{"a": "ü€😀"}]}],
        ["a literal backslash-u0000: \\u0000"],
        [{"1e300": 1e300, "neg": -0.0}],
    ],
)
def test_storable_outputs_pass_with_their_size_in_utf8_bytes(records: list[Any]) -> None:
    outcome = runner.check_limits("m", 1, records, len(records), [])
    assert outcome.ok and outcome.records == records
    assert outcome.size_bytes == len(storable.encode(records))


def test_an_output_over_max_node_output_bytes_fails_the_node_naming_the_setting() -> None:
    with override_settings(WORKFLOW_ENGINE={**settings.WORKFLOW_ENGINE, "max-node-output-bytes": 1000}):
        outcome = runner.check_limits("m", 1, ["x" * 1000], 1, [])
    assert not outcome.ok and "exceeds max-node-output-bytes=1000" in (outcome.error or "")


def test_the_byte_limit_cannot_be_set_above_what_jsonb_stores() -> None:
    from django.core.exceptions import ImproperlyConfigured

    from workflow_engine.tunables import load

    with pytest.raises(ImproperlyConfigured, match="max-node-output-bytes"):
        load({"max-node-output-bytes": 300 * 1024 * 1024})


def test_an_error_message_and_log_lines_are_made_storable_and_bounded() -> None:
    outcome = runner.Outcome("n", 1, None, 0, 0, "bad \x00 \ud800 " + "x" * 100_000, logs=["log \x00"])
    assert outcome.error is not None and "\x00" not in outcome.error and "\ud800" not in outcome.error
    assert len(outcome.error) < storable.MAX_TEXT + 100 and "more characters" in outcome.error
    assert outcome.logs == ["log \ufffd"]
    assert storable.problem(outcome.error) is None


def test_to_json_refuses_what_jsonb_refuses_and_engine_rows_are_scrubbed_instead() -> None:
    with pytest.raises(storable.Unstorable, match="Infinity"):
        to_json([{"records": [math.inf]}])
    text = engine_json([{"payload": {"error": "a\x00b", "n": math.nan, "by": object()}}], "event")
    assert "\\u0000" not in text and "NaN" not in text and '"n":null' in text


def test_poison_fails_an_execution_once_stopping_its_running_attempts() -> None:
    state = ExecutionState(
        "e1", "w", status=ExecutionStatus.RUNNING, nodes={"a": NodeState(NodeStatus.RUNNING, attempt=2)}
    )
    decision = poison.fail(state, "w", "apply failed 5 times: DataError: boom", 1000)
    assert [e.type for e in decision.events] == ["WorkflowFailed"]
    assert decision.state.status == ExecutionStatus.FAILED and decision.state.error.startswith("apply failed")
    assert decision.stops == [("a", 2)]
    assert poison.fail(decision.state, "w", "again", 2000).events == []


def test_poison_cancels_without_the_graph_as_decide_would() -> None:
    state = ExecutionState(
        "e1", "w", status=ExecutionStatus.RUNNING, nodes={"a": NodeState(NodeStatus.WAITING, 1)}
    )
    decision = poison.cancel(state, "w", "give up", "ops", 1000)
    assert [e.type for e in decision.events] == ["WorkflowCancelled"]
    assert decision.state.status == ExecutionStatus.CANCELLED and decision.stops == [("a", 1)]
    assert decision.events[0].payload["reason"] == "give up" and decision.events[0].payload["by"] == "ops"
