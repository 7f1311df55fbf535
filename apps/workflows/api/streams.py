"""Live updates: Server-Sent Events streams and their long-poll twins (docs/api.md, "Live updates").

A stream holds one gateway thread for its whole life (gunicorn ``gthread``), so each is bounded
(docs/architecture.md, "Live updates"): it lasts at most ``stream-max-duration`` and the client reconnects
with ``Last-Event-ID`` (``retry:`` tells EventSource how soon); it sends a comment every
``stream-heartbeat-interval`` when idle, so a gone client is noticed at the next write; and at most
``Slots.limit()`` streams and waiting long polls run at once in a gateway process, fewer than its threads,
so ordinary requests always find one. Over the limit: 429 with ``Retry-After``. What changed is read by
``services/streams.py`` from PostgreSQL every ``stream-poll-interval``.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework import serializers as s
from rest_framework.request import Request
from rest_framework.response import Response

from apps.workflows.api.schema import EventSerializer, ExecutionListItemSerializer
from apps.workflows.api.views import execution_id_of, workflow_id_of
from apps.workflows.services import streams
from apps.workflows.services.streams import Message
from workflow_engine.api.base import ApiView, Query
from workflow_engine.api.schema import errors
from workflow_engine.tunables import engine_settings

MAX_SEQ = 2**31 - 1  # event.seq is a PostgreSQL integer
MAX_EVENT_ID = 2**63 - 1  # event.id is a bigint
RETRY_MS = 1000  # how soon EventSource reconnects after a stream closes
RETRY_AFTER = 5  # seconds, on a 429 for want of a slot
T = TypeVar("T")


# --- the bound on streams per process ---------------------------------------------------------------------


class Slots:
    """How many streams and waiting long polls this process runs; one gunicorn worker process each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.taken = 0

    @staticmethod
    def limit() -> int:
        threads = int(settings.GATEWAY_THREADS)
        wanted = engine_settings.stream_max_open or max(1, threads // 2)
        return min(wanted, threads - 1)

    def take(self) -> None:
        """Take a slot, or raise ``Throttled`` (429 with ``Retry-After``)."""
        with self._lock:
            limit = self.limit()
            if self.taken >= limit:
                raise exceptions.Throttled(
                    wait=RETRY_AFTER,
                    detail=f"This gateway already serves its {limit} live streams and waiting polls; retry "
                    f"after {RETRY_AFTER} seconds, or poll without waiting.",
                )
            self.taken += 1

    def give_back(self) -> None:
        with self._lock:
            self.taken -= 1

    @contextmanager
    def held(self) -> Iterator[None]:
        self.take()
        try:
            yield
        finally:
            self.give_back()


slots = Slots()


class Bound:
    """A stream's time bound: ``poll()`` sleeps until the next read and answers whether time is left."""

    def __init__(self, duration: float) -> None:
        self.deadline = time.monotonic() + duration

    def over(self) -> bool:
        return time.monotonic() >= self.deadline

    def poll(self) -> bool:
        left = self.deadline - time.monotonic()
        if left > 0:
            time.sleep(min(engine_settings.stream_poll_interval, left))
        return not self.over()


# --- Server-Sent Events ------------------------------------------------------------------------------------


def sse(message: Message) -> bytes:
    """One SSE message; the data is one line of JSON (``json.dumps`` escapes every line break)."""
    lines = [] if message.id is None else [f"id: {message.id}"]
    lines += [f"event: {message.event}", f"data: {json.dumps(message.data, separators=(',', ':'))}"]
    return ("\n".join(lines) + "\n\n").encode()


def heartbeat(cursor: int | None) -> bytes:
    """A comment; with a cursor, also an ``id`` alone, which moves the client's ``Last-Event-ID`` without an
    event (the SSE rule: an empty message dispatches nothing but sets the last event id)."""
    return b": keep-alive\n" + (f"id: {cursor}\n" if cursor is not None else "").encode() + b"\n"


class EventStream:
    """The body of a stream response. The WSGI server calls ``close()`` when the stream ends or the client
    goes, even if it never iterated: the slot is given back there, exactly once."""

    def __init__(self, messages: Iterator[Message], bound: Bound, *, cursor_in_heartbeat: bool) -> None:
        self.messages, self.bound, self.cursor_in_heartbeat = messages, bound, cursor_in_heartbeat
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield f"retry: {RETRY_MS}\n\n".encode()
        written = time.monotonic()
        cursor: int | None = None
        for message in self.messages:
            if not message.tick:
                yield sse(message)
                written = time.monotonic()
            else:
                cursor = message.id if self.cursor_in_heartbeat else None
                if time.monotonic() - written >= engine_settings.stream_heartbeat_interval:
                    yield heartbeat(cursor)
                    written = time.monotonic()
            if self.bound.over():
                break
        if cursor is not None:
            yield heartbeat(cursor)  # the cursor to reconnect with, even if no event came

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            close = getattr(self.messages, "close", None)  # a generator: runs its cleanup
            if close is not None:
                close()
            slots.give_back()


def stream_response(
    follow: Callable[[Bound], Iterator[Message]], timeout: float | None, *, cursor_in_heartbeat: bool
) -> Any:
    slots.take()
    try:
        bound = Bound(timeout or engine_settings.stream_max_duration)
        body = EventStream(follow(bound), bound, cursor_in_heartbeat=cursor_in_heartbeat)
    except BaseException:
        slots.give_back()
        raise
    response = StreamingHttpResponse(body, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each message on at once
    return response


def long_poll(read: Callable[[], T], news: Callable[[T], bool], wait: float) -> T:
    """``read()`` now; when it has no news, again every poll interval for up to ``wait`` seconds, holding a
    slot meanwhile (429 when none is free)."""
    found = read()
    if news(found) or wait <= 0:
        return found
    with slots.held():
        bound = Bound(wait)
        while bound.poll():
            found = read()
            if news(found):
                break
        else:
            found = read()
    return found


# --- input ----------------------------------------------------------------------------------------------


_DIGITS = re.compile(r"[0-9]{1,19}")


def last_event_id(request: Request, high: int) -> int | None:
    """The ``Last-Event-ID`` header (EventSource's resume point), or None."""
    value = request.headers.get("Last-Event-ID")
    if not value:
        return None
    if not _DIGITS.fullmatch(value) or int(value) > high:
        raise exceptions.ValidationError(
            {"Last-Event-ID": [f"Must be an id this stream sent: a whole number from 0 to {high}."]}
        )
    return int(value)


def _check_wait(value: float) -> float:
    if not math.isfinite(value) or value > engine_settings.stream_max_duration:
        raise exceptions.ValidationError(
            f"Must be a number of seconds from 0 to {engine_settings.stream_max_duration:g} "
            "(stream-max-duration)."
        )
    return value


WAIT_HELP = (
    "Seconds to wait for news when there is none yet (0 to stream-max-duration; default 0: answer now)."
)


def _check_timeout(value: float | None) -> float | None:
    if value is not None and (not math.isfinite(value) or value > engine_settings.stream_max_duration):
        raise exceptions.ValidationError(
            f"Must be a number of seconds from 1 to {engine_settings.stream_max_duration:g} "
            "(stream-max-duration)."
        )
    return value


TIMEOUT_HELP = "Close the stream after this many seconds (1 to stream-max-duration, the default)."


class StreamQuery(Query):
    timeout = s.FloatField(required=False, min_value=1, default=None, allow_null=True, help_text=TIMEOUT_HELP)

    def validate_timeout(self, value: float | None) -> float | None:
        return _check_timeout(value)


class SeqQuery(StreamQuery):
    after = s.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_SEQ,
        default=0,
        help_text="Only events with a greater seq (default 0: all). Last-Event-ID, when sent, wins.",
    )


class SeqWaitQuery(Query):
    after = SeqQuery._declared_fields["after"]
    wait = s.FloatField(required=False, min_value=0, default=0, help_text=WAIT_HELP)

    def validate_wait(self, value: float) -> float:
        return _check_wait(value)


class CursorQuery(StreamQuery):
    after = s.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_EVENT_ID,
        default=None,
        allow_null=True,
        help_text="A cursor this route gave (an SSE id, or `next`): only changes after it. Default: from now "
        "on. Last-Event-ID, when sent, wins.",
    )


