"""The errors of the HTTP client: one class per way a call fails, each naming the server it talked to.

A script catches ``wfe.ApiError`` for every answer the API refused, or one subclass for one status; the CLI
maps each class to an exit code (``wfe.cli.exits``). Every message names the server (and, through the CLI,
the profile), because "connection refused" alone does not say which of three environments is down.
"""

from __future__ import annotations

from typing import Any

ENDED = frozenset({"completed", "failed", "cancelled"})  # the statuses an execution does not leave


class WfeError(Exception):
    """Something the client could not do; ``server`` is the base URL it used."""

    def __init__(self, message: str, *, server: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.server = server


class ConnectionFailed(WfeError):
    """The server could not be reached: refused, timed out, unknown host, TLS failure."""


class WaitTimeout(WfeError):
    """``Client.wait`` gave up before the execution ended; ``execution`` is what it last saw."""

    def __init__(self, message: str, *, server: str = "", execution: dict[str, Any] | None = None) -> None:
        super().__init__(message, server=server)
        self.execution = execution or {}

    @classmethod
    def unless_ended(
        cls, execution_id: str, execution: dict[str, Any], timeout: float | None, *, server: str
    ) -> None:
        """Raise when ``execution``, as last fetched after waiting ``timeout`` seconds, has not ended."""
        if execution["status"] in ENDED:
            return
        raise cls(
            f"execution {execution_id} is still {execution['status']} after {timeout} s",
            server=server,
            execution=execution,
        )


class ApiError(WfeError):
    """The API answered with an error: its status, and its body's ``error``, ``message`` and ``details``."""

    def __init__(
        self,
        status: int,
        *,
        server: str,
        method: str,
        path: str,
        error: str = "",
        message: str = "",
        details: dict[str, Any] | None = None,
        body: Any = None,
    ) -> None:
        self.status = status
        self.error = error
        self.api_message = message
        self.details = details or {}
        self.method = method
        self.path = path
        self.body = body
        text = f"{method} {path}: HTTP {status}"
        if error:
            text += f" {error}"
        if message:
            text += f": {message}"
        super().__init__(text, server=server)


class BadRequestError(ApiError):
    """400: a bad parameter, body or definition; ``details`` names each field and its problems."""


class AuthError(ApiError):
    """401: no token, or a token the server does not accept (unknown, revoked, expired)."""


class ForbiddenError(ApiError):
    """403: the token's user has no role that allows this."""


class NotFoundError(ApiError):
    """404: no such workflow, execution, schedule, token or route."""


class ConflictError(ApiError):
    """409, or 412 for a stale ``If-Match``: the state does not allow it."""


class RateLimitedError(ApiError):
    """429: too many requests or live streams; retry later."""


class ServerError(ApiError):
    """5xx: the server failed (500) or its database or Redis is unreachable (503)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    412: ConflictError,
    429: RateLimitedError,
}


def error_class(status: int) -> type[ApiError]:
    """The class for an error status."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, ApiError)
