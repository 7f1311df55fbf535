"""kombu's Redis transports, made to survive a lost connection with messages unacknowledged.

When a Celery 5.7 worker loses its broker, the consumer first *collects* the connection (closing its channels
and dropping the transport's ``client``, the kombu ``Connection`` that holds the broker's address) and then
*closes* it. If the collect could not close the default channel (a ``BRPOP`` in flight on a dead master
raises), the close tries again: the channel gives its unacknowledged messages back to their queues, which
needs a fresh Redis pool, whose address it reads from the dropped ``client``. ``AttributeError``, which
neither kombu nor Celery expects there, and the worker exits ("Unrecoverable error"). Seen when a Sentinel
master is killed under load, and possible on any Redis restart.

These transports keep their ``client`` once given one, so the late close can still reach Redis (through the
sentinels, to the new master) and requeue the messages. A transport is not reused after it is closed, so
nothing else reads the address it keeps.

They are installed under kombu's own names (``redis``, ``rediss``, ``sentinel``) rather than through
``broker_transport``: kombu re-resolves the transport from the URL's scheme when it fails over to the next
sentinel URL, and the Sentinel channel recognises its sentinels by that scheme.
"""

from __future__ import annotations

from typing import Any

from kombu import transport as kombu_transport
from kombu.transport import redis as kombu_redis


class _KeepsItsClient:
    """``client`` may be set, but not unset (kombu sets ``None`` when it drops the transport)."""

    _kept_client: Any = None

    @property
    def client(self) -> Any:
        return self._kept_client

    @client.setter
    def client(self, value: Any) -> None:
        if value is not None:
            self._kept_client = value


class RedisTransport(_KeepsItsClient, kombu_redis.Transport):
    """``redis://`` and ``rediss://``."""


class SentinelTransport(_KeepsItsClient, kombu_redis.SentinelTransport):
    """``sentinel://``."""


NAMES = {
    "redis": f"{__name__}:RedisTransport",
    "rediss": f"{__name__}:RedisTransport",
    "sentinel": f"{__name__}:SentinelTransport",
}


def install() -> None:
    """Make kombu's URL schemes name these transports, in this process."""
    kombu_transport.TRANSPORT_ALIASES.update(NAMES)
