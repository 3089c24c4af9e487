"""What one test leaves on the broker never reaches the next: the platform fixture deletes the
wait queues of every tier a broker of the run declared, not only those of TEST_DELAYS. A
delivery left in queue-hooks.wait.1s by tests/integration/test_wait_batches.py expired into
the retry queue of the test after it and called that test's hook 1 (test_retries.py's /good
twice, when the two ran in that order)."""

from __future__ import annotations

import uuid

import aio_pika
import aiormq
import pytest

from tests.support.fixtures import delete_our_queues
from tests.support.helpers import Platform
from tests.support.settings import TEST_DELAYS, make_settings
from worker.broker import Broker
from worker.broker import topology as t
from worker.codec import Delivery

TIER = 45.0  # no other test's, and long: its message stays in the wait queue while we look


async def test_a_wait_queue_of_a_tier_of_its_own_is_deleted_with_its_message(
    platform: Platform,
) -> None:
    assert TIER not in TEST_DELAYS
    settings = make_settings()
    broker = Broker(settings.amqp_url, settings.exchange, (TIER,), prefetch=1)
    job = Delivery(1, str(uuid.uuid4()), "joined", 1, b'{"type":"joined"}', attempts=1)
    await broker.connect(attempts=3)
    try:
        await broker.publish_wait(job.body, job.headers(), TIER, TIER)
    finally:
        await broker.close()
    assert await platform.depth(t.wait_queue(TIER)) == 1

    await delete_our_queues(platform.channel)  # what the next test's platform fixture does
    conn = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await conn.channel()
        with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
            await channel.declare_queue(t.wait_queue(TIER), passive=True)
    finally:
        await conn.close()
