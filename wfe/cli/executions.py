"""``wfe run`` and ``wfe executions``: start, follow, inspect and control executions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from wfe.cli import exits, live, render
from wfe.cli.context import Format, emit, fail, out, output_of, print_json, state
from wfe.cli.options import OutputOpt, TimeoutOpt
from wfe.client import Client

app = typer.Typer(help="Executions: list, show, follow and control them.", no_args_is_help=True)

Str = Optional[str]  # noqa: UP045 - Typer reads annotations at run time
KeyOpt = Annotated[
    Str, typer.Option("--idempotency-key", help="A retry with the same key is the same command.")
]


def parse_input(pairs: list[str], input_file: Path | None) -> dict[str, Any] | None:
    """``--input k=v`` pairs (each value read as JSON when it parses, else as a string) over
    ``--input-file``'s object. None when neither is given (the execution's input is then empty)."""
    data: dict[str, Any] = {}
    if input_file is not None:
        try:
            loaded = json.loads(input_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            fail(f"--input-file {input_file}: {exc}", exits.USAGE)
        if not isinstance(loaded, dict):
            fail(f"--input-file {input_file}: must hold a JSON object", exits.USAGE)
        data.update(loaded)
    for pair in pairs:
        key, eq, raw = pair.partition("=")
        if not eq or not key:
            fail(f"--input {pair!r}: write key=value", exits.USAGE)
        try:
            data[key] = json.loads(raw)
        except ValueError:
            data[key] = raw
    return data if (pairs or input_file is not None) else None


def finish(
    ctx: typer.Context, client: Client, execution_id: str, *, watch: bool, timeout: float | None
) -> None:
    """Follow an execution to its end (live table or quietly); exit with its status's code."""
    fmt = output_of(ctx, None)
    if watch and fmt is Format.table:
        final = live.watch(client, execution_id, timeout=timeout)
    else:
        final = client.wait(execution_id, timeout=timeout)
    if fmt is Format.json:
        print_json(final)
    elif not watch:
        show_execution(final)
    raise typer.Exit(exits.BY_STATUS.get(final["status"], exits.FAILED))


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[
        list[str] | None,
        typer.Option(help="queued, pending, running, paused, completed, failed, cancelled (repeatable)."),
    ] = None,
    workflow: Annotated[
        list[str] | None, typer.Option("--workflow", "-w", help="Workflow id (repeatable).")
    ] = None,
    trigger: Annotated[
        list[str] | None, typer.Option(help="api, schedule, backfill, rerun (repeatable).")
    ] = None,
    started_after: Annotated[Str, typer.Option(help="ISO 8601 with a zone, or epoch ms.")] = None,
    started_before: Annotated[Str, typer.Option(help="ISO 8601 with a zone, or epoch ms.")] = None,
    ended_after: Annotated[Str, typer.Option(help="ISO 8601 with a zone, or epoch ms.")] = None,
    ended_before: Annotated[Str, typer.Option(help="ISO 8601 with a zone, or epoch ms.")] = None,
    id_prefix: Annotated[Str, typer.Option(help="Execution ids starting with this.")] = None,
    limit: Annotated[Optional[int], typer.Option(help="Rows per page (1 to 1000, default 50).")] = None,  # noqa: UP045
    cursor: Annotated[Str, typer.Option(help="The nextCursor of the previous page.")] = None,
    all_pages: Annotated[bool, typer.Option("--all", help="Follow nextCursor to the last page.")] = False,
    count: Annotated[bool, typer.Option("--count", help="Also count every match (one more query).")] = False,
    output: OutputOpt = None,
) -> None:
    """Executions of every workflow, newest first, filtered as GET /api/v1/executions."""
    fmt = output_of(ctx, output)
    client = state(ctx).client()
    filters: dict[str, Any] = dict(
        status=status,
        workflow=workflow,
        trigger=trigger,
        started_after=started_after,
        started_before=started_before,
        ended_after=ended_after,
        ended_before=ended_before,
        id_prefix=id_prefix,
        limit=limit,
    )
    if all_pages:
        page: dict[str, Any] = {
            "executions": list(client.iter_executions(cursor=cursor, **filters)),
            "nextCursor": None,
        }
    else:
        page = client.list_executions(cursor=cursor, count=count, **filters)
    if fmt is Format.json:
        print_json(page)
        return
    columns = [
        "executionId",
        "workflowId",
        "version",
        "status",
        "trigger",
        "startedBy",
        "createdAt",
        "endTime",
    ]
    render.table(page["executions"], columns)
    if "total" in page:
        out.print(f"total: {page['total']}")
    if page.get("nextCursor"):
        out.print(f"more: --cursor {page['nextCursor']}", highlight=False)


