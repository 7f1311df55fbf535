"""The root of ``wfe``: the connection options, the sub-commands, and ``main``, which maps every client
error to a message naming the server and profile, and to an exit code (wfe/cli/exits.py)."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from wfe import __version__
from wfe.cli import admin, executions, exits, profiles, workflows
from wfe.cli.context import Format, State, err, report
from wfe.errors import WfeError

Str = Optional[str]  # noqa: UP045 - Typer reads annotations at run time

app = typer.Typer(
    name="wfe",
    help="Run and watch workflow-engine workflows from a terminal.\n\n"
    "Connects to --url/--token, else WFE_URL/WFE_TOKEN, else a profile (--profile, WFE_PROFILE, or the "
    "default one in ~/.config/wfe/config.toml).",
    epilog="\b\n" + exits.TABLE,  # \b: Click keeps the lines as they are
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(workflows.app, name="workflows")
app.add_typer(executions.app, name="executions")
app.add_typer(admin.schedules, name="schedules")
app.add_typer(admin.cluster, name="cluster")
app.add_typer(admin.tokens, name="tokens")
app.add_typer(profiles.app, name="profile")
app.command("run")(executions.run)


def _version(value: bool) -> None:
    if value:
        print(f"wfe {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[Str, typer.Option(help="The gateway's URL (env WFE_URL).", show_default=False)] = None,
    token: Annotated[Str, typer.Option(help="An API token (env WFE_TOKEN).", show_default=False)] = None,
    profile: Annotated[
        Str, typer.Option("--profile", "-p", help="A profile of the config file (env WFE_PROFILE).")
    ] = None,
    output: Annotated[
        Format, typer.Option("--output", "-o", envvar="WFE_OUTPUT", help="table or json, for every command.")
    ] = Format.table,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer.")] = 30.0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    ctx.obj = State(url=url, token=token, profile=profile, output=output, timeout=timeout)
    _current[:] = [ctx.obj]


# The state of this run, for main()'s error report after Click's context is gone (one run per process).
_current: list[State] = []


def main() -> None:
    """The console script: runs the app, and turns a client error into its message and exit code."""
    try:
        app()
    except WfeError as exc:
        sys.exit(report(exc, _current[0] if _current else None))
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