class CursorWaitQuery(Query):
    after = CursorQuery._declared_fields["after"]
    wait = s.FloatField(required=False, min_value=0, default=0, help_text=WAIT_HELP)

    def validate_wait(self, value: float) -> float:
        return _check_wait(value)


LAST_EVENT_ID = OpenApiParameter(
    "Last-Event-ID",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="The id of the last message received (EventSource sends it when it reconnects): the stream "
    "resumes after it. A whole number; wins over `after`.",
)


class StreamView(ApiView):
    """Errors are JSON whatever the ``Accept`` header (EventSource sends ``text/event-stream``): only the
    stream itself is an event stream."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        return super().perform_content_negotiation(request, force=True)


# --- an execution's events ------------------------------------------------------------------------------

EXECUTION_STREAM = """Server-Sent Events: each journal event of the execution once, in `seq` order:

```
id: 3
event: NodeExecutionStarted
data: {"seq":3,"type":"NodeExecutionStarted","payload":{...},"epoch":1,"timestamp":"..."}
```

`data` is the event as `GET /api/v1/executions/{id}/events` gives it. Once the execution is terminal and every
event was sent: `event: end` with `data: {"status": "completed", "lastSeq": 7}`, and the stream closes. A
comment (`: keep-alive`) every few seconds while idle. The stream closes after `stream-max-duration`
(default 30 s): reconnect with `Last-Event-ID` (EventSource does, after `retry:` ms) and nothing is sent
twice."""


class ExecutionChangesSerializer(s.Serializer):
    executionId = s.CharField()
    status = s.CharField(help_text="The execution's status now.")
    events = EventSerializer(many=True, help_text="The events after `after`, by seq (at most 500).")
    next = s.IntegerField(help_text="The seq to send as `after` next time.")
    done = s.BooleanField(help_text="Terminal, and every event sent: nothing more will come.")


@extend_schema(tags=["executions"])
class ExecutionStreamView(StreamView):
    @extend_schema(
        summary="Follow an execution's events live (Server-Sent Events)",
        parameters=[SeqQuery, LAST_EVENT_ID],
        responses={
            (200, "text/event-stream"): OpenApiResponse(OpenApiTypes.STR, description=EXECUTION_STREAM),
            204: OpenApiResponse(
                description="The execution is terminal and nothing is left after the cursor: stop "
                "reconnecting (EventSource does on a 204)."
            ),
            **errors(400, 401, 404),
        },
    )
    def get(self, request: Request, execution_id: str) -> Any:
        execution_id = execution_id_of(execution_id)
        header = last_event_id(request, MAX_SEQ)
        query = SeqQuery.parse(request.query_params)
        after = query["after"] if header is None else header
        first = streams.execution_changes(execution_id, after)  # 404 before streaming
        if first.done and not first.events:
            return HttpResponse(status=204)

        def follow(bound: Bound) -> Iterator[Message]:
            return streams.follow_execution(execution_id, after, poll=bound.poll)

        return stream_response(follow, query["timeout"], cursor_in_heartbeat=False)


@extend_schema(tags=["executions"])
class ExecutionEventsPollView(StreamView):
    @extend_schema(
        summary="Wait for an execution's next events (long poll)",
        description="Answers at once when there are events after `after` (or the execution is over), else "
        "waits up to `wait` seconds for some. The twin of `.../stream` for clients that cannot read SSE.",
        parameters=[SeqWaitQuery],
        responses={200: ExecutionChangesSerializer, **errors(400, 401, 404)},
    )
    def get(self, request: Request, execution_id: str) -> Response:
        execution_id = execution_id_of(execution_id)
        query = SeqWaitQuery.parse(request.query_params)
        changes = long_poll(
            lambda: streams.execution_changes(execution_id, query["after"]),
            lambda c: bool(c.events) or c.done,
            query["wait"],
        )
        return Response(
            {
                "executionId": execution_id,
                "status": changes.status,
                "events": changes.events,
                "next": changes.next,
                "done": changes.done,
            }
        )


# --- a workflow's executions ----------------------------------------------------------------------------

WORKFLOW_STREAM = """Server-Sent Events: an event each time an execution of the workflow starts or changes
status (started, paused, resumed, retried, completed, failed, cancelled):

