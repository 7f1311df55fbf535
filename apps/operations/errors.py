"""What a backup, restore, export or import refuses; the commands print the message and exit 1."""

from __future__ import annotations


class OperationError(Exception):
    """The message names the problem and the way out; nothing was written."""
