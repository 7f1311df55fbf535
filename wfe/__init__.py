"""The client side of workflow-engine: the HTTP client (``wfe.Client``), the ``wfe`` command line
(``wfe.cli``) and the definition builder (``wfe.builder``).

It imports no Django and nothing of the server but the pure engine (``apps.workflows.engine``, for offline
validation), so that ``wfe`` starts fast and runs on a laptop with no server configured (``.importlinter``).
"""

from __future__ import annotations

__version__ = "0.1.0"

from wfe.client import Client
from wfe.errors import (
    ApiError,
    AuthError,
    BadRequestError,
    ConflictError,
    ConnectionFailed,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    WaitTimeout,
    WfeError,
)

__all__ = [
    "ApiError",
    "AuthError",
    "BadRequestError",
    "Client",
    "ConflictError",
    "ConnectionFailed",
    "ForbiddenError",
    "NotFoundError",
    "RateLimitedError",
    "ServerError",
    "WaitTimeout",
    "WfeError",
    "__version__",
]
