"""The worker's broker receives through the bulk frame receiver (worker/broker/frames.py), on the
real RabbitMQ: bodies larger than a frame, heartbeats, many messages in one read, and a
connection cut under it that the broker comes back from.

Confirms (tests/integration/test_wait_batches.py), a consumer the broker cancels and a channel
it closes (test_topology.py) and the failovers of `make chaos` all go through it too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.support.helpers import Platform, holds
from tests.support.proxy import Proxy
from tests.support.settings import make_settings
from worker.abc import Handler
from worker.broker import Broker
from worker.broker.frames import BulkFrameReceiver, ReceivedFrame
from worker.codec import Inbound

FRAME_MAX = 131072  # RabbitMQ's default


@pytest.fixture
def frames_seen(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The kinds of frame the bulk receiver hands to aiormq, in order: proof that it is the
    one aiormq uses."""
    seen: list[str] = []
    get_frame = BulkFrameReceiver.get_frame

    async def counting(self: BulkFrameReceiver) -> ReceivedFrame:
        received = await get_frame(self)
        seen.append(type(received[2]).__name__)
        return received

    monkeypatch.setattr(BulkFrameReceiver, "get_frame", counting)
    return seen


class Taken:
    """A settle that keeps each body and acks it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(
        self, _handler: Handler, inbounds: list[Inbound], ack: Callable[[], None],
        _nack: Callable[[], Awaitable[None]],
    ) -> None:  # fmt: skip
        self.bodies.extend(i.body for i in inbounds)
        ack()


async def nothing(_inbound: Inbound) -> None:
    return None


@pytest.fixture
async def consuming(
    platform: Platform, frames_seen: list[str]
) -> AsyncIterator[tuple[Broker, Taken]]:
    """After `frames_seen`, so that it sees every frame of the connection."""
    settings = make_settings()
    broker = Broker(settings.amqp_url, settings.exchange, (1.0,), prefetch=64)
    await broker.connect(attempts=3)
    taken = Taken()
    await broker.consume(nothing, nothing, taken)
    try:
        yield broker, taken
    finally:
        await broker.close()


def body(size: int) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[:size]


async def test_bodies_of_every_size_come_whole_and_in_order(
    platform: Platform, consuming: tuple[Broker, Taken], frames_seen: list[str]
) -> None:
    _broker, taken = consuming
    sizes = [0, 1, 300, FRAME_MAX - 8, FRAME_MAX, 3 * FRAME_MAX + 17, 1 << 21] + [700] * 500
    sent = [body(size) for size in sizes]
    for one in sent:
        await platform.publish(one, routing_key="queue.1.joined")
    await holds(lambda: len(taken.bodies) >= len(sent), within=30)
    assert [len(b) for b in taken.bodies] == sizes
    assert taken.bodies == sent  # byte for byte
    assert frames_seen.count("Deliver") == len(sent)
    assert frames_seen.count("ContentBody") > len(sent) - 1  # the large ones in several


async def test_heartbeats_come_through_it(platform: Platform, frames_seen: list[str]) -> None:
    settings = make_settings()
    broker = Broker(settings.amqp_url + "?heartbeat=1", settings.exchange, (1.0,), prefetch=1)
    await broker.connect(attempts=3)
    try:
        await holds(lambda: "Heartbeat" in frames_seen, within=20)
        assert broker.connected
    finally:
        await broker.close()


async def test_a_connection_cut_under_it_is_restored(
    platform: Platform, frames_seen: list[str]
) -> None:
    """The proxy drops the connection while a large body is on its way; the broker walks
    back to the node (here the same, through the proxy again) and consumes afresh."""
    settings = make_settings()
    target = settings.amqp_url.split("@", 1)[1].split("/", 1)[0]
    host, port = target.rsplit(":", 1)
    proxy = Proxy(host, int(port))
    await proxy.start()
    url = settings.amqp_url.replace(target, f"127.0.0.1:{proxy.port}")
    broker = Broker(url, settings.exchange, (1.0,), prefetch=8)
    taken = Taken()
    try:
        await broker.connect(attempts=3)
        await broker.consume(nothing, nothing, taken)
        big = body(4 * FRAME_MAX)
        await platform.publish(big, routing_key="queue.1.joined")
        await asyncio.sleep(0)  # may be cut before, within or after its frames: all must mend
        await proxy.cut()
        await proxy.start()
        await holds(lambda: broker.connected and big in taken.bodies, within=60)
        await platform.publish(b"after", routing_key="queue.1.joined")
        await holds(lambda: b"after" in taken.bodies, within=30)
        assert frames_seen.count("Start") == 2  # connected again, through it again
    finally:
        await broker.close()
        await proxy.cut()
