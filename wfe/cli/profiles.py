"""``wfe profile``: named connections in the config file (wfe/config.py)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from wfe import config
from wfe.cli import exits, render
from wfe.cli.context import emit, fail, out
from wfe.cli.options import OutputOpt

app = typer.Typer(
    help="Named connections (url and token) in ~/.config/wfe/config.toml.", no_args_is_help=True
)


def _load() -> dict:
    try:
        return config.load()
    except config.ConfigError as exc:
        fail(str(exc), exits.USAGE)


@app.command()
def add(
    name: str,
    url: Annotated[str, typer.Option(help="The gateway, e.g. https://wfe.example.com")],
    token: Annotated[Optional[str], typer.Option(help="An API token.")] = None,  # noqa: UP045
    default: Annotated[bool, typer.Option("--default", help="Use it when no profile is named.")] = False,
) -> None:
    """Add (or replace) a profile."""
    data = _load()
    profile = {"url": url.rstrip("/")}
    if token:
        profile["token"] = token
    data.setdefault("profiles", {})[name] = profile
    if default or not data.get("default"):
        data["default"] = name
    path = config.save(data)
    out.print(
        f"profile {name!r} saved in {path}" + (" (default)" if data["default"] == name else ""),
        highlight=False,
    )


@app.command("list")
def list_(ctx: typer.Context, output: OutputOpt = None) -> None:
    """The profiles (tokens are not shown)."""
    data = _load()
    rows = [
        {
            "name": name,
            "url": p.get("url"),
            "token": bool(p.get("token")),
            "default": name == data.get("default"),
        }
        for name, p in sorted(data.get("profiles", {}).items())
    ]
    emit(
        ctx,
        output,
        rows,
        lambda rows: render.table(rows, ["name", "url", "token", "default"], title=str(config.config_path())),
    )


@app.command()
def use(name: str) -> None:
    """Make a profile the default."""
    data = _load()
    if name not in data.get("profiles", {}):
        fail(f"No profile {name!r} in {config.config_path()}", exits.USAGE)
    data["default"] = name
    config.save(data)
    out.print(f"default profile: {name}", highlight=False)


@app.command()
def remove(name: str) -> None:
    """Remove a profile."""
    data = _load()
    if data.get("profiles", {}).pop(name, None) is None:
        fail(f"No profile {name!r} in {config.config_path()}", exits.USAGE)
    if data.get("default") == name:
        data.pop("default")
    config.save(data)
    out.print(f"profile {name!r} removed", highlight=False)
