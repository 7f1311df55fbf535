"""``python -m devservices up|down|status``: the command line of the development servers.

The stdout of ``up`` is two shell assignments meant for ``eval``; ``./run``, ``./test`` and CI depend on
exactly that, so progress goes to stderr.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import devservices
from devservices.errors import DevServiceError
from devservices.stack import start_all, status, stop_all

EXIT_NOT_RUNNING = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devservices",
        description=devservices.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (
        ("up", "start or reuse both; print DATABASE_URL/REDIS_URL for eval"),
        ("down", "stop both"),
        ("status", "show state; exit 3 unless both run"),
    ):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument("--data-dir", default=".data/dev", type=Path)
    up = sub.choices["up"]
    up.add_argument("--pg-port", type=int, default=54320)
    up.add_argument("--redis-port", type=int, default=63790)
    up.add_argument("--database", default="workflow_engine")
    return parser


def _up(args: argparse.Namespace) -> int:
    database_url, redis_url = start_all(args.data_dir, args.pg_port, args.redis_port, args.database)
    print(f"DATABASE_URL={shlex.quote(database_url)}")
    print(f"REDIS_URL={shlex.quote(redis_url)}")
    return 0


def _down(args: argparse.Namespace) -> int:
    stop_all(args.data_dir)
    return 0


def _status(args: argparse.Namespace) -> int:
    report = status(args.data_dir)
    for name, info in report.items():
        state = f"running pid={info['pid']}" if info["running"] else "stopped"
        print(f"{name}: {state} port={info['port']} url={info['url']}")
    return 0 if all(info["running"] for info in report.values()) else EXIT_NOT_RUNNING


_COMMANDS = {"up": _up, "down": _down, "status": _status}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Progress on stderr only: stdout of `up` is meant for eval.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="devservices: %(message)s")
    try:
        return _COMMANDS[args.command](args)
    except DevServiceError as exc:
        print(f"devservices: error: {exc}", file=sys.stderr)
        return 1
