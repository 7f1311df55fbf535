"""Cluster routes: members and leader (Redis), shard ownership, execution locations and cluster events
(PostgreSQL), and the original's plain-text ``/monitoring/cluster/status``.

Thin adapters over ``apps.cluster.queries``. Redis or PostgreSQL being down is a 503 in the error shape
(``workflow_engine/api/errors.py``), never a 500.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from apps.cluster import queries, startup
from apps.cluster.api import serializers as inp
from apps.cluster.api.schema import (
    ClusterEventsSerializer,
    ClusterMembersSerializer,
    ClusterShardsSerializer,
    ClusterStatsSerializer,
    EventStatsSerializer,
)
from workflow_engine.api.base import ApiView, path_id
from workflow_engine.api.schema import errors
from workflow_engine.errors import NotFound

# --- /api/v1/cluster/ ---------------------------------------------------------------------------------------


@extend_schema(tags=["cluster"])
class ClusterStatsView(ApiView):
    """Live members from Redis with the shards and active executions each owns, and whether work can move:
    "Down" while no shard has a live owner (the last worker left or died), "Degraded" while some shard has
    none or no coordinator leads, each with its reason in ``reasons``."""

    @extend_schema(
        summary="Cluster members, leader and sharding summary",
        responses={200: ClusterStatsSerializer, **errors(401, 503)},
    )
    def get(self, request: Request) -> Response:
        return Response(
            queries.cluster_stats(
                settings.WORKFLOW_NODE_NAME, list(settings.WORKFLOW_ROLES), startup.known_cluster_id()
            )
        )


@extend_schema(tags=["cluster"])
class ClusterShardsView(ApiView):
    """Each shard's lease (owner, epoch, the term that wrote it, state) and its active executions."""

    @extend_schema(
        summary="Every shard: owner, epoch and active executions",
        responses={200: ClusterShardsSerializer, **errors(401, 503)},
    )
    def get(self, request: Request) -> Response:
        return Response(queries.cluster_shards())


@extend_schema(tags=["cluster"])
class ClusterMembersView(ApiView):
    """Every member process ever recorded in ``cluster_clustermember``, newest first. ``status`` is "up"
    while its Redis liveness key lives, else "down" (expired) or "left" (a clean exit)."""

    @extend_schema(
        summary="Every known member process, newest first, with its liveness",
        parameters=[inp.MembersQuery],
        responses={200: ClusterMembersSerializer, **errors(400, 401, 503)},
    )
    def get(self, request: Request) -> Response:
        return Response(queries.cluster_members(**inp.MembersQuery.parse(request.query_params)))


# --- /api/v1/events -----------------------------------------------------------------------------------------


def _event_type(value: str) -> str:
    """Any storable type is answered (types are open-ended); a longer one cannot exist."""
    if len(value) > inp.EVENT_TYPE_LENGTH:
        raise NotFound("Event type not found.")
    return path_id(value, "Event type")


@extend_schema(tags=["events"])
class EventsView(ApiView):
    """The stored ``CLUSTER_EVENT`` records (member_event, leader_changed, shard_rebalance, ...), each with
    its ``id``. Poll with ``since_id`` set to the highest id seen."""

    @extend_schema(
        operation_id="api_v1_events_retrieve",
        summary="Cluster events, newest first, filtered by type and workflow",
        parameters=[inp.EventsQuery],
        responses={200: ClusterEventsSerializer, **errors(400, 401, 503)},
    )
    def get(self, request: Request) -> Response:
        return Response(queries.cluster_events(**inp.EventsQuery.parse(request.query_params)))


@extend_schema(tags=["events"])
class EventsOfTypeView(ApiView):
    """As ``GET /api/v1/events?event_type=...``; the original's documented route."""

    @extend_schema(
        operation_id="api_v1_events_of_type_retrieve",
        summary="Cluster events of one type, newest first",
        parameters=[inp.EventsPageQuery],
        responses={200: ClusterEventsSerializer, **errors(400, 401, 404, 503)},
    )
    def get(self, request: Request, event_type: str) -> Response:
        query = inp.EventsPageQuery.parse(request.query_params)
        return Response(queries.cluster_events(event_type=_event_type(event_type), **query))


@extend_schema(tags=["events"])
class EventStatsView(ApiView):
    """Counts of the stored cluster events by type and severity, and over the last 24 hours."""

    @extend_schema(
        summary="Cluster event counts by type, by severity and over the last 24 hours",
        responses={200: EventStatsSerializer, **errors(401, 503)},
    )
    def get(self, request: Request) -> Response:
        return Response(queries.event_stats())


# --- /monitoring/cluster/status -----------------------------------------------------------------------------


class PlainTextRenderer(BaseRenderer):
    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return str(data).encode(self.charset)


class _AlwaysText(BaseContentNegotiation):
    """The route is text whatever the Accept header says, as the original's was."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(
        self, request: Request, renderers: Any, format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return PlainTextRenderer(), PlainTextRenderer.media_type


def status_text(status: queries.ClusterStatus) -> str:
    """The original's format (origin-product.md §5.5), one member per line."""
    lines = [
        "Cluster Status:",
        f"Self: {status.self_name} (roles: {', '.join(status.self_roles)})",
        f"Leader: {status.leader or 'None'}",
        f"Members: {len(status.members)}",
        *(f"  - {m.member_id} (Up, roles: {m.role})" for m in status.members),
        f"Unreachable: {status.unreachable_count}",
        *(f"  - {member_id}" for member_id in status.unreachable),
    ]
    if status.unreachable_count > len(status.unreachable):
        lines.append(f"  ... and {status.unreachable_count - len(status.unreachable)} more")
    # after the original's lines, which scripts may read by position
    lines.append(f"Status: {status.health.status}")
    lines += [f"  - {reason}" for reason in status.health.reasons]
    lines.append(f"Shards: {status.health.live_owned} of {status.total_shards} with a live owner")
    return "\n".join(lines) + "\n"


def _json_errors(responses: dict[int, OpenApiResponse]) -> dict[Any, Any]:
    return {(code, JSONRenderer.media_type): response for code, response in responses.items()}


@extend_schema(tags=["cluster"])
class ClusterStatusTextView(ApiView):
    """Text for people and scripts; errors keep the API's JSON shape."""

    renderer_classes = [PlainTextRenderer]
    content_negotiation_class = _AlwaysText

    @extend_schema(
        summary="Cluster status as text: self, leader, members, unreachable members",
        responses={(200, PlainTextRenderer.media_type): OpenApiTypes.STR, **_json_errors(errors(401, 503))},
    )
    def get(self, request: Request) -> Response:
        status = queries.cluster_status(settings.WORKFLOW_NODE_NAME, list(settings.WORKFLOW_ROLES))
        return Response(status_text(status), headers={"Cache-Control": "no-store"})

    def handle_exception(self, exc: Exception) -> Response:
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)