def show_execution(execution: dict[str, Any]) -> None:
    render.fields(
        execution,
        [
            "executionId",
            "workflowId",
            "version",
            "status",
            "trigger",
            "startedBy",
            "createdAt",
            "duration",
            "error",
            "failedNodeId",
            "input",
        ],
    )
    rows = [
        {**n, "startTime": render.millis(n.get("startTime")), "duration": render.duration(n.get("duration"))}
        for n in execution.get("nodes", [])
    ]
    render.table(
        rows,
        [
            "nodeId",
            "nodeType",
            "attempt",
            "status",
            "recordsProcessed",
            "startTime",
            "duration",
            "waitingFor",
            "error",
        ],
        title="nodes",
    )


@app.command()
def show(ctx: typer.Context, execution_id: str, output: OutputOpt = None) -> None:
    """An execution: status, nodes (per attempt), error."""
    emit(ctx, output, state(ctx).client().get_execution(execution_id), show_execution)


@app.command()
def events(
    ctx: typer.Context,
    execution_id: str,
    after: Annotated[int, typer.Option(help="Only events with a greater seq.")] = 0,
    limit: Annotated[Optional[int], typer.Option(help="At most this many (default 1000).")] = None,  # noqa: UP045
    output: OutputOpt = None,
) -> None:
    """The execution's journal, by seq."""
    rows = state(ctx).client().events(execution_id, after=after, limit=limit)
    emit(ctx, output, rows, lambda rows: render.table(rows, ["seq", "type", "timestamp", "payload"]))


@app.command()
def logs(ctx: typer.Context, execution_id: str, output: OutputOpt = None) -> None:
    """The execution's log lines."""
    emit(ctx, output, state(ctx).client().logs(execution_id), _print_lines)


def _print_lines(lines: list[Any]) -> None:
    for line in lines:
        out.print(line, markup=False, highlight=False)


def _outputs_table(by_node: dict[str, Any]) -> None:
    rows = [{"nodeId": node_id, **found} for node_id, found in by_node.items()]
    render.table(rows, ["nodeId", "attempt", "recordCount", "sizeBytes", "preview"])


@app.command()
def outputs(ctx: typer.Context, execution_id: str, output: OutputOpt = None) -> None:
    """The records each node produced (previews and counts); json: the API's ``{nodeId: output}``."""
    emit(ctx, output, state(ctx).client().outputs(execution_id), _outputs_table)


def _control(ctx: typer.Context, output: Format | None, answer: dict[str, Any]) -> None:
    emit(ctx, output, answer, _print_accepted)


def _print_accepted(answer: dict[str, Any]) -> None:
    out.print(answer.get("message") or answer, highlight=False)
    if answer.get("executionId"):
        out.print(f"execution {answer['executionId']}: {answer.get('status')}", highlight=False)


@app.command()
def cancel(
    ctx: typer.Context,
    execution_id: str,
    reason: Annotated[Str, typer.Option(help="Why (recorded in the journal).")] = None,
    idempotency_key: KeyOpt = None,
    output: OutputOpt = None,
) -> None:
    """Cancel an execution."""
    _control(
        ctx, output, state(ctx).client().cancel(execution_id, reason=reason, idempotency_key=idempotency_key)
    )


