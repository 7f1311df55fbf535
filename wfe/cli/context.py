"""What every command shares: the connection (from options, environment or profile), the output format, and
the one place that turns a client error into a message naming the server and profile, and an exit code."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from wfe.cli import exits
from wfe.client import Client
from wfe.config import ConfigError, Connection, resolve
from wfe.errors import ApiError, AuthError, ConnectionFailed, ForbiddenError, NotFoundError, WfeError

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class Format(StrEnum):
    table = "table"
    json = "json"


@dataclass
class State:
    url: str | None = None
    token: str | None = None
    profile: str | None = None
    output: Format = Format.table
    timeout: float = 30.0
    _connection: Connection | None = None
    _client: Client | None = None

    def connection(self) -> Connection:
        if self._connection is None:
            try:
                self._connection = resolve(self.url, self.token, self.profile)
            except ConfigError as exc:
                fail(str(exc), exits.USAGE)
        return self._connection

    def client(self) -> Client:
        if self._client is None:
            conn = self.connection()
            self._client = Client(conn.url, conn.token, timeout=self.timeout)
        return self._client


def state(ctx: typer.Context) -> State:
    found = ctx.find_root().obj
    if not isinstance(found, State):  # a command called without the root callback (tests of one command)
        found = ctx.find_root().obj = State()
    return found


def output_of(ctx: typer.Context, option: Format | None) -> Format:
    """The command's ``-o`` or else the root's ``--output``; kept on the state, so errors follow it too."""
    st = state(ctx)
    if option is not None:
        st.output = option
    return st.output


def fail(message: str, code: int) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def describe_error(exc: WfeError, conn: Connection | None) -> str:
    """The message for a person: what failed, on which server, from which profile, and what to try."""
    where = f"{exc.server or (conn.url if conn else '?')}"
    if conn is not None:
        where += f" ({'profile ' + repr(conn.profile) if conn.profile else 'from ' + conn.source})"
    if isinstance(exc, ConnectionFailed):
        return f"{exc.message} (server {where}). Is the gateway running? Set --url, WFE_URL or a profile."
    if isinstance(exc, ApiError):
        text = f"{exc.message} (server {where})"
        if exc.details:
            text += "\n" + "\n".join(
                f"  {field}: {' '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}"
                for field, msgs in exc.details.items()
            )
        if isinstance(exc, AuthError):
            token = "no token was sent" if conn is not None and not conn.token else "the token was refused"
            text += f"\n{token}: give one with --token, WFE_TOKEN or a profile (`wfe profile add`)."
        elif isinstance(exc, ForbiddenError):
            text += "\nThe token's user lacks the role for this (viewer, operator, approver, admin)."
        elif isinstance(exc, NotFoundError):
            text += "\nCheck the id, and that this is the server you meant."
        return text
    return f"{exc.message} (server {where})"


def report(exc: WfeError, st: State | None) -> int:
    conn = st._connection if st is not None else None
    code = exits.of_error(exc)
    if st is not None and st.output is Format.json and isinstance(exc, ApiError):
        body = exc.body if isinstance(exc.body, dict) else {"error": exc.error, "message": exc.api_message}
        sys.stdout.write(json.dumps({**body, "status": exc.status, "server": exc.server}, indent=2) + "\n")
    err.print(f"[bold red]error:[/] {escape(describe_error(exc, conn))}", highlight=False)
    return code


def print_json(value: Any) -> None:
    """Machine output: the API's objects, indented, keys as the API wrote them."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def emit(ctx: typer.Context, option: Format | None, value: Any, show: Callable[[Any], None]) -> None:
    """Every command's output: ``value`` as JSON with ``--output json``, else ``show(value)`` for people."""
    if output_of(ctx, option) is Format.json:
        print_json(value)
    else:
        show(value)


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
