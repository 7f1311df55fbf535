"""``wfe schedules``, ``wfe cluster`` and ``wfe tokens``."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from wfe.cli import render
from wfe.cli.context import emit, out, state
from wfe.cli.options import OutputOpt

Str = Optional[str]  # noqa: UP045 - Typer reads annotations at run time

schedules = typer.Typer(
    help="Schedules: list, create, pause, resume, preview, backfill.", no_args_is_help=True
)
cluster = typer.Typer(help="The cluster: status, members, shards, events.", no_args_is_help=True)
tokens = typer.Typer(help="API tokens (admins; shown once when created).", no_args_is_help=True)


SCHEDULE_COLUMNS = ["id", "workflowId", "scheduleType", "interval", "cronExpression", "state", "nextFireAt"]


@schedules.command("list")
def schedules_list(
    ctx: typer.Context,
    workflow: Annotated[Str, typer.Option("--workflow", "-w", help="Only this workflow's.")] = None,
    state_: Annotated[Str, typer.Option("--state", help="active, paused or stopped.")] = None,
    output: OutputOpt = None,
) -> None:
    """List schedules."""
    rows = state(ctx).client().list_schedules(workflow_id=workflow, state=state_)
    emit(ctx, output, rows, lambda r: render.table(r, SCHEDULE_COLUMNS))


@schedules.command("create")
def schedules_create(
    ctx: typer.Context,
    workflow: Annotated[str, typer.Option("--workflow", "-w", help="The workflow it starts.")],
    schedule_type: Annotated[str, typer.Option("--type", help="fixed_rate, fixed_delay, cron or immediate.")],
    interval: Annotated[Str, typer.Option(help="For fixed_rate/fixed_delay: 30s, 5m, 1h, 1d.")] = None,
    cron: Annotated[Str, typer.Option(help="For cron: five fields, e.g. '30 2 * * MON-FRI'.")] = None,
    timezone: Annotated[Str, typer.Option(help="IANA zone for cron (default UTC).")] = None,
    name: Annotated[Str, typer.Option(help="A name.")] = None,
    jitter: Annotated[Str, typer.Option(help="Random delay up to this, e.g. 30s.")] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
    output: OutputOpt = None,
) -> None:
    """Create a schedule (docs/scheduler.md)."""
    body: dict[str, Any] = {"workflowId": workflow, "scheduleType": schedule_type}
    for key, value in (
        ("interval", interval),
        ("cronExpression", cron),
        ("timezone", timezone),
        ("name", name),
        ("jitter", jitter),
    ):
        if value is not None:
            body[key] = value
    if paused:
        body["enabled"] = False
    created = state(ctx).client().create_schedule(body)
    emit(ctx, output, created, lambda c: render.fields(c, SCHEDULE_COLUMNS))


def show_changed(answer: dict[str, Any]) -> None:
    """``Schedule paused: sch_a, sch_b`` (a workflow id pauses or resumes each of its schedules)."""
    out.print(f"{answer.get('message')}: {', '.join(answer.get('scheduleIds') or [])}", highlight=False)


@schedules.command("pause")
def schedules_pause(ctx: typer.Context, schedule_id: str, output: OutputOpt = None) -> None:
    """Pause a schedule (or every schedule of a workflow, given its id)."""
    emit(
        ctx,
        output,
        state(ctx).client().pause_schedule(schedule_id),
        show_changed,
    )


@schedules.command("resume")
def schedules_resume(ctx: typer.Context, schedule_id: str, output: OutputOpt = None) -> None:
    """Resume a paused schedule (or a workflow's)."""
    emit(
        ctx,
        output,
        state(ctx).client().resume_schedule(schedule_id),
        show_changed,
    )


@schedules.command("preview")
def schedules_preview(
    ctx: typer.Context,
    schedule_id: str,
    count: Annotated[int, typer.Option(help="How many fire times.")] = 10,
    output: OutputOpt = None,
) -> None:
    """The schedule's next fire times."""
    preview = state(ctx).client().preview_schedule(schedule_id, count=count)
    emit(
        ctx,
        output,
        preview,
        lambda p: out.print("\n".join(map(str, p.get("fireTimes", []))), highlight=False),
    )


@schedules.command("backfill")
def schedules_backfill(
    ctx: typer.Context,
    schedule_id: str,
    start: Annotated[str, typer.Option(help="ISO 8601 start (included).")],
    end: Annotated[str, typer.Option(help="ISO 8601 end (excluded).")],
    max_active: Annotated[Optional[int], typer.Option(help="At most this many at once.")] = None,  # noqa: UP045
    output: OutputOpt = None,
) -> None:
    """Run the schedule's fire times in [start, end)."""
    answer = state(ctx).client().backfill(schedule_id, start=start, end=end, max_active=max_active)
    emit(ctx, output, answer, render.fields)


MEMBER_COLUMNS = ["nodeId", "role", "host", "pid", "status", "shards", "startedAt", "lastSeen"]
EVENT_COLUMNS = ["id", "timestamp", "event_type", "severity", "workflow_id"]


@cluster.command("status")
def cluster_status(ctx: typer.Context, output: OutputOpt = None) -> None:
    """Status, leader, term and live members."""

    def show(stats: dict[str, Any]) -> None:
        render.fields(stats, ["status", "leader", "term", "members", "sharding"])
        render.table(stats.get("memberList") or [], ["address", "status", "roles", "shards", "entities"])

    emit(ctx, output, state(ctx).client().cluster_stats(), show)


@cluster.command("members")
def cluster_members(
    ctx: typer.Context,
    status: Annotated[Str, typer.Option(help="up, down or left.")] = None,
    limit: Annotated[Optional[int], typer.Option()] = None,  # noqa: UP045
    output: OutputOpt = None,
) -> None:
    """Member processes, newest first."""
    body = state(ctx).client().cluster_members(status=status, limit=limit)

    def show(value: Any) -> None:
        render.table(value["members"], MEMBER_COLUMNS)

    emit(ctx, output, body, show)


@cluster.command("shards")
def cluster_shards(ctx: typer.Context, output: OutputOpt = None) -> None:
    """Every shard with its owner, epoch and state."""
    body = state(ctx).client().cluster_shards()

    def show(value: Any) -> None:
        render.table(value["shards"], ["shardId", "owner", "epoch", "state", "entityCount", "movedReason"])

    emit(ctx, output, body, show)


@cluster.command("events")
def cluster_events(
    ctx: typer.Context,
    event_type: Annotated[Str, typer.Option("--type", help="e.g. member_event, leader_changed.")] = None,
    workflow: Annotated[Str, typer.Option("--workflow", "-w")] = None,
    limit: Annotated[Optional[int], typer.Option()] = None,  # noqa: UP045
    since_id: Annotated[Optional[int], typer.Option(help="Only events after this id.")] = None,  # noqa: UP045
    output: OutputOpt = None,
) -> None:
    """Stored cluster events, newest first."""
    body = (
        state(ctx)
        .client()
        .cluster_events(event_type=event_type, workflow_id=workflow, limit=limit, since_id=since_id)
    )

    def show(value: Any) -> None:
        rows = [  # each type has fields of its own (origin-product.md §7.2): shown together as `details`
            {**event, "details": {k: v for k, v in event.items() if k not in EVENT_COLUMNS}}
            for event in value["events"]
        ]
        render.table(rows, [*EVENT_COLUMNS, "details"])

    emit(ctx, output, body, show)


TOKEN_COLUMNS = ["id", "name", "username", "prefix", "createdAt", "expiresAt", "lastUsedAt"]


@tokens.command("list")
def tokens_list(ctx: typer.Context, output: OutputOpt = None) -> None:
    """API tokens (never their keys)."""
    emit(ctx, output, state(ctx).client().list_tokens(), lambda rows: render.table(rows, TOKEN_COLUMNS))


@tokens.command("create")
def tokens_create(
    ctx: typer.Context,
    name: str,
    user: Annotated[Str, typer.Option("--user", help="Whose token (admins; default: yours).")] = None,
    expires: Annotated[Str, typer.Option(help="A lifetime: 30d, 12h, 90m, 2w (default: never).")] = None,
    output: OutputOpt = None,
) -> None:
    """Create a token; its key is printed this once."""
    created = state(ctx).client().create_token(name, username=user, expires=expires)

    def show(value: dict[str, Any]) -> None:
        render.fields(value, TOKEN_COLUMNS)
        out.print(f"token (shown once): {value.get('token')}", highlight=False)

    emit(ctx, output, created, show)


@tokens.command("revoke")
def tokens_revoke(ctx: typer.Context, token_id: str, output: OutputOpt = None) -> None:
    """Revoke a token by its id."""
    state(ctx).client().revoke_token(token_id)
    emit(ctx, output, {"id": token_id, "revoked": True}, lambda v: out.print(f"token {token_id}: revoked"))