def _plain_control(name: str, summary: str) -> None:
    """A control command that takes the execution id and nothing else: ``pause``, ``resume``, ``retry``,
    ``rerun``, each calling the client's method of that name."""

    def command(
        ctx: typer.Context, execution_id: str, idempotency_key: KeyOpt = None, output: OutputOpt = None
    ) -> None:
        send = getattr(state(ctx).client(), name)
        _control(ctx, output, send(execution_id, idempotency_key=idempotency_key))

    command.__doc__ = summary
    app.command(name)(command)


_plain_control("pause", "Pause a running execution: no new node starts.")
_plain_control("resume", "Resume a paused execution.")
_plain_control("retry", "Retry a failed execution from its failed nodes.")
_plain_control("rerun", "Start a new execution of the same version.")


@app.command()
def signal(
    ctx: typer.Context,
    execution_id: str,
    name: str,
    payload: Annotated[Str, typer.Option(help="The signal's payload, JSON (default: null).")] = None,
    idempotency_key: KeyOpt = None,
    output: OutputOpt = None,
) -> None:
    """Send signal NAME (wait.signal nodes wait for it)."""
    value = None
    if payload is not None:
        try:
            value = json.loads(payload)
        except ValueError as exc:
            fail(f"--payload: not JSON: {exc}", exits.USAGE)
    answer = state(ctx).client().signal(execution_id, name, value, idempotency_key=idempotency_key)
    _control(ctx, output, answer)


@app.command()
def approve(
    ctx: typer.Context,
    execution_id: str,
    node_or_signal: Annotated[str, typer.Argument(help="The approval node's id, or its signal name.")],
    reject: Annotated[bool, typer.Option("--reject", help="Reject instead (the node fails).")] = False,
    comment: Annotated[Str, typer.Option(help="Recorded with the decision.")] = None,
    output: OutputOpt = None,
) -> None:
    """Approve (or --reject) an approval node. Needs the approver role."""
    answer = state(ctx).client().approve(execution_id, node_or_signal, comment=comment, reject=reject)
    _control(ctx, output, answer)


@app.command()
def watch(
    ctx: typer.Context, execution_id: str, timeout: TimeoutOpt = None, output: OutputOpt = None
) -> None:
    """Follow an execution live (its event stream) until it ends; exit code by how it ended."""
    output_of(ctx, output)
    finish(ctx, state(ctx).client(), execution_id, watch=True, timeout=timeout)


@app.command()
def wait(ctx: typer.Context, execution_id: str, timeout: TimeoutOpt = None, output: OutputOpt = None) -> None:
    """Wait quietly until an execution ends; exit code by how it ended."""
    output_of(ctx, output)
    finish(ctx, state(ctx).client(), execution_id, watch=False, timeout=timeout)


def run(
    ctx: typer.Context,
    workflow_id: Annotated[str, typer.Argument(help="The workflow to start.")],
    input_pairs: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="key=value (JSON or text); repeatable.")
    ] = None,
    input_file: Annotated[Path | None, typer.Option("--input-file", help="A JSON object: the input.")] = None,
    idempotency_key: KeyOpt = None,
    wait_: Annotated[
        bool, typer.Option("--wait", help="Wait until it ends; exit code by how it ended.")
    ] = False,
    watch_: Annotated[bool, typer.Option("--watch", help="Show its nodes live until it ends.")] = False,
    timeout: TimeoutOpt = None,
    output: OutputOpt = None,
) -> None:
    """Start an execution of WORKFLOW; with --wait or --watch, follow it to its end."""
    fmt = output_of(ctx, output)
    if wait_ and watch_:
        fail("--wait and --watch exclude each other", exits.USAGE)
    client = state(ctx).client()
    started = client.start(
        workflow_id, parse_input(input_pairs or [], input_file), idempotency_key=idempotency_key
    )
    execution_id = started.get("executionId")
    if not (wait_ or watch_) or not execution_id:
        if fmt is Format.json:
            print_json(started)
        else:
            out.print(
                f"{execution_id or '-'}: {started.get('status')}"
                + (" (duplicate of an earlier start)" if started.get("duplicate") else ""),
                highlight=False,
            )
        return
    if fmt is Format.table:
        out.print(f"{execution_id}: {started.get('status')}", highlight=False)
    finish(ctx, client, execution_id, watch=watch_, timeout=timeout)
