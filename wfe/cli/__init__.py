"""The ``wfe`` command line (Typer + Rich) over the HTTP client; ``main`` is the console script."""

from __future__ import annotations

from wfe.cli.app import app, main

__all__ = ["app", "main"]
