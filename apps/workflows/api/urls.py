"""Routes of the workflows API; the paths and their order are the original's (origin-product.md §6.1).

``node-types`` comes before ``<workflow_id>``: a workflow cannot be named ``node-types`` (as in the original).
"""

from __future__ import annotations

from django.urls import path

from apps.workflows.api import (
    control,
    execute_es,
    executions,
    history,
    invariants,
    placement,
    streams,
    versions,
    views,
)

urlpatterns = [
    path("v1/workflows/node-types", views.NodeTypesView.as_view(), name="node-types"),
    path("v1/workflows", views.WorkflowListView.as_view(), name="workflows"),
    path("v1/workflows/<str:workflow_id>", views.WorkflowDetailView.as_view(), name="workflow"),
    path(
        "v1/workflows/<str:workflow_id>/execute", views.WorkflowExecuteView.as_view(), name="workflow-execute"
    ),
    path(
        "v1/workflows/<str:workflow_id>/execute-es",
        execute_es.WorkflowExecuteEsView.as_view(),
        name="workflow-execute-es",
    ),
    path("v1/workflows/<str:workflow_id>/status", views.WorkflowStatusView.as_view(), name="workflow-status"),
    path(
        "v1/workflows/<str:workflow_id>/versions", versions.VersionsView.as_view(), name="workflow-versions"
    ),
    path(
        "v1/workflows/<str:workflow_id>/versions/<str:number>",
        versions.VersionView.as_view(),
        name="workflow-version",
    ),
    path(
        "v1/workflows/<str:workflow_id>/executions",
        views.WorkflowExecutionsView.as_view(),
        name="workflow-executions",
    ),
    path(
        "v1/workflows/<str:workflow_id>/executions/stream",
        streams.WorkflowExecutionsStreamView.as_view(),
        name="workflow-executions-stream",
    ),
    path(
        "v1/workflows/<str:workflow_id>/executions/poll",
        streams.WorkflowExecutionsPollView.as_view(),
        name="workflow-executions-poll",
    ),
    path(
        "v1/workflows/<str:workflow_id>/executions/<str:execution_id>/logs",
        views.ExecutionLogsView.as_view(),
        name="execution-logs",
    ),
    path("v1/executions", executions.ExecutionsView.as_view(), name="executions"),
    path("v1/executions/<str:execution_id>", views.ExecutionView.as_view(), name="execution"),
    path(
        "v1/executions/<str:execution_id>/events",
        views.ExecutionEventsView.as_view(),
        name="execution-events",
    ),
    path(
        "v1/executions/<str:execution_id>/stream",
        streams.ExecutionStreamView.as_view(),
        name="execution-stream",
    ),
    path(
        "v1/executions/<str:execution_id>/events/poll",
        streams.ExecutionEventsPollView.as_view(),
        name="execution-events-poll",
    ),
    path("v1/executions/<str:execution_id>/cancel", control.CancelView.as_view(), name="execution-cancel"),
    path("v1/executions/<str:execution_id>/pause", control.PauseView.as_view(), name="execution-pause"),
    path("v1/executions/<str:execution_id>/resume", control.ResumeView.as_view(), name="execution-resume"),
    path("v1/executions/<str:execution_id>/retry", control.RetryView.as_view(), name="execution-retry"),
    path("v1/executions/<str:execution_id>/rerun", control.RerunView.as_view(), name="execution-rerun"),
    path(
        "v1/executions/<str:execution_id>/signals/<str:name>",
        control.SignalView.as_view(),
        name="execution-signal",
    ),
    path(
        "v1/cluster/workflow/<str:workflow_id>/location",
        placement.WorkflowLocationView.as_view(),
        name="cluster-workflow-location",
    ),
    path("v1/cluster/invariants", invariants.InvariantsView.as_view(), name="cluster-invariants"),
    path(
        "v1/cluster/invariants/repair",
        invariants.InvariantsRepairView.as_view(),
        name="cluster-invariants-repair",
    ),
    path(
        "v1/executions/<str:execution_id>/location",
        placement.ExecutionLocationView.as_view(),
        name="execution-location",
    ),
    path(
        "v1/events/workflow/<str:workflow_id>", placement.WorkflowEventsView.as_view(), name="events-workflow"
    ),
    path("history/<str:workflow_id>", history.HistoryView.as_view(), name="history"),
    path("history/<str:workflow_id>/status", history.HistoryStatusView.as_view(), name="history-status"),
    path(
        "history/<str:workflow_id>/execution/<str:execution_id>",
        history.HistoryExecutionView.as_view(),
        name="history-execution",
    ),
    path("history/<str:workflow_id>/timeline", history.TimelineView.as_view(), name="history-timeline"),
]
