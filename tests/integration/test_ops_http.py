"""The worker's ops port: /metrics after known deliveries, /healthz, /readyz through a broker
outage, and `queue-hooks check`."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.cli import free_port, queue_hooks
from tests.support.fixtures import StartWorker
from tests.support.helpers import Conn, Platform, event, seed_hook, seed_queue, seed_schema, until
from tests.support.proxy import Proxy
from tests.support.receiver import Receiver, fail_first, status
from tests.support.settings import make_settings
from worker.broker import topology as t
from worker.errors import Fatal

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(port: int) -> Samples:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def get(port: int, path: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.get(f"http://127.0.0.1:{port}{path}")


async def test_metrics_count_a_known_set_of_deliveries(
    db: Conn, platform: Platform, receiver: Receiver, start_worker: StartWorker
) -> None:
    await seed_queue(db, 1, 1)
    ok = await seed_schema(db, receiver.url("/ok"))
    await seed_hook(db, 1, "joined", ok)
    await seed_hook(db, 1, "leaving", ok)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url("/bad")))
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url("/flaky")))
    receiver.on("/bad", status(404))
    receiver.on("/flaky", fail_first(1, 500))
    port = free_port()
    await start_worker(metrics_port=port)

    for body in (event(1, "joined"), event(1, "joined"), event(1, "leaving"), event(1, "missed")):
        await platform.publish(body)
    await platform.publish(b"{not json", routing_key="queue.1.joined")
    await until(lambda: _depth(platform, t.DEAD_QUEUE, 3))  # 2 x 404, 1 invalid
    await until(lambda: _settled(port, 9))  # 5 delivered, 1 retried, 3 dead
    m = await scrape(port)

    events = "queue_hooks_events_total"
    assert value(m, events, event="joined", outcome="delivering") == 2
    assert value(m, events, event="leaving", outcome="delivering") == 1
    assert value(m, events, event="missed", outcome="no_hooks") == 1
    assert value(m, events, event="invalid", outcome="invalid") == 1
    deliveries = "queue_hooks_deliveries_total"
    assert value(m, deliveries, outcome="delivered", reason="") == 5  # 3 /ok + 2 /flaky
    assert value(m, deliveries, outcome="retried", reason="") == 1
    assert value(m, deliveries, outcome="dead", reason="rejected") == 2
    assert value(m, deliveries, outcome="dead", reason="invalid") == 1
    responses = "queue_hooks_http_responses_total"
    assert value(m, responses, status_class="2xx") == 5
    assert value(m, responses, status_class="4xx") == 2
    assert value(m, responses, status_class="5xx") == 1
    assert value(m, "queue_hooks_attempt_duration_seconds_count") == 8
    assert value(m, "queue_hooks_delivery_lag_seconds_count") == 5  # the retried one included
    assert value(m, "queue_hooks_in_flight_requests") == 0
    assert value(m, "queue_hooks_hook_cache_entries") == 4
    assert value(m, "queue_hooks_hook_cache_refreshes_total") >= 1
    assert value(m, "queue_hooks_queue_messages", queue=t.DEAD_QUEUE) == 3
    assert value(m, "queue_hooks_queue_messages", queue=t.RETRY_QUEUE) == 0
    # Bounded labels: no ids, no URLs.
    labels = {v for (_name, pairs) in m for _k, v in pairs}
    assert not any(re.search(r"[0-9a-f]{8}-|http|127\.0", v) for v in labels), labels


async def _settled(port: int, count: int) -> bool:
    samples = await scrape(port)
    return (
        sum(v for (name, _l), v in samples.items() if name == "queue_hooks_deliveries_total")
        >= count
    )


async def _depth(platform: Platform, queue: str, count: int) -> bool:
    return await platform.depth(queue) == count


@pytest.fixture
async def broker_proxy() -> AsyncIterator[Proxy]:
    """Between a worker and RabbitMQ. Set up before the worker, so it is torn down after it."""
    amqp = urlsplit(make_settings().amqp_url)
    proxy = Proxy(amqp.hostname or "127.0.0.1", amqp.port or 5672)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.cut()


async def test_readyz_follows_the_broker_and_healthz_stays_alive(
    broker_proxy: Proxy,
    db: Conn,
    platform: Platform,
    receiver: Receiver,
    start_worker: StartWorker,
) -> None:
    await seed_queue(db, 1, 1)
    await seed_hook(db, 1, "joined", await seed_schema(db, receiver.url()))
    port = free_port()
    amqp = make_settings().amqp_url
    via_proxy = amqp.replace(f":{urlsplit(amqp).port}/", f":{broker_proxy.port}/")
    await start_worker(metrics_port=port, amqp_url=via_proxy)
    ready = await get(port, "/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.text.startswith("ready")

    await broker_proxy.cut()
    await until(lambda: _status_is(port, "/readyz", 503), within=20)
    down = await get(port, "/readyz")
    assert "rabbitmq down" in down.text
    assert (await get(port, "/healthz")).status_code == 200
    await platform.publish(event(1, "joined"))  # waits in the queue meanwhile

    await broker_proxy.start()
    await until(lambda: _status_is(port, "/readyz", 200), within=30)
    await receiver.wait_for(1)  # and it consumes again: its consumers were restored


async def _status_is(port: int, path: str, code: int) -> bool:
    return (await get(port, path)).status_code == code


async def test_check_says_ready_only_with_a_consuming_worker(
    db: Conn, platform: Platform, start_worker: StartWorker
) -> None:
    idle = await queue_hooks("check")
    assert idle.code == 1
    assert "consuming    FAIL" in idle.out and "not ready: consuming" in idle.out
    assert "rabbitmq     ok" in idle.out and "postgresql   ok" in idle.out
    assert "guest" not in idle.out  # credentials of the URLs are never shown

    port = free_port()
    await start_worker(metrics_port=port)
    running = await queue_hooks("check", QUEUE_HOOKS_METRICS_PORT=str(port))
    assert running.code == 0, running.out
    assert "1 consumer(s) on queue-hooks.events" in running.out
    assert f"http://127.0.0.1:{port}/readyz: ready" in running.out
    assert running.out.rstrip().endswith("ready")

    nobody = await queue_hooks("check", "--url", f"http://127.0.0.1:{free_port()}/readyz")
    assert nobody.code == 1 and "not ready: worker" in nobody.out

    broken = await queue_hooks("check", QUEUE_HOOKS_AMQP_URL="amqp://guest:guest@127.0.0.1:1/")
    assert broken.code == 1 and "rabbitmq     FAIL" in broken.out


async def test_a_metrics_port_in_use_stops_the_worker_with_one_clear_error(
    db: Conn, platform: Platform, start_worker: StartWorker
) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(Fatal, match=f"cannot serve metrics on port {port}"):
            await start_worker(metrics_port=port)
