"""Response shapes for the OpenAPI schema (documentation only: the views return plain dicts).

Field names are the original product's camelCase ones (origin-product.md §3.5, §6): its clients keep working.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample
from rest_framework import serializers as s

from workflow_engine.api.schema import OpenSerializer

# --- the workflow DSL (origin-product.md §1.1) --------------------------------------------------------------


class PositionSerializer(s.Serializer):
    x = s.FloatField()
    y = s.FloatField()


# A definition is answered as it was posted, and the DSL ignores fields it does not know (as the original's
# parser did), so these objects are open: a client's own fields come back.


class NodeSerializer(OpenSerializer):
    id = s.CharField()
    type = s.ChoiceField(choices=["source", "transform", "sink"], required=False)
    nodeType = s.CharField(help_text="A type from GET /api/v1/workflows/node-types.")
    label = s.CharField(required=False)  # type: ignore[assignment]  # a DSL field, not Field.label
    position = PositionSerializer(required=False)
    config = s.DictField(required=False)
    style = s.DictField(required=False)  # type: ignore[assignment]
    retry = s.DictField(
        required=False,
        help_text='{"maxAttempts": 3, "backoff": "exponential", "initialInterval": "1s", '
        '"maxInterval": "1m", "multiplier": 2, "jitter": 0.1, "retryOn": "retryable"}',
    )
    timeout = s.JSONField(required=False, help_text='A duration ("30s", "5m") or a number of seconds.')


class EdgeSerializer(OpenSerializer):
    id = s.CharField()
    source = s.CharField()  # type: ignore[assignment]
    target = s.CharField()
    sourceHandle = s.CharField(required=False)
    targetHandle = s.CharField(required=False)
    animated = s.BooleanField(required=False)
    label = s.CharField(required=False)  # type: ignore[assignment]
    style = s.DictField(required=False)  # type: ignore[assignment]


class WorkflowDefinitionSerializer(OpenSerializer):
    id = s.CharField(max_length=200)
    name = s.CharField()
    description = s.CharField(required=False, allow_blank=True)
    version = s.CharField(required=False)
    author = s.CharField(required=False)
    tags = s.ListField(child=s.CharField(), required=False)
    nodes = NodeSerializer(many=True)
    edges = EdgeSerializer(many=True)
    metadata = s.DictField(required=False)
    settings = s.DictField(
        required=False,
        help_text='Workflow-wide policies: {"retry": {...}, "timeout": "10m", '
        '"concurrency": {"max": 2, "policy": "queue"}}.',
    )


MINIMAL_WORKFLOW = OpenApiExample(
    "Minimal workflow",
    request_only=True,
    value={
        "id": "wf1",
        "name": "n",
        "description": "",
        "version": "1.0",
        "author": "a",
        "tags": [],
        "nodes": [
            {
                "id": "s",
                "type": "source",
                "nodeType": "sequence.numbers",
                "label": "S",
                "position": {"x": 0, "y": 0},
                "config": {"start": 1, "end": 5},
            },
            {
                "id": "k",
                "type": "sink",
                "nodeType": "console.log",
                "label": "K",
                "position": {"x": 1, "y": 0},
                "config": {},
            },
        ],
        "edges": [{"id": "e1", "source": "s", "target": "k"}],
        "metadata": {"createdAt": "2024-01-01T00:00:00Z", "updatedAt": "2024-01-01T00:00:00Z"},
    },
)


class NodeTypesSerializer(s.Serializer):
    source = s.ListField(child=s.DictField())  # type: ignore[assignment]
    transform = s.ListField(child=s.DictField())
    sink = s.ListField(child=s.DictField())


# --- drafts: a save that does not validate is kept, with its problems (docs/api.md, Drafts) -----------------


def _valid() -> s.BooleanField:
    return s.BooleanField(
        help_text="Whether the latest save validates. false: it is a draft, kept as saved; it cannot be "
        "executed or scheduled (400 invalid_definition listing its problems) until a valid save."
    )


def _problems() -> s.DictField:
    return s.DictField(
        child=s.ListField(child=s.CharField()),
        help_text="The latest save's validation problems by field, as a 400's details: "
        '{"nodes[1].config.path": ["Required."]}; {} when valid.',
    )


class WorkflowHeadSerializer(OpenSerializer):
    """A workflow's latest save, as posted, with the DSL's defaults and ``valid``/``problems``. When valid, it
    is a WorkflowDefinition; a draft holds whatever JSON object the client saved (with a valid ``id``)."""

    id = s.CharField(max_length=200)
    valid = _valid()
    problems = _problems()


DRAFT_WORKFLOW = OpenApiExample(
    "A draft (an empty workflow, to be edited)",
    request_only=True,
    value={"id": "wf1", "name": "n", "nodes": [], "edges": []},
)


class WorkflowCreatedSerializer(s.Serializer):
    message = s.CharField()
    workflowId = s.CharField()
    version = s.IntegerField(help_text="The number of the last valid version: 1, or 0 for a draft.")
    scheduleStatus = s.CharField()
    valid = _valid()
    problems = _problems()


class WorkflowUpdatedSerializer(s.Serializer):
    message = s.CharField()
    workflowId = s.CharField()
    version = s.IntegerField(
        help_text="The number of the last valid version (a draft creates none; 0 when there is none yet)."
    )
    changed = s.BooleanField(help_text="false when the latest save already was this body.")
    valid = _valid()
    problems = _problems()


class WorkflowDeletedSerializer(s.Serializer):
    message = s.CharField()
    workflowId = s.CharField()


class ExecutionStartedSerializer(s.Serializer):
    message = s.CharField()
    executionId = s.CharField(
        allow_null=True, help_text="null when the concurrency policy skipped the start."
    )
    workflowId = s.CharField(allow_null=True)
    status = s.CharField(
        help_text='"started", "queued" or "skipped" (concurrency policy), or the status of the execution an '
        "earlier request with the same Idempotency-Key started."
    )
    note = s.CharField()
    duplicate = s.BooleanField(required=False, help_text="Present (true) when the Idempotency-Key was used.")


# --- executions ---------------------------------------------------------------------------------------------


class CurrentExecutionSerializer(s.Serializer):
    executionId = s.CharField()
    status = s.CharField()
    startTime = s.IntegerField(allow_null=True, help_text="Epoch milliseconds.")
    endTime = s.IntegerField(allow_null=True)
    completedNodes = s.IntegerField()
    totalNodes = s.IntegerField()


class LastExecutionSerializer(s.Serializer):
    executionId = s.CharField()
    status = s.CharField()
    startTime = s.IntegerField(allow_null=True, help_text="Epoch milliseconds.")
    endTime = s.IntegerField(allow_null=True)


class WorkflowStatusSerializer(s.Serializer):
    workflowId = s.CharField()
    version = s.IntegerField(allow_null=True, help_text="The current version's number.")
    createdBy = s.CharField(allow_null=True, help_text="The user who created the workflow.")
    createdAt = s.DateTimeField()
    updatedBy = s.CharField(allow_null=True, help_text="The user who made the current version.")
    updatedAt = s.DateTimeField()
    state = s.CharField(help_text='"running", the latest execution\'s status, or "idle".')
    executionCount = s.IntegerField()
    currentExecution = CurrentExecutionSerializer(allow_null=True)
    lastExecution = LastExecutionSerializer(allow_null=True)


class ExecutionListItemSerializer(s.Serializer):
    executionId = s.CharField()
    status = s.CharField()
    startTime = s.DateTimeField(
        help_text="ISO 8601, as the original's executions list (the one route where the original's "
        "startTime and endTime are not epoch milliseconds; docs/api.md, Time formats)."
    )
    endTime = s.DateTimeField(allow_null=True, help_text="ISO 8601, as startTime.")
    logsCount = s.IntegerField()


class LogEntrySerializer(s.Serializer):
    timestamp = s.DateTimeField()
    nodeId = s.CharField(allow_blank=True)
    level = s.CharField()
    message = s.CharField()


class ExecutionLogsSerializer(s.Serializer):
    executionId = s.CharField()
    logs = s.ListField(child=s.CharField(), help_text='"[ISO time] [nodeId] message" lines.')
    entries = LogEntrySerializer(many=True)


class NodeDetailSerializer(s.Serializer):
    nodeId = s.CharField()
    nodeType = s.CharField()
    attempt = s.IntegerField()
    startTime = s.IntegerField(help_text="Epoch milliseconds.")
    endTime = s.IntegerField(required=False)
    duration = s.IntegerField(required=False)
    status = s.CharField()
    recordsProcessed = s.IntegerField()
    error = s.CharField(required=False)
    willRetry = s.BooleanField(required=False, help_text="On a failed attempt: whether another one follows.")
    nextAttemptAt = s.DateTimeField(required=False, help_text="ISO 8601: when the retry starts.")
    retryDelayMs = s.IntegerField(required=False)
    waitingFor = s.ChoiceField(
        choices=["timer", "signal", "approval"], required=False, help_text="While the node waits."
    )
    signal = s.CharField(required=False, help_text="The signal (or approval) name it waits for.")
    until = s.DateTimeField(required=False, help_text="ISO 8601: when a timer wait ends.")
    approvedBy = s.CharField(required=False, help_text="The user who approved an approval node.")


class NodeOutputSerializer(s.Serializer):
    attempt = s.IntegerField()
    recordCount = s.IntegerField()
    sizeBytes = s.IntegerField()
    preview = s.ListField(child=s.JSONField(), help_text="The first 20 records.")


class ExecutionSerializer(s.Serializer):
    executionId = s.CharField()
    workflowId = s.CharField()
    version = s.IntegerField()
    shardId = s.IntegerField()
    status = s.CharField()
    trigger = s.CharField()
    startedBy = s.CharField(
        allow_null=True, help_text="The user who started it (execute or rerun); null for a schedule's fire."
    )
    input = s.DictField(help_text="The execution's input (output by the execution.input node).")
    createdAt = s.DateTimeField()
    startTime = s.IntegerField(allow_null=True, help_text="Epoch milliseconds.")
    endTime = s.IntegerField(allow_null=True)
    duration = s.IntegerField(allow_null=True)
    error = s.CharField(required=False)
    failedNodeId = s.CharField(required=False)
    lastSeq = s.IntegerField()
    nodes = NodeDetailSerializer(many=True)
    outputs = s.DictField(child=NodeOutputSerializer(), help_text="{nodeId: output of its latest attempt}")


class EventSerializer(s.Serializer):
    seq = s.IntegerField()
    type = s.CharField()
    payload = s.DictField()
    epoch = s.IntegerField()
    timestamp = s.DateTimeField()


class ExecutionEventsSerializer(s.Serializer):
    executionId = s.CharField()
    events = EventSerializer(many=True)


# --- history (projections of the events, origin-product.md §3.5) --------------------------------------------


class ExecutionDetailSerializer(s.Serializer):
    executionId = s.CharField()
    workflowName = s.CharField(required=False)
    startTime = s.IntegerField(required=False, help_text="Epoch milliseconds.")
    endTime = s.IntegerField(required=False)
    status = s.CharField()
    duration = s.IntegerField(required=False)
    error = s.CharField(required=False)
    failedNodeId = s.CharField(required=False)
    nodes = NodeDetailSerializer(many=True)


class HistorySerializer(s.Serializer):
    workflowId = s.CharField()
    executions = ExecutionDetailSerializer(many=True)


class ExecutionSummarySerializer(s.Serializer):
    executionId = s.CharField()
    startTime = s.IntegerField(required=False)
    endTime = s.IntegerField(required=False)
    status = s.CharField()
    duration = s.IntegerField(required=False)


class HistoryStatusSerializer(s.Serializer):
    workflowId = s.CharField()
    state = s.CharField()
    currentExecution = CurrentExecutionSerializer(required=False)
    allExecutions = ExecutionSummarySerializer(many=True)


class TimelineNodeSerializer(s.Serializer):
    nodeId = s.CharField()
    nodeType = s.CharField()
    attempt = s.IntegerField()
    startTime = s.IntegerField(allow_null=True)
    endTime = s.IntegerField(allow_null=True)
    duration = s.IntegerField(allow_null=True)
    status = s.CharField()
    recordsProcessed = s.IntegerField()
    error = s.CharField(allow_null=True)


class TimelineSerializer(s.Serializer):
    executionId = s.CharField()
    startTime = s.IntegerField(allow_null=True)
    endTime = s.IntegerField(allow_null=True)
    duration = s.IntegerField(allow_null=True)
    status = s.CharField()
    nodes = TimelineNodeSerializer(many=True)


# --- health -------------------------------------------------------------------------------------------------


class CheckSerializer(s.Serializer):
    status = s.ChoiceField(choices=["ok", "error"])
    latencyMs = s.FloatField(required=False)
    error = s.CharField(required=False)


class HealthSerializer(s.Serializer):
    status = s.ChoiceField(choices=["healthy", "unhealthy"])
    checks = s.DictField(child=CheckSerializer())


class LiveSerializer(s.Serializer):
    status = s.CharField()


# --- where executions live (their shards and the shards' owners) ------------------------------------------


class ExecutionLocationSerializer(s.Serializer):
    executionId = s.CharField()
    workflowId = s.CharField()
    shardId = s.IntegerField(help_text="Computed once at creation and stored.")
    owner = s.CharField(allow_null=True, help_text="The worker that owns the shard now.")
    epoch = s.IntegerField()
    status = s.CharField()


class LocatedExecutionSerializer(s.Serializer):
    executionId = s.CharField()
    shardId = s.IntegerField()
    owner = s.CharField(allow_null=True)
    epoch = s.IntegerField()
    status = s.CharField()


class WorkflowLocationSerializer(s.Serializer):
    workflowId = s.CharField()
    shardId = s.IntegerField(
        allow_null=True,
        help_text="The original's field: the newest active execution's shard (null when none is active).",
    )
    nodeAddress = s.CharField(
        allow_null=True, help_text="The original's field: the worker owning that shard now (or null)."
    )
    shardIds = s.ListField(child=s.IntegerField(), help_text="The shards of the listed executions.")
    executions = LocatedExecutionSerializer(
        many=True, help_text="Active executions, newest first (100 at most)."
    )
