"""The HTTP client: the REST API of docs/api.md as Python methods, for programs and for the CLI.

``Client(url, token)`` answers the API's own JSON objects (dicts and lists, camelCase as the API writes them)
and raises a ``wfe.errors`` exception for every failure, so a caller never checks a status code. ``wait`` and
``watch`` follow the execution's Server-Sent Events stream, resuming with ``Last-Event-ID`` when it closes
(the server closes every stream after ``stream-max-duration``), and fall back to the long poll when a proxy
does not pass the stream.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import requests

from wfe import __version__, validate
from wfe.errors import (
    ApiError,
    ConflictError,
    ConnectionFailed,
    NotFoundError,
    WaitTimeout,
    error_class,
)
from wfe.sse import SseEvent, SseParser, parse_stream

STREAM_READ_TIMEOUT = 45.0  # seconds without a byte: the server sends a keep-alive every 5 s
POLL_WAIT = 25.0  # seconds a long poll waits for news
_NO_BODY = object()


def _segment(value: str) -> str:
    """A path segment: ids may hold characters that mean something in a URL."""
    return quote(str(value), safe="")


class Client:
    """A connection to one gateway. ``timeout`` bounds each ordinary request (seconds); streams wait longer.

    >>> client = Client("http://127.0.0.1:8080", token)
    >>> started = client.start("orders-sync", input={"day": "2026-05-01"})
    >>> client.wait(started["executionId"])["status"]
    'completed'
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = f"wfe/{__version__}"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    # -- plumbing --------------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = _NO_BODY,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        timeout: float | tuple[float, float] | None = None,
    ) -> requests.Response:
        """One call; a 4xx or 5xx raises its ``ApiError`` subclass, a network failure ``ConnectionFailed``."""
        kwargs: dict[str, Any] = {
            "params": {k: v for k, v in (params or {}).items() if v is not None},
            "headers": dict(headers or {}),
            "stream": stream,
            "timeout": timeout or self.timeout,
        }
        if body is not _NO_BODY:
            kwargs["json"] = body
        try:
            response = self.session.request(method, self.url + path, **kwargs)
        except requests.ConnectionError as exc:
            raise ConnectionFailed(_why(exc, self.url), server=self.url) from exc
        except requests.Timeout as exc:
            raise ConnectionFailed(f"no answer within {kwargs['timeout']} s", server=self.url) from exc
        except requests.RequestException as exc:
            raise ConnectionFailed(str(exc), server=self.url) from exc
        if response.status_code >= 400:
            raise self._error(method, path, response)
        return response

    def _error(self, method: str, path: str, response: requests.Response) -> ApiError:
        try:
            body = response.json()
        except ValueError:
            body = response.text[:500]
        fields = body if isinstance(body, dict) else {}
        details = fields.get("details")
        return error_class(response.status_code)(
            response.status_code,
            server=self.url,
            method=method,
            path=path,
            error=str(fields.get("error") or ""),
            message=str(fields.get("message") or (body if isinstance(body, str) else "")),
            details=details if isinstance(details, dict) else {},
            body=body,
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON of one call (None for an empty answer, such as a 204)."""
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # -- workflows -------------------------------------------------------------------------------------------

    def list_workflows(
        self,
        *,
        q: str | None = None,
        tag: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[dict[str, Any]]:
        """The latest save of each workflow (``q`` searches id, name and description; ``tag`` is exact)."""
        return list(
            self.call(
                "GET", "/api/v1/workflows", params={"q": q, "tag": tag, "limit": limit, "offset": offset}
            )
        )

    def iter_workflows(
        self, *, q: str | None = None, tag: str | None = None, page: int = 200
    ) -> Iterator[dict[str, Any]]:
        """Every matching workflow, fetched ``page`` at a time."""
        offset = 0
        while True:
            rows = self.list_workflows(q=q, tag=tag, limit=page, offset=offset)
            yield from rows
            if len(rows) < page:
                return
            offset += page

    def get_workflow(self, workflow_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", f"/api/v1/workflows/{_segment(workflow_id)}")
        return result

    def get_version(self, workflow_id: str, number: int) -> dict[str, Any]:
        """One version of a workflow, with its ``definition`` as posted."""
        result: dict[str, Any] = self.call(
            "GET", f"/api/v1/workflows/{_segment(workflow_id)}/versions/{_segment(str(number))}"
        )
        return result

    def workflow_etag(self, workflow_id: str) -> str | None:
        """The ``ETag`` naming the workflow's current save (for ``If-Match``)."""
        return self.request("GET", f"/api/v1/workflows/{_segment(workflow_id)}").headers.get("ETag")

    def create_workflow(self, definition: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", "/api/v1/workflows", body=dict(definition))
        return result

    def update_workflow(
        self, definition: Mapping[str, Any], *, if_match: str | None = None
    ) -> dict[str, Any]:
        """A new version (or a draft); with ``if_match``, a 412 ``ConflictError`` if it changed meanwhile."""
        headers = {"If-Match": if_match} if if_match else None
        path = f"/api/v1/workflows/{_segment(definition['id'])}"
        result: dict[str, Any] = self.call("PUT", path, body=dict(definition), headers=headers)
        return result

    def apply_workflow(self, definition: Mapping[str, Any]) -> dict[str, Any]:
        """Create the workflow, or update it when it exists; the answer has ``"created": True|False``.

        The update is conditional on the version read just before (``If-Match``), so two appliers racing
        never overwrite each other blindly: the loser gets a ``ConflictError`` (412) and may apply again."""
        if not isinstance(definition.get("id"), str):
            raise ValueError("A workflow definition needs a string 'id'.")
        try:
            etag = self.workflow_etag(definition["id"])
        except NotFoundError:
            try:
                return {**self.create_workflow(definition), "created": True}
            except ConflictError as exc:  # created by someone else meanwhile: update it
                if exc.status != 409:
                    raise
                etag = self.workflow_etag(definition["id"])
        return {**self.update_workflow(definition, if_match=etag), "created": False}

    def delete_workflow(self, workflow_id: str, *, if_match: str | None = None) -> None:
        headers = {"If-Match": if_match} if if_match else None
        self.call("DELETE", f"/api/v1/workflows/{_segment(workflow_id)}", headers=headers)

    def validate_workflow(self, definition: Any) -> dict[str, list[str]]:
        """The definition's problems (empty: valid), checked here with the pure engine, as the API checks
        it. There is no validating route: the API saves an invalid body as a draft. Checks that depend on
        the server's configuration (allow-lists) are left out; ``wfe.validate`` explains."""
        return validate.validate(definition).problems

    # -- executions ------------------------------------------------------------------------------------------

    def start(
        self,
        workflow_id: str,
        input: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Start an execution; the answer has ``executionId`` and ``status`` (``started``, ``queued`` or
        ``skipped``), and ``duplicate: true`` when ``idempotency_key`` was used before with this input."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        body = {"input": dict(input)} if input is not None else {}
        result: dict[str, Any] = self.call(
            "POST", f"/api/v1/workflows/{_segment(workflow_id)}/execute", body=body, headers=headers
        )
        return result

    def get_execution(self, execution_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", f"/api/v1/executions/{_segment(execution_id)}")
        return result

    def list_executions(
        self,
        *,
        workflow: str | list[str] | None = None,
        status: str | list[str] | None = None,
        trigger: str | list[str] | None = None,
        started_after: str | None = None,
        started_before: str | None = None,
        ended_after: str | None = None,
        ended_before: str | None = None,
        id_prefix: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        count: bool = False,
    ) -> dict[str, Any]:
        """One page: ``{"executions": [...], "nextCursor": ... | None}`` (and ``total`` with ``count``)."""
        params = {
            "workflowId": _joined(workflow),
            "status": _joined(status),
            "trigger": _joined(trigger),
            "startedAfter": started_after,
            "startedBefore": started_before,
            "endedAfter": ended_after,
            "endedBefore": ended_before,
            "idPrefix": id_prefix,
            "limit": limit,
            "cursor": cursor,
            "count": "true" if count else None,
        }
        result: dict[str, Any] = self.call("GET", "/api/v1/executions", params=params)
        return result

    def iter_executions(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every matching execution, newest first, following ``nextCursor`` to the last page."""
        cursor = filters.pop("cursor", None)
        while True:
            page = self.list_executions(cursor=cursor, **filters)
            yield from page["executions"]
            cursor = page.get("nextCursor")
            if not cursor:
                return

    def events(self, execution_id: str, *, after: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """The journal's events after ``after`` (seq), oldest first."""
        body = self.call(
            "GET",
            f"/api/v1/executions/{_segment(execution_id)}/events",
            params={"after": after, "limit": limit},
        )
        return list(body["events"])

    def logs(self, execution_id: str, *, limit: int | None = None, offset: int | None = None) -> list[str]:
        """The execution's log lines (the route sits under its workflow, read from the execution)."""
        workflow_id = self.get_execution(execution_id)["workflowId"]
        path = f"/api/v1/workflows/{_segment(workflow_id)}/executions/{_segment(execution_id)}/logs"
        body = self.call("GET", path, params={"limit": limit, "offset": offset})
        return list(body["logs"])

    def outputs(self, execution_id: str) -> dict[str, dict[str, Any]]:
        """The execution detail's ``outputs``: ``{nodeId: {attempt, recordCount, sizeBytes, preview}}``, of
        each node's latest attempt that produced output (``preview``: its first records)."""
        return dict(self.get_execution(execution_id).get("outputs") or {})

    def _control(
        self, execution_id: str, command: str, body: Any, idempotency_key: str | None
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        result: dict[str, Any] = self.call(
            "POST", f"/api/v1/executions/{_segment(execution_id)}/{command}", body=body, headers=headers
        )
        return result

    def cancel(
        self, execution_id: str, *, reason: str | None = None, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        return self._control(execution_id, "cancel", {"reason": reason} if reason else {}, idempotency_key)

    def pause(self, execution_id: str, *, idempotency_key: str | None = None) -> dict[str, Any]:
        return self._control(execution_id, "pause", {}, idempotency_key)

    def resume(self, execution_id: str, *, idempotency_key: str | None = None) -> dict[str, Any]:
        return self._control(execution_id, "resume", {}, idempotency_key)

    def retry(self, execution_id: str, *, idempotency_key: str | None = None) -> dict[str, Any]:
        """Retry a failed execution from its failed nodes."""
        return self._control(execution_id, "retry", {}, idempotency_key)

    def rerun(self, execution_id: str, *, idempotency_key: str | None = None) -> dict[str, Any]:
        """A new execution of the same version; answers like ``start``."""
        return self._control(execution_id, "rerun", {}, idempotency_key)

    def signal(
        self, execution_id: str, name: str, payload: Any = None, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Send signal ``name`` with ``payload`` (any JSON value; None sends no body, a null payload)."""
        body = _NO_BODY if payload is None else payload
        return self._control(execution_id, f"signals/{_segment(name)}", body, idempotency_key)

    def approve(
        self, execution_id: str, node_or_signal: str, *, comment: str | None = None, reject: bool = False
    ) -> dict[str, Any]:
        """Approve (or reject) an approval node: by the node's id when one waits under that id, else by its
        signal name. Rejecting sends ``<signal>.reject`` (engine/waits.py), with ``{"comment": ...}``."""
        signal = node_or_signal
        for node in self.get_execution(execution_id).get("nodes", []):
            if (
                node.get("nodeId") == node_or_signal
                and node.get("waitingFor") == "approval"
                and node.get("signal")
            ):
                signal = node["signal"]
                break
        if reject:
            signal = f"{signal}.reject"
        return self.signal(execution_id, signal, {"comment": comment or ""})

    # -- following an execution ------------------------------------------------------------------------------

    def stream(
        self, execution_id: str, *, after: int = 0, deadline: float | None = None
    ) -> Iterator[SseEvent]:
        """The execution's SSE messages, journal events and the final ``end``, across reconnects: each
        reconnect sends ``Last-Event-ID`` so no event is missed or repeated. Falls back to the long poll
        (``events/poll``) when the gateway answers the stream with something else than an event stream.
        Stops at ``end`` (or at ``deadline``, a ``time.monotonic()`` value)."""
        last = after
        path = f"/api/v1/executions/{_segment(execution_id)}/stream"
        while deadline is None or time.monotonic() < deadline:
            params: dict[str, Any] = {}
            if deadline is not None and deadline - time.monotonic() < 25:
                params["timeout"] = round(max(1.0, deadline - time.monotonic()), 1)
            headers = {"Accept": "text/event-stream", "Last-Event-ID": str(last)}
            try:
                response = self.request(
                    "GET",
                    path,
                    params=params,
                    headers=headers,
                    stream=True,
                    timeout=(self.timeout, STREAM_READ_TIMEOUT),
                )
            except ApiError as exc:
                if exc.status in (405, 406, 429, 501):
                    yield from self._poll_events(execution_id, last, deadline)
                    return
                raise
            with response:
                if response.status_code == 204:  # ended, and nothing after `last`
                    yield SseEvent("end", "{}", str(last))
                    return
                if not response.headers.get("Content-Type", "").startswith("text/event-stream"):
                    yield from self._poll_events(execution_id, last, deadline)
                    return
                parser = SseParser()
                try:
                    for message in parse_stream(response.iter_content(chunk_size=None), parser):
                        if message.id and message.id.isdigit():
                            last = int(message.id)
                        yield message
                        if message.event == "end":
                            return
                except requests.RequestException:
                    pass  # the connection broke: reconnect from `last`
                if parser.retry_ms:
                    time.sleep(min(parser.retry_ms, 5000) / 1000 * 0.1)

    def _poll_events(self, execution_id: str, after: int, deadline: float | None) -> Iterator[SseEvent]:
        path = f"/api/v1/executions/{_segment(execution_id)}/events/poll"
        while deadline is None or time.monotonic() < deadline:
            wait = POLL_WAIT if deadline is None else max(0.0, min(POLL_WAIT, deadline - time.monotonic()))
            body = self.call(
                "GET",
                path,
                params={"after": after, "wait": round(wait, 1)},
                timeout=(self.timeout, wait + 30),
            )
            for event in body["events"]:
                after = event["seq"]
                yield SseEvent(event["type"], _json_text(event), str(event["seq"]))
            if body.get("done"):
                yield SseEvent(
                    "end", _json_text({"status": body.get("status"), "lastSeq": after}), str(after)
                )
                return

    def watch(self, execution_id: str, *, after: int = 0) -> Iterator[dict[str, Any]]:
        """The execution's journal events as they are written (dicts as ``events`` gives them), until it
        ends."""
        for message in self.stream(execution_id, after=after):
            if message.event == "end":
                return
            yield _json_value(message.data)

    def wait(self, execution_id: str, *, timeout: float | None = None) -> dict[str, Any]:
        """Block until the execution ends, following its stream; the final execution (``status`` one of
        completed, failed, cancelled). ``WaitTimeout`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for message in self.stream(execution_id, deadline=deadline):
            if message.event == "end":
                break
        execution = self.get_execution(execution_id)
        WaitTimeout.unless_ended(execution_id, execution, timeout, server=self.url)
        return execution

    # -- schedules -------------------------------------------------------------------------------------------

    def list_schedules(
        self, *, workflow_id: str | None = None, state: str | None = None
    ) -> list[dict[str, Any]]:
        body = self.call("GET", "/api/v1/schedules", params={"workflowId": workflow_id, "state": state})
        return list(body["schedules"])

    def create_schedule(self, schedule: Mapping[str, Any]) -> dict[str, Any]:
        """``schedule``: ``workflowId``, ``scheduleType``, ``interval`` or ``cronExpression``... (docs)."""
        result: dict[str, Any] = self.call("POST", "/api/v1/schedules", body=dict(schedule))
        return result

    def get_schedule(self, schedule_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", f"/api/v1/schedules/{_segment(schedule_id)}")
        return result

    def delete_schedule(self, schedule_id: str) -> None:
        self.call("DELETE", f"/api/v1/schedules/{_segment(schedule_id)}")

    def pause_schedule(self, schedule_id: str) -> dict[str, Any]:
        """Pause a schedule, or every schedule of a workflow when given a workflow id."""
        result: dict[str, Any] = self.call(
            "POST", f"/api/v1/schedules/{_segment(schedule_id)}/pause", body={}
        )
        return result

    def resume_schedule(self, schedule_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            "POST", f"/api/v1/schedules/{_segment(schedule_id)}/resume", body={}
        )
        return result

    def preview_schedule(self, schedule_id: str, *, count: int = 10) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            "GET", f"/api/v1/schedules/{_segment(schedule_id)}/preview", params={"count": count}
        )
        return result

    def backfill(
        self, schedule_id: str, *, start: str, end: str, max_active: int | None = None
    ) -> dict[str, Any]:
        """Run the schedule's fire times in ``[start, end)``, at most ``max_active`` at once (202)."""
        body: dict[str, Any] = {"start": start, "end": end}
        if max_active is not None:
            body["maxActive"] = max_active
        result: dict[str, Any] = self.call(
            "POST", f"/api/v1/schedules/{_segment(schedule_id)}/backfill", body=body
        )
        return result

    def get_backfill(self, backfill_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", f"/api/v1/backfills/{_segment(backfill_id)}")
        return result

    # -- cluster ---------------------------------------------------------------------------------------------

    def cluster_stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", "/api/v1/cluster/stats")
        return result

    def cluster_members(self, *, status: str | None = None, limit: int | None = None) -> Any:
        return self.call("GET", "/api/v1/cluster/members", params={"status": status, "limit": limit})

    def cluster_shards(self) -> Any:
        return self.call("GET", "/api/v1/cluster/shards")

    def cluster_events(
        self,
        *,
        event_type: str | None = None,
        workflow_id: str | None = None,
        limit: int | None = None,
        since_id: int | None = None,
    ) -> Any:
        params = {"event_type": event_type, "workflow_id": workflow_id, "limit": limit, "since_id": since_id}
        return self.call("GET", "/api/v1/events", params=params)

    # -- API tokens (admins only: other roles get a 403) -----------------------------------------------------

    def list_tokens(self) -> list[dict[str, Any]]:
        """``{id, name, username, prefix, createdAt, expiresAt, lastUsedAt}`` per token."""
        body = self.call("GET", "/api/v1/auth/tokens")
        return list(body["tokens"] if isinstance(body, dict) else body)

    def create_token(
        self, name: str, *, username: str | None = None, expires: str | None = None
    ) -> dict[str, Any]:
        """A new token; its key is in ``token``, shown this once."""
        body: dict[str, Any] = {"name": name}
        if username:
            body["username"] = username
        if expires:
            body["expires"] = expires
        result: dict[str, Any] = self.call("POST", "/api/v1/auth/tokens", body=body)
        return result

    def revoke_token(self, token_id: str | int) -> None:
        self.call("DELETE", f"/api/v1/auth/tokens/{_segment(str(token_id))}")


def _joined(value: str | list[str] | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return ",".join(value) or None


def _json_text(value: Any) -> str:
    return json.dumps(value)


def _json_value(text: str) -> Any:
    return json.loads(text)


def _why(exc: requests.ConnectionError, url: str) -> str:
    """A short reason for a failed connection (requests' own message nests three exception reprs)."""
    text = str(exc)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("Temporary failure in name resolution", "unknown host (DNS)"),
        ("timed out", "timed out"),
        ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted"),
        ("No route to host", "no route to host"),
    ):
        if needle in text:
            return f"cannot connect to {url}: {reason}"
    return f"cannot connect to {url}: {text[:200]}"
