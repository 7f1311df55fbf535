"""The exit codes of ``wfe``, one meaning each, so that a script can branch on them (docs/cli.md)."""

from __future__ import annotations

from wfe.errors import (
    ApiError,
    AuthError,
    ConnectionFailed,
    ForbiddenError,
    NotFoundError,
    WaitTimeout,
    WfeError,
)

OK = 0  # success; with --wait/--watch: the execution completed
FAILED = 1  # the execution failed; or a definition does not validate
USAGE = 2  # bad command line, option or input file (Click's own code for usage errors)
CANCELLED = 3  # the execution was cancelled
TIMED_OUT = 4  # --wait/--watch --timeout passed before the execution ended
NOT_FOUND = 5  # 404: no such workflow, execution, schedule or token
AUTH = 6  # 401 (no or bad token) or 403 (the role does not allow it)
CONNECTION = 7  # the server could not be reached (refused, timeout, DNS, TLS)
API = 8  # any other error answer: 400, 409, 412, 429, 5xx

TABLE = """\
Exit codes:
  0  success (with --wait/--watch: the execution completed)
  1  the execution failed, or the definition does not validate
  2  usage error: bad option, argument or input file
  3  the execution was cancelled
  4  timed out (--wait/--watch --timeout) before it ended
  5  not found (404)
  6  not authenticated (401) or not allowed (403)
  7  connection failure: refused, timeout, DNS, TLS
  8  any other API error (400, 409, 412, 429, 5xx)"""

BY_STATUS = {"completed": OK, "failed": FAILED, "cancelled": CANCELLED}


def of_error(exc: WfeError) -> int:
    if isinstance(exc, ConnectionFailed):
        return CONNECTION
    if isinstance(exc, WaitTimeout):
        return TIMED_OUT
    if isinstance(exc, AuthError | ForbiddenError):
        return AUTH
    if isinstance(exc, NotFoundError):
        return NOT_FOUND
    if isinstance(exc, ApiError):
        return API
    return API
