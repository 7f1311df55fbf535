"""The one exception of the development servers."""

from __future__ import annotations


class DevServiceError(RuntimeError):
    """A development service could not be found, started or stopped."""
