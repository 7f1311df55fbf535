"""Prometheus metrics, with the original product's names (origin-product.md §7.1) where they apply.

Processes run under prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by run_node),
and the node's exporter on :9095 merges them. Gauges therefore declare a ``multiprocess_mode``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

workflow_created_total = Counter("workflow_created_total", "Workflow definitions created.", ["status"])
workflow_execution_total = Counter(
    "workflow_execution_total",
    "Executions by workflow and status (started, completed, failed).",
    ["workflow_id", "status"],
)
workflow_execution_duration_seconds = Histogram(
    "workflow_execution_duration_seconds",
    "Execution duration from WorkflowStarted to its end event.",
    ["workflow_id", "status"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
workflow_node_duration_seconds = Histogram(
    "workflow_node_duration_seconds",
    "Node attempt duration.",
    ["node_type", "status"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120),
)
workflow_routing_latency_seconds = Histogram(
    "workflow_routing_latency_seconds",
    "Time from a command's acceptance to its application by the shard owner.",
    ["operation"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
workflow_events_appended_total = Counter(
    "workflow_events_appended_total", "Journal events appended.", ["type"]
)
workflow_fence_failures_total = Counter(
    "workflow_fence_failures_total", "Appends refused because this worker does not own the shard."
)
workflow_snapshots_total = Counter("workflow_snapshots_total", "Snapshots written.")
workflow_entity_count = Gauge(
    "workflow_entity_count", "Hydrated executions cached in this process.", multiprocess_mode="livesum"
)
http_requests_total = Counter("http_requests_total", "HTTP requests.", ["method", "path", "status"])
http_request_duration_seconds = Histogram(
    "http_request_duration_seconds",
    "HTTP request duration.",
    ["method", "path"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
# --- data that could wedge an execution (issue 10): every one of these is something an operator should see
workflow_unstorable_scrubbed_total = Counter(
    "workflow_unstorable_scrubbed_total",
    "Engine-written rows (events, logs, head) holding a value jsonb refuses, stored scrubbed.",
    ["what"],
)
workflow_apply_failures_total = Counter(
    "workflow_apply_failures_total",
    "Applies that failed on something neither transient nor a lock timeout, by what followed "
    "(retry, cancelled, failed: the execution was ended; stuck: even ending it failed).",
    ["outcome"],
)
workflow_apply_budget_exceeded_total = Counter(
    "workflow_apply_budget_exceeded_total",
    "Executions whose apply in a shard batch ran past apply-batch-budget; they are applied alone after.",
)
workflow_sweeper_stuck_total = Counter(
    "workflow_sweeper_stuck_total",
    "Executions the sweeper gave up re-driving (reported once as an execution_stuck cluster event).",
    ["reason"],
)
workflow_failover_total = Counter(
    "workflow_failover_total",
    "Executions recovered by a new owner after their owner's liveness expired.",
    ["workflow_id", "from_node", "to_node"],
)
sweeper_redrives_total = Counter(
    "workflow_sweeper_redrives_total", "Executions the sweeper woke up again, by reason.", ["reason"]
)
stuck_executions = Gauge(
    "workflow_stuck_executions",
    "Non-terminal executions the last sweep had to re-drive.",
    multiprocess_mode="livemostrecent",
)
# --- the invariant checker (services/invariants.py): set by its last scan, whichever process ran it
workflow_invariant_violations = Gauge(
    "workflow_invariant_violations",
    "Findings of the last invariant check, by kind (no_way_forward, shard_unowned, timer_overdue, "
    "journal_gap, epoch_regression, outcome_duplicated).",
    ["kind"],
    multiprocess_mode="mostrecent",
)
workflow_invariant_repairs_total = Counter(
    "workflow_invariant_repairs_total", "Findings the invariant checker repaired, by kind.", ["kind"]
)