```
id: 91234
event: execution
data: {"executionId":"...","status":"running","startTime":"...","endTime":null,"logsCount":0}
```

`data` is the execution as it is now, in the shape of `GET /api/v1/workflows/{id}/executions`' items (two
changes close together may arrive as one). `id` is a cursor (a journal position): reconnect with
`Last-Event-ID` to miss nothing. Heartbeats (`: keep-alive`) carry the cursor in an `id:` line too. The stream
closes after `stream-max-duration` (default 30 s); EventSource reconnects by itself."""


class WorkflowChangesSerializer(s.Serializer):
    workflowId = s.CharField()
    executions = ExecutionListItemSerializer(many=True, help_text="Executions that changed, as they are now.")
    next = s.IntegerField(help_text="The cursor to send as `after` next time.")


@extend_schema(tags=["executions"])
class WorkflowExecutionsStreamView(StreamView):
    @extend_schema(
        summary="Follow a workflow's executions live (Server-Sent Events)",
        parameters=[CursorQuery, LAST_EVENT_ID],
        responses={
            (200, "text/event-stream"): OpenApiResponse(OpenApiTypes.STR, description=WORKFLOW_STREAM),
            **errors(400, 401, 404),
        },
    )
    def get(self, request: Request, workflow_id: str) -> Any:
        workflow_id = workflow_id_of(workflow_id)
        header = last_event_id(request, MAX_EVENT_ID)
        query = CursorQuery.parse(request.query_params)
        after = query["after"] if header is None else header
        streams.require_workflow(workflow_id)

        def follow(bound: Bound) -> Iterator[Message]:
            return streams.follow_workflow(workflow_id, after, poll=bound.poll)

        return stream_response(follow, query["timeout"], cursor_in_heartbeat=True)


@extend_schema(tags=["executions"])
class WorkflowExecutionsPollView(StreamView):
    @extend_schema(
        summary="Wait for changes of a workflow's executions (long poll)",
        description="Answers at once when executions changed after `after`, else waits up to `wait` seconds "
        "for a change. Without `after`: changes from now on. The twin of `.../executions/stream`.",
        parameters=[CursorWaitQuery],
        responses={200: WorkflowChangesSerializer, **errors(400, 401, 404)},
    )
    def get(self, request: Request, workflow_id: str) -> Response:
        workflow_id = workflow_id_of(workflow_id)
        query = CursorWaitQuery.parse(request.query_params)
        streams.require_workflow(workflow_id)
        horizon = streams.Horizon()
        cursor = horizon.start() if query["after"] is None else query["after"]

        def read() -> list[Message]:
            nonlocal cursor
            messages, cursor = streams.workflow_changes(workflow_id, cursor, horizon.advance())
            return messages

        messages = long_poll(read, bool, query["wait"])
        return Response({"workflowId": workflow_id, "executions": [m.data for m in messages], "next": cursor})
