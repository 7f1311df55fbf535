"""Option types shared by the commands."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from wfe.cli.context import Format

# Optional[...] rather than `| None`: Typer reads the annotations at run time, on Python 3.11 too.
OutputOpt = Annotated[
    Optional[Format],  # noqa: UP045
    typer.Option("--output", "-o", help="table (for people) or json (the API's objects, for scripts)."),
]
TimeoutOpt = Annotated[
    Optional[float],  # noqa: UP045
    typer.Option("--timeout", help="With --wait/--watch: give up after this many seconds (exit code 4)."),
]
