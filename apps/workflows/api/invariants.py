"""``GET /api/v1/cluster/invariants`` and ``POST /api/v1/cluster/invariants/repair``: the invariant checker
(services/invariants.py) for admins. Here, not in apps/cluster, because it reads executions, which the cluster
does not know."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers as s
from rest_framework.request import Request
from rest_framework.response import Response

from apps.workflows.services import invariants
from workflow_engine import roles
from workflow_engine.api.base import ApiView, Query
from workflow_engine.api.schema import errors

# Only the admin role holds it: a scan reads the whole store, and a repair sends hints for any execution.
ADMIN_ONLY = (roles.MANAGE_WORKFLOWS,)
SHOWN = 1000  # findings listed in one answer; ``counts`` has them all
MAX_LIMIT = 1_000_000


class InvariantsQuery(Query):
    limit = s.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_LIMIT,
        default=invariants.DEFAULT_LIMIT,
        help_text=f"Executions whose journals are read, in id order (default {invariants.DEFAULT_LIMIT}).",
    )
    after = s.CharField(
        required=False,
        max_length=64,
        default="",
        help_text="Read journals of executions after this id: the previous answer's nextAfter.",
    )


class FindingSerializer(s.Serializer):
    kind = s.ChoiceField(choices=list(invariants.KINDS))
    detail = s.CharField(help_text="What is wrong, in words.")
    executionId = s.CharField(allow_null=True, help_text="The execution concerned (null for a shard).")
    shardId = s.IntegerField(allow_null=True)
    timerId = s.IntegerField(allow_null=True, help_text="The overdue timer (timer_overdue only).")
    repairable = s.BooleanField(help_text="Whether POST .../repair repairs it.")
    repaired = s.BooleanField(help_text="Whether this request repaired it (sent the hint, fired the timer).")


CountsSerializer = type(
    "InvariantCountsSerializer",
    (s.Serializer,),
    {kind: s.IntegerField(help_text=f"{kind} findings.") for kind in invariants.KINDS},
)


class InvariantsReportSerializer(s.Serializer):
    clean = s.BooleanField(help_text="True when nothing was found.")
    scannedExecutions = s.IntegerField(help_text="Executions whose journals were read.")
    nextAfter = s.CharField(
        allow_null=True, help_text="Set when the journal scan stopped at limit: pass it as after to go on."
    )
    counts = CountsSerializer(help_text="Findings by kind (all of them, however many are listed).")
    findings = FindingSerializer(many=True, help_text=f"At most {SHOWN}.")


_EXAMPLE = OpenApiExample(
    "a stuck execution",
    value={
        "clean": False,
        "scannedExecutions": 1200,
        "nextAfter": None,
        "counts": {kind: int(kind == invariants.NO_WAY_FORWARD) for kind in invariants.KINDS},
        "findings": [
            {
                "kind": "no_way_forward",
                "detail": "running execution with no way forward: running attempts k#1 have no live claim",
                "executionId": "0b6f7d1c-...",
                "shardId": 42,
                "timerId": None,
                "repairable": True,
                "repaired": False,
            }
        ],
    },
    response_only=True,
)


def _scan(request: Request, *, repair: bool) -> dict[str, Any]:
    query = InvariantsQuery.parse(request.query_params)
    return invariants.scan(repair=repair, limit=query["limit"], after=query["after"]).as_json(SHOWN)


@extend_schema(tags=["cluster"])
class InvariantsView(ApiView):
    """Scan the store for what the engine's invariants forbid: executions without a way forward, shards
    without a live owner, overdue timers, journals with gaps or with a stale writer's events. Admins only.
    Each kind found is also an ``invariant_violation`` cluster event and ``workflow_invariant_violations``."""

    permissions = {"GET": ADMIN_ONLY}

    @extend_schema(
        summary="Check the engine's invariants (admin)",
        parameters=[InvariantsQuery],
        responses={200: InvariantsReportSerializer, **errors(400, 401, 403, 503)},
        examples=[_EXAMPLE],
    )
    def get(self, request: Request) -> Response:
        return Response(_scan(request, repair=False))


@extend_schema(tags=["cluster"])
class InvariantsRepairView(ApiView):
    """Scan as ``GET .../invariants``, then repair what is safe: a recovery hint to each stuck execution
    with running attempts to re-run, and the overdue timers fired. Idempotent. Admins only."""

    permissions = {"POST": ADMIN_ONLY}

    @extend_schema(
        summary="Check the engine's invariants and repair what is safe (admin)",
        parameters=[InvariantsQuery],
        request=None,
        responses={200: InvariantsReportSerializer, **errors(400, 401, 403, 503)},
        examples=[_EXAMPLE],
    )
    def post(self, request: Request) -> Response:
        return Response(_scan(request, repair=True))
