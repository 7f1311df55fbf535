"""A worker that loses its broker with messages unacknowledged requeues them and stays up.

Celery 5.7's consumer, on a lost connection, collects the kombu connection (which ends by dropping the
transport's ``client``) and then closes it; when the collect could not close the default channel, the close
requeues the unacknowledged messages and needs that ``client``. With kombu's own transport that is an
``AttributeError`` and the worker exits (seen in tests/cluster/test_redis_sentinel.py when the master is
killed under load). The sequence is replayed here on a real Redis, with the step of ``collect()`` that drops
the client called directly (the rest of it is what fails on a dead master). The fix is
workflow_engine/broker.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import kombu
import pytest
from django.conf import settings

from workflow_engine import broker

pytestmark = pytest.mark.usefixtures("live_db")


@pytest.fixture
def queue_name() -> Iterator[str]:
    name = f"lost-connection-{uuid.uuid4().hex[:8]}"
    yield name
    with _connect() as conn:
        conn.SimpleQueue(name).clear()


def _connect(transport: str | None = None) -> kombu.Connection:
    return kombu.Connection(
        settings.CELERY_BROKER_URL,
        transport=transport,
        transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
    )


def _take_without_ack_then_lose_the_client(conn: kombu.Connection, name: str) -> None:
    queue = conn.SimpleQueue(name)
    queue.put({"wake": name})
    message = queue.get(timeout=5)  # delivered, unacknowledged: the channel must requeue it when closed
    assert message.payload == {"wake": name}
    conn._do_close_transport()  # how Connection.collect() ends: transport.client = None


def test_the_engine_names_its_own_transports_for_every_redis_scheme() -> None:
    expected = {
        "redis": broker.RedisTransport,
        "rediss": broker.RedisTransport,
        "sentinel": broker.SentinelTransport,
    }
    for scheme, transport in expected.items():
        assert type(kombu.Connection(f"{scheme}://127.0.0.1:1/0").transport) is transport, scheme
    assert isinstance(_connect().transport, broker.RedisTransport), "the broker the engine is configured with"


def test_kombus_own_transport_dies_on_this_sequence(queue_name: str) -> None:
    """The upstream defect the engine's transports exist for; if kombu fixes it, they can go."""
    conn = _connect(transport="kombu.transport.redis:Transport")
    _take_without_ack_then_lose_the_client(conn, queue_name)
    with pytest.raises(AttributeError, match="hostname"):
        conn.close()


def test_the_engines_transport_requeues_the_unacknowledged_message_and_closes(queue_name: str) -> None:
    conn = _connect()
    _take_without_ack_then_lose_the_client(conn, queue_name)
    conn.close()

    with _connect() as again:
        message = again.SimpleQueue(queue_name).get(timeout=5)
        assert message.payload == {"wake": queue_name}, "the wake-up is back in its queue"
        message.ack()
