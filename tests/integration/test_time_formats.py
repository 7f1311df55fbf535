"""One time format per field name, on every route (issue 12; docs/api.md "Time formats").

The rule: the original's ``startTime`` and ``endTime`` are epoch milliseconds (its status, history and
timeline wrote them so); every other time is an ISO 8601 string. The one exception is the original's own: its
per-workflow executions list wrote ``startTime``/``endTime`` as ISO strings, and its clients parse them so
(the global executions list, whose items have that list's shape, shares it).

The test walks every operation of the schema (the walk of test_response_schemas.py, with every GET answer
kept), collects each field holding a time with its format, and checks the rule. Data that is not an API field
(an event's stored ``payload``, an execution's ``input``, output ``preview`` records, a node's ``config``) is
not walked: it is stored as written.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests import openapi_check
from tests.harness import Api
from tests.integration.test_response_schemas import RecordingApi, walk

EPOCH_MS_NAMES = frozenset({"startTime", "endTime"})
EXECUTIONS_LIST = "/api/v1/workflows/{workflow_id}/executions"
# The original's list, and the routes whose items have its shape (so that one parser reads them all): the
# global list, and a workflow's list followed live (``/poll``, ``/stream``).
EXECUTION_LISTS = re.compile(r"^/api/v1/(workflows/\{workflow_id\}/)?executions(/poll|/stream)?$")
# field names where the original itself wrote another format than the rule's there, kept for its clients
ORIGINAL_EXCEPTIONS = {"startTime": "iso", "endTime": "iso"}


def exception(name: str, route: str) -> str | None:
    return ORIGINAL_EXCEPTIONS.get(name) if EXECUTION_LISTS.match(route) else None


NOT_API_FIELDS = frozenset({"payload", "input", "preview", "config", "records"})

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
_TIME_NAME = re.compile(r"(Time|At|timestamp|Timestamp)$|^(lastSeen|until|start|end|cursor)$")

Found = dict[str, dict[str, set[str]]]  # name -> format -> routes


def format_of(name: str, value: Any) -> str | None:
    """``iso``, ``epoch-ms``, ``epoch-s``, ``other`` (a time-named field in no known format), or None."""
    if isinstance(value, str) and _ISO.match(value):
        return "iso"
    if isinstance(value, int) and not isinstance(value, bool):
        if 10**12 <= value < 10**14:
            return "epoch-ms"
        if 10**9 <= value < 10**11:
            return "epoch-s"
    if value is not None and _TIME_NAME.search(name) and not isinstance(value, dict | list):
        return "other"
    return None


def collect(value: Any, route: str, found: Found, name: str = "") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in NOT_API_FIELDS:
                collect(item, route, found, str(key))
    elif isinstance(value, list):
        for item in value:
            collect(item, route, found, name)
    elif name and (kind := format_of(name, value)) is not None:
        found.setdefault(name, defaultdict(set))[kind].add(route)


def violations(found: Found) -> list[str]:
    """Each field name whose formats break the rule, with the routes."""
    out = []
    for name, by_format in sorted(found.items()):
        expected = "epoch-ms" if name in EPOCH_MS_NAMES else "iso"
        for kind, routes in sorted(by_format.items()):
            wrong = {r for r in routes if (exception(name, r) or expected) != kind}
            if wrong:
                out.append(f"{name}: {kind} (the rule: {expected}) in {sorted(wrong)}")
    return out


class TimesApi(RecordingApi):
    """The walk's client, keeping every JSON answer of a GET by its route template."""

    def __init__(self, base: str, token: str) -> None:
        super().__init__(base, token)
        self.found: Found = {}
        self.gets: set[str] = set()

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        status, answer = super().call(method, path, body, headers)
        operation = openapi_check.find(method, path.split("?")[0])
        if operation is not None and method == "GET" and 200 <= status < 300:
            self.gets.add(operation.template)
            collect(answer, operation.template, self.found)
        return status, answer


@pytest.mark.usefixtures("live_db")
def test_every_time_field_name_has_one_format_on_every_route(api: Api, uid: str, tmp_path: Path) -> None:
    client = TimesApi(api.base, api.token)
    walk(client, uid, tmp_path)
    assert violations(client.found) == []
    assert {"startTime", "endTime", "createdAt", "timestamp", "nextAttemptAt", "until"} <= client.found.keys()
    assert client.found["startTime"].keys() == {"epoch-ms", "iso"}  # the original's exception is walked too
    assert EXECUTIONS_LIST in client.found["startTime"]["iso"]
    every_get = {op.template for op in openapi_check.operations() if op.method == "GET"}
    assert every_get - client.gets == set(), "GET routes the walk did not read"


@pytest.mark.parametrize(
    ("answers", "reported"),
    [
        ({"/a": {"startTime": 1_700_000_000_000}, "/b": {"x": [{"startTime": 1_700_000_000_000}]}}, None),
        (
            {"/a": {"startTime": 1_700_000_000_000}, "/b": {"startTime": "2024-01-01T00:00:00Z"}},
            "startTime: iso",
        ),
        ({EXECUTIONS_LIST: {"startTime": "2024-01-01T00:00:00.000Z"}}, None),
        (
            {"/a": {"createdAt": "2024-01-01T00:00:00+00:00"}, "/b": {"createdAt": 1_700_000_000}},
            "createdAt: epoch-s",
        ),
        ({"/a": {"nextAttemptAt": 1_700_000_000_000}}, "nextAttemptAt: epoch-ms"),
        ({"/a": {"updatedAt": "yesterday"}}, "updatedAt: other"),
        ({"/a": {"payload": {"timestamp": 1_700_000_000_000}, "timestamp": "2024-01-01T00:00:00Z"}}, None),
    ],
)
def test_the_check_reports_a_name_with_another_format(answers: dict[str, Any], reported: str | None) -> None:
    found: Found = {}
    for route, body in answers.items():
        collect(body, route, found)
    problems = violations(found)
    if reported is None:
        assert problems == []
    else:
        assert any(p.startswith(reported) for p in problems), problems
