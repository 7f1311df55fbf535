"""Output limits: a node producing more than the configured records or bytes fails with a clear error."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.test import override_settings

from apps.workflows.engine.validation import compile_definition
from apps.workflows.nodes.sandbox import current_sandbox
from apps.workflows.services import runner


def body(end: int) -> dict[str, Any]:
    return {
        "id": "w",
        "name": "w",
        "nodes": [
            {"id": "s", "nodeType": "sequence.numbers", "config": {"start": 1, "end": end}},
            {"id": "k", "nodeType": "console.log", "config": {}},
        ],
        "edges": [{"id": "e", "source": "s", "target": "k"}],
    }


def limited(**limits: int) -> Any:
    return override_settings(WORKFLOW_ENGINE={**settings.WORKFLOW_ENGINE, **limits})


def test_more_records_than_the_limit_fail_the_node_naming_the_setting() -> None:
    wf, graph = compile_definition(body(11), current_sandbox())
    with limited(**{"max-node-output-records": 10}):
        outcome = runner.run(wf, graph, "e1", "s", 1, {})
    assert not outcome.ok and "11 records exceeds max-node-output-records=10" in (outcome.error or "")


def test_more_bytes_than_the_limit_fail_the_node_naming_the_setting() -> None:
    wf, graph = compile_definition(body(1000), current_sandbox())
    with limited(**{"max-node-output-bytes": 100}):
        outcome = runner.run(wf, graph, "e1", "s", 1, {})
    assert not outcome.ok and "exceeds max-node-output-bytes=100" in (outcome.error or "")


def test_within_the_limits_the_records_pass() -> None:
    wf, graph = compile_definition(body(10), current_sandbox())
    with limited(**{"max-node-output-records": 10}):
        outcome = runner.run(wf, graph, "e1", "s", 1, {})
    assert outcome.ok and outcome.records == list(range(1, 11))
