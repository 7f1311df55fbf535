"""``wfe workflows``: apply (create or update), list, get, delete, and validate offline."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from wfe import validate as offline
from wfe.cli import exits, render
from wfe.cli.context import Format, err, fail, out, output_of, print_json, state
from wfe.cli.options import OutputOpt

app = typer.Typer(help="Workflow definitions: apply, list, get, delete, validate.", no_args_is_help=True)

FilesArg = Annotated[list[Path], typer.Argument(help=".json (one definition or a list) or .py files.")]


def load_definitions(path: Path) -> list[dict[str, Any]]:
    """The definitions in a file: a JSON object or list, or the module-level ``wfe.builder.Workflow``
    objects of a Python file (each gives its DSL dict through ``to_dict()``). A bad file is a usage error."""
    if not path.is_file():
        fail(f"{path}: no such file", exits.USAGE)
    if path.suffix == ".py":
        try:
            module = runpy.run_path(str(path), run_name="__wfe_apply__")
        except Exception as exc:
            fail(f"{path}: running it failed: {type(exc).__name__}: {exc}", exits.USAGE)
        found = [
            value.to_dict()
            for name, value in module.items()
            if not name.startswith("_")
            and type(value).__name__ == "Workflow"
            and callable(getattr(value, "to_dict", None))
        ]
        if not found:
            fail(f"{path}: no module-level wfe.builder.Workflow objects", exits.USAGE)
        return found
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        fail(f"{path}: not a JSON file: {exc}", exits.USAGE)
    items = data if isinstance(data, list) else [data]
    if not items or not all(isinstance(item, dict) for item in items):
        fail(f"{path}: must hold a JSON object (a definition) or a list of them", exits.USAGE)
    return items


def _problem_lines(problems: dict[str, list[str]]) -> list[str]:
    return [f"  {field}: {message}" for field, messages in problems.items() for message in messages]


@app.command()
def apply(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Option("--file", "-f", help="A .json or .py file (repeatable).")],
    output: OutputOpt = None,
) -> None:
    """Create each workflow, or update it when it exists (a new version when it changed).

    A definition that does not validate is saved as a draft, as the API does, and the exit code is 1."""
    fmt = output_of(ctx, output)
    client = state(ctx).client()
    answers = []
    for path in files:
        for definition in load_definitions(path):
            answers.append(client.apply_workflow(definition))
    invalid = [a for a in answers if not a.get("valid", True)]
    if fmt is Format.json:
        print_json(answers)
    else:
        for answer in answers:
            action = (
                "created"
                if answer["created"]
                else ("updated" if answer.get("changed", True) else "unchanged")
            )
            mark = "[green]valid[/]" if answer.get("valid", True) else "[red]draft: does not validate[/]"
            out.print(f"{answer['workflowId']}: {action}, version {answer.get('version')} ({mark})")
            for line in _problem_lines(answer.get("problems") or {}):
                out.print(line, markup=False, highlight=False)
    if invalid:
        raise typer.Exit(exits.FAILED)


@app.command("list")
def list_(
    ctx: typer.Context,
    q: Annotated[Optional[str], typer.Option(help="Search id, name and description.")] = None,  # noqa: UP045
    tag: Annotated[Optional[str], typer.Option(help="Only workflows with this tag.")] = None,  # noqa: UP045
    limit: Annotated[Optional[int], typer.Option(help="At most this many (1 to 1000).")] = None,  # noqa: UP045
    offset: Annotated[Optional[int], typer.Option(help="Skip this many.")] = None,  # noqa: UP045
    output: OutputOpt = None,
) -> None:
    """List workflows (the latest save of each)."""
    fmt = output_of(ctx, output)
    rows = state(ctx).client().list_workflows(q=q, tag=tag, limit=limit, offset=offset)
    if fmt is Format.json:
        print_json(rows)
        return
    for row in rows:
        row["nodeCount"] = len(row.get("nodes") or [])
    render.table(rows, ["id", "name", "valid", "nodeCount", "tags"])


@app.command()
def get(ctx: typer.Context, workflow_id: str, output: OutputOpt = None) -> None:
    """Show a workflow's latest save (json: the definition as the API gives it)."""
    fmt = output_of(ctx, output)
    workflow = state(ctx).client().get_workflow(workflow_id)
    if fmt is Format.json:
        print_json(workflow)
        return
    render.fields(workflow, ["id", "name", "description", "tags", "valid", "problems"])
    render.table(workflow.get("nodes") or [], ["id", "nodeType", "type", "config"], title="nodes")
    render.table(workflow.get("edges") or [], ["source", "target"], title="edges")


@app.command()
def delete(
    ctx: typer.Context,
    workflow_id: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    output: OutputOpt = None,
) -> None:
    """Delete a workflow, its versions and its finished executions."""
    fmt = output_of(ctx, output)
    if not yes and not typer.confirm(f"Delete workflow {workflow_id!r} and its history?"):
        raise typer.Exit(exits.USAGE)
    state(ctx).client().delete_workflow(workflow_id)
    if fmt is Format.json:
        print_json({"workflowId": workflow_id, "deleted": True})
    else:
        out.print(f"{workflow_id}: deleted")


@app.command("validate")
def validate_(ctx: typer.Context, files: FilesArg, output: OutputOpt = None) -> None:
    """Validate definitions OFFLINE with the engine (no server): the problems the API would answer, by
    field. Checks that depend on the server's configuration (allowed hosts, file roots, Celery tasks,
    connections, callables) are listed apart and do not fail. Exit 1 when one does not validate."""
    fmt = output_of(ctx, output)
    results: list[dict[str, Any]] = []
    for path in files:
        for definition in load_definitions(path):
            result = offline.validate(definition)
            results.append(  # the JSON output: one object per definition, in file order
                {
                    "file": str(path),
                    "id": definition.get("id"),
                    "valid": result.valid,
                    "problems": result.problems,
                    "serverChecks": result.server_checks,
                }
            )
    if fmt is Format.json:
        print_json(results)
    else:
        for item in results:
            mark = "[green]valid[/]" if item["valid"] else "[red]invalid[/]"
            out.print(f"{item['file']}: {item['id']!s}: {mark}")
            for line in _problem_lines(item["problems"]):
                out.print(line, markup=False, highlight=False)
            if item["serverChecks"]:
                err.print("  depends on the server's configuration (checked when applied):", highlight=False)
                for line in _problem_lines(item["serverChecks"]):
                    err.print("  " + line, markup=False, highlight=False)
    if not all(item["valid"] for item in results):
        raise typer.Exit(exits.FAILED)
