"""Every outcome path of the engine, with fakes of its interfaces (worker/abc.py): no broker,
no database, no HTTP. The same paths run against the real services in the integration tests."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from worker import backoff, codec, policy
from worker.circuit import State
from worker.codec import Delivery, Inbound
from worker.deliver import build_target
from worker.errors import Fatal, Kind, Permanent, Refused
from worker.metrics import Metrics
from worker.model import Attempt, Hook, Schema
from worker.pipeline import Pipeline
from worker.settings import Settings
from worker.settle import Settler

DELAYS = (0.3, 0.6)
EVENT_ID = "2f1b6a52-5d0e-4c0e-9f4a-6f3c1b0d9e11"
OTHER_ID = "7d444840-9dc8-11d1-b245-5ffdce74fad2"


@dataclass
class FakePublisher:
    waits: list[tuple[bytes, dict[str, Any], float, float]] = field(default_factory=list)
    dead: list[tuple[bytes, dict[str, Any], str | None]] = field(default_factory=list)

    async def publish_wait(
        self, body: bytes, headers: dict[str, Any], tier_delay: float, wait: float
    ) -> None:
        self.waits.append((body, headers, tier_delay, wait))

    async def publish_dead(
        self, body: bytes, headers: dict[str, Any], content_type: str | None
    ) -> None:
        self.dead.append((body, headers, content_type))


@dataclass
class FakeHooks:
    hooks: dict[int, Hook] = field(default_factory=dict)
    disabled: list[int] = field(default_factory=list)
    ready: bool = True

    async def wait_fresh(self) -> None:
        return None

    def hooks_for(self, queue_id: int, event: str) -> tuple[Hook, ...]:
        return tuple(h for h in self.hooks.values() if (h.queue_id, h.event) == (queue_id, event))

    def hook(self, hook_id: int) -> Hook | None:
        return self.hooks.get(hook_id)

    def queue_variables(self, queue_id: int) -> dict[str, str]:
        return {}

    async def disable(self, hook_id: int) -> None:
        self.disabled.append(hook_id)


@dataclass
class FakeDeliverer:
    """Answers each request with the next of `script` (the last one again when it runs out)."""

    script: list[Attempt]
    posted: list[tuple[str, int]] = field(default_factory=list)  # (webhook id, attempt number)
    bodies: list[bytes] = field(default_factory=list)

    async def post(self, target: Any, body: bytes, webhook_id: str, attempt: int) -> Attempt:
        self.posted.append((webhook_id, attempt))
        self.bodies.append(body)
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]


def schema(**changes: Any) -> Schema:
    values: dict[str, Any] = {
        "id": 3, "domain_id": 1, "name": "crm", "url": "https://crm.example/hook",
        "secret": None, "headers": (), "timeout": 5.0,
    }  # fmt: skip
    values.update(changes)
    return Schema(**values)


def hook(s: Schema | None = None, hook_id: int = 5) -> Hook:
    s = s or schema()
    return Hook(hook_id, 12, "joined", s, build_target(s, allow_private=True))


@dataclass
class Engine:
    pipeline: Pipeline
    settler: Settler
    publisher: FakePublisher
    hooks: FakeHooks
    deliverer: FakeDeliverer
    acked: list[bool] = field(default_factory=list)
    nacked: list[bool] = field(default_factory=list)
    stopped: list[BaseException] = field(default_factory=list)

    async def consume(self, inbound: Inbound, retry: bool = False) -> None:
        handler = self.pipeline.on_retry if retry else self.pipeline.on_event
        await self.settler.message(handler, [inbound], lambda: self.acked.append(True), self._nack)

    async def _nack(self) -> None:
        self.nacked.append(True)


def engine(*answers: Attempt, hooks: list[Hook] | None = None, **tuning: Any) -> Engine:
    settings = Settings(_env_file=None, retry_delays=DELAYS, quick_retries=1, **tuning)
    publisher, source = (
        FakePublisher(),
        FakeHooks({h.id: h for h in (hooks if hooks is not None else [hook()])}),
    )
    deliverer = FakeDeliverer(list(answers) or [Attempt(204, 0.001)])
    e = Engine(None, None, publisher, source, deliverer)  # type: ignore[arg-type]
    e.settler = Settler(publisher, Metrics(), on_fatal=e.stopped.append)
    e.pipeline = Pipeline(settings, e.settler, source, deliverer, e.settler.metrics)
    return e


def event_inbound(**fields: Any) -> Inbound:
    body = {"id": EVENT_ID, "event": "joined", "queue_id": 12, "channel": "call"} | fields
    return Inbound(orjson.dumps(body), {}, "application/json", None, False, "queue.12.joined")


def retry_inbound(d: Delivery) -> Inbound:
    return Inbound(d.body, d.headers(), "application/json", None, False, "queue-hooks.retry")


def delivery(**changes: Any) -> Delivery:
    values: dict[str, Any] = {
        "hook_id": 5, "event_id": EVENT_ID, "event": "joined", "queue_id": 12,
        "body": b'{"id":"x"}', "occurred_at": 1_700_000_000.25,
    }  # fmt: skip
    values.update(changes)
    return Delivery(**values)


# -- deliveries ----------------------------------------------------------------------------------
async def test_delivered_is_acked_and_publishes_nothing() -> None:
    e = engine(Attempt(204, 0.001))
    await e.consume(event_inbound())
    assert e.acked == [True] and not e.nacked
    assert e.deliverer.posted == [(f"{EVENT_ID}:5", 1)]
    assert not e.publisher.waits and not e.publisher.dead


async def test_an_event_without_hooks_is_acked_untouched() -> None:
    e = engine(hooks=[])
    await e.consume(event_inbound())
    assert e.acked == [True] and not e.deliverer.posted and not e.publisher.dead


async def test_an_invalid_event_is_dead_lettered_byte_for_byte() -> None:
    e = engine()
    inbound = event_inbound(attempt_id="abc")
    await e.consume(inbound)
    ((body, headers, _type),) = e.publisher.dead
    assert body == inbound.body
    assert headers[codec.H_REASON] == "invalid"
    assert headers[codec.H_EVENT_ID] == EVENT_ID
    assert headers[codec.H_ROUTING_KEY] == "queue.12.joined"
    assert e.acked == [True] and not e.deliverer.posted


async def test_a_failure_waits_in_the_first_tier_with_its_occurred_at() -> None:
    e = engine(Attempt(500, 0.001))
    await e.consume(event_inbound(occurred_at="2026-11-24T10:00:00.250Z"))
    ((_body, headers, tier_delay, wait),) = e.publisher.waits
    assert (tier_delay, wait) == (DELAYS[0], DELAYS[0])
    assert headers[codec.H_TIER] == 1 and headers[codec.H_ATTEMPTS] == 1
    assert headers[codec.H_ERROR] == "HTTP 500 from https://crm.example/hook"
    expected = datetime(2026, 11, 24, 10, 0, 0, 250000, tzinfo=UTC).timestamp()
    assert headers[codec.H_OCCURRED_AT] == expected
    assert e.acked == [True]


async def test_a_retry_past_the_last_tier_is_dead_exhausted() -> None:
    e = engine(Attempt(None, 0.001, error="no response within 5000 ms"))
    await e.consume(retry_inbound(delivery(attempts=2, tier=len(DELAYS))), retry=True)
    ((_body, headers, _type),) = e.publisher.dead
    assert headers[codec.H_REASON] == "exhausted"
    assert headers[codec.H_ATTEMPTS] == 3
    assert not e.publisher.waits and e.acked == [True]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [(Attempt(404, 0.001), "rejected"), (Attempt(302, 0.001), "rejected"),
     (Attempt(410, 0.001), "gone"), (Attempt(None, 0, "blocked: x", blocked=True), "blocked")],
)  # fmt: skip
async def test_refusals_are_dead_at_once(answer: Attempt, reason: str) -> None:
    e = engine(answer)
    await e.consume(event_inbound())
    ((_body, headers, _type),) = e.publisher.dead
    assert headers[codec.H_REASON] == reason
    assert headers[codec.H_HOOK_ID] == 5
    assert e.hooks.disabled == ([5] if reason == "gone" else [])
    assert headers[codec.H_ATTEMPTS] == (0 if reason == "blocked" else 1)


async def test_a_refused_connection_is_tried_again_at_once() -> None:
    e = engine(Attempt(None, 0.001, "refused", refused=True), Attempt(200, 0.001))
    await e.consume(event_inbound())
    assert [n for _id, n in e.deliverer.posted] == [1, 2]
    assert not e.publisher.waits and not e.publisher.dead and e.acked == [True]


async def test_a_retry_of_a_disabled_hook_is_dead_disabled_unsent() -> None:
    e = engine(hooks=[])
    await e.consume(retry_inbound(delivery(hook_id=99, tier=1, attempts=1)), retry=True)
    ((_body, headers, _type),) = e.publisher.dead
    assert headers[codec.H_REASON] == "disabled" and headers[codec.H_HOOK_ID] == 99
    assert not e.deliverer.posted and e.acked == [True]


@pytest.mark.parametrize(
    ("event", "queue_id", "error"),
    [("leaving", 12, "hook 5 is now for joined of queue 12, not leaving of queue 12"),
     ("joined", 13, "hook 5 is now for joined of queue 12, not joined of queue 13")],
)  # fmt: skip
async def test_a_retry_whose_hook_now_means_another_event_is_dead_disabled_unsent(
    event: str, queue_id: int, error: str
) -> None:
    e = engine()  # hook 5: joined of queue 12, changed so while the retry waited
    await e.consume(
        retry_inbound(delivery(event=event, queue_id=queue_id, tier=1, attempts=1)), retry=True
    )
    ((_body, headers, _type),) = e.publisher.dead
    assert headers[codec.H_REASON] == "disabled" and headers[codec.H_ERROR] == error
    assert not e.deliverer.posted and e.acked == [True]


async def test_a_stray_retry_message_is_set_aside_invalid_and_acked() -> None:
    e = engine()
    stray = Inbound(b"hello", {"x-mine": "yes"}, "text/plain", None, False, "queue-hooks.retry")
    await e.consume(stray, retry=True)
    ((body, headers, content_type),) = e.publisher.dead
    assert (body, content_type) == (b"hello", "text/plain")
    assert headers[codec.H_REASON] == "invalid" and headers["x-mine"] == "yes"
    assert codec.H_HOOK_ID in headers[codec.H_ERROR]
    assert e.acked == [True] and not e.nacked and not e.stopped


async def put_off(e: Engine, inbound: Inbound) -> tuple[bytes, dict[str, Any], float]:
    """`inbound` consumed while its schema's one request hangs: (body, headers, tier delay)
    of its wait message."""
    release, posted = asyncio.Event(), asyncio.Event()

    async def hanging(target: Any, body: bytes, webhook_id: str, attempt: int) -> Attempt:
        e.deliverer.posted.append((webhook_id, attempt))
        posted.set()
        await release.wait()
        return Attempt(204, 0.001)

    e.deliverer.post = hanging  # type: ignore[method-assign]
    first = asyncio.ensure_future(e.consume(event_inbound()))
    await posted.wait()
    await e.consume(inbound)
    release.set()
    await first
    assert len(e.deliverer.posted) == 1 and e.acked == [True, True]
    del e.deliverer.post  # answers from its script again
    ((body, headers, delay, _wait),) = e.publisher.waits
    return body, headers, delay


async def test_a_stalled_schema_defers_what_waits_without_a_request() -> None:
    e = engine(schema_concurrency=1, schema_stall=0.01)
    _body, headers, delay = await put_off(e, event_inbound(id=OTHER_ID))
    assert headers[codec.H_DEFERRED] == 1 and delay == DELAYS[0]
    assert headers[codec.H_ATTEMPTS] == 0 and headers[codec.H_TIER] == 0


@pytest.mark.parametrize("wait_format", [1, 2])
async def test_a_delivery_put_off_carries_its_payload(wait_format: int) -> None:
    """Built before admission (docs/receivers.md): what waits is what will be POSTed."""
    e = engine(schema_concurrency=1, schema_stall=0.01, wait_format=wait_format)
    inbound = event_inbound(id=OTHER_ID)
    body, headers, _delay = await put_off(e, inbound)
    assert orjson.loads(body)["hook_id"] == 5 and headers[codec.H_HOOK_ID] == 5


# -- a schema whose secret cannot be read (defect 7) ----------------------------------------
async def test_a_schema_that_cannot_sign_sends_nothing_and_waits() -> None:
    bad = hook(schema(secret_error="schema 3 cannot sign: no key; set QUEUE_HOOKS_SECRET_KEY"))
    e = engine(hooks=[bad])
    await e.consume(event_inbound())
    assert not e.deliverer.posted  # never unsigned
    ((_body, headers, _delay, _wait),) = e.publisher.waits
    assert headers[codec.H_ATTEMPTS] == 0 and headers[codec.H_TIER] == 1
    assert "QUEUE_HOOKS_SECRET_KEY" in headers[codec.H_ERROR]
    # ... and once the tiers are used up, it is dead with the same words.
    await e.consume(retry_inbound(delivery(tier=len(DELAYS))), retry=True)
    ((_b, dead, _t),) = e.publisher.dead
    assert dead[codec.H_REASON] == "exhausted" and "QUEUE_HOOKS_SECRET_KEY" in dead[codec.H_ERROR]
    assert not e.deliverer.posted


async def test_other_schemas_deliver_beside_one_that_cannot_sign() -> None:
    bad = hook(schema(id=4, secret_error="schema 4 cannot sign"), hook_id=6)
    e = engine(Attempt(204, 0.001), hooks=[hook(), bad])
    await e.consume(event_inbound())
    assert e.deliverer.posted == [(f"{EVENT_ID}:5", 1)]
    assert len(e.publisher.waits) == 1 and e.acked == [True]


# -- the message-level mapping (defect 3) ----------------------------------------------------------
@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_of_error_has_an_outcome(kind: Kind) -> None:
    for tries in (1, policy.POISON_AFTER):
        outcome = policy.after_error(kind, "boom", tries)
        assert isinstance(outcome, policy.HandBack | policy.Stop | policy.SetAside)
    assert isinstance(policy.after_error(Kind.PERMANENT, "boom", 1), policy.SetAside)
    assert isinstance(policy.after_error(Kind.TRANSIENT, "boom", 9), policy.HandBack)


async def _raising(exc: Exception, tries: int = 1) -> Engine:
    e = engine()

    async def handler(_inbound: Inbound) -> None:
        raise exc

    inbound = Inbound(b"{}", {"x-delivery-count": tries - 1}, None, None, False, "")
    await e.settler.message(handler, [inbound], lambda: e.acked.append(True), e._nack)
    return e


async def test_a_permanent_error_sets_the_message_aside_not_hands_it_back() -> None:
    e = await _raising(Permanent("cannot ever work"))
    ((_b, headers, _t),) = e.publisher.dead
    assert headers[codec.H_REASON] == "invalid" and headers[codec.H_ERROR] == "cannot ever work"
    assert e.acked == [True] and not e.nacked and not e.stopped


async def test_a_transient_error_hands_the_message_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(policy, "HAND_BACK_PAUSE", 0.0)
    e = await _raising(ConnectionResetError("gone"))
    assert e.nacked == [True] and not e.acked and not e.publisher.dead and not e.stopped


async def test_a_fatal_error_stops_the_worker_and_hands_back() -> None:
    e = await _raising(Fatal("bad config"))
    assert e.nacked == [True] and not e.acked and len(e.stopped) == 1


async def test_a_message_that_keeps_failing_the_worker_is_set_aside() -> None:
    e = await _raising(RuntimeError("bug"), tries=policy.POISON_AFTER)
    ((_b, headers, _t),) = e.publisher.dead
    assert "failed on this message 3 times" in headers[codec.H_ERROR]
    assert e.acked == [True] and not e.stopped


async def test_a_cancelled_message_is_handed_back() -> None:
    e = engine()

    async def handler(_inbound: Inbound) -> None:
        await asyncio.sleep(10)

    task = asyncio.ensure_future(
        e.settler.message(handler, [event_inbound()], lambda: e.acked.append(True), e._nack)
    )
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert e.nacked == [True] and not e.acked


# -- settled synchronously: an event no hook wants (docs/receivers.md) ----------------------------
def consumed(e: Engine, outcome: str, event: str = "joined") -> float:
    return e.settler.metrics._event(event, outcome)._value.get()  # type: ignore[no-any-return]


def test_an_event_no_hook_wants_is_acked_with_nothing_to_await() -> None:
    e = engine(hooks=[hook()])
    inbound = event_inbound(queue_id=13)  # the hook is queue 12's
    work = e.settler.message_now(
        e.pipeline.on_event, [inbound], lambda: e.acked.append(True), e._nack
    )
    assert work is None  # no coroutine, so no task: done here and now
    assert e.acked == [True] and not e.nacked and not e.deliverer.posted
    assert consumed(e, "no_hooks") == 1 and consumed(e, "delivering") == 0


async def test_an_event_a_hook_wants_is_left_to_await_and_acked_after() -> None:
    e = engine(Attempt(204, 0.001))
    work = e.settler.message_now(
        e.pipeline.on_event, [event_inbound()], lambda: e.acked.append(True), e._nack
    )
    # Counted when its deliveries start, in the step that admits them (pipeline._deliver).
    assert work is not None and not e.acked and consumed(e, "delivering") == 0
    await work
    assert consumed(e, "delivering") == 1
    assert e.acked == [True] and e.deliverer.posted == [(f"{EVENT_ID}:5", 1)]


async def test_an_invalid_event_takes_the_awaited_path_to_its_dead_letter() -> None:
    e = engine(hooks=[])
    work = e.settler.message_now(
        e.pipeline.on_event, [event_inbound(queue_id="x")], lambda: e.acked.append(True), e._nack
    )
    assert work is not None and not e.acked and not e.publisher.dead
    await work
    ((_body, headers, _type),) = e.publisher.dead
    assert headers[codec.H_REASON] == "invalid" and e.acked == [True]
    assert consumed(e, "invalid", "invalid") == 1 and consumed(e, "no_hooks") == 0


async def test_hooks_not_fresh_are_waited_for_even_for_an_event_none_wants() -> None:
    e = engine(Attempt(204, 0.001), hooks=[])
    fresh = asyncio.Event()
    e.hooks.ready = False

    async def wait_fresh() -> None:
        await fresh.wait()

    e.hooks.wait_fresh = wait_fresh  # type: ignore[method-assign]
    pending = [
        e.settler.message_now(
            e.pipeline.on_event, [event_inbound(queue_id=q)], lambda: e.acked.append(True),
            e._nack,
        )
        for q in (12, 13)
    ]  # fmt: skip
    assert None not in pending and not e.acked
    running = asyncio.gather(*(w for w in pending if w is not None))
    await asyncio.sleep(0)
    assert not e.acked and consumed(e, "no_hooks") == 0  # nothing decided on stale hooks
    e.hooks.hooks[5] = hook()  # the reload brings queue 12's hook
    e.hooks.ready = True
    fresh.set()
    await running
    assert e.acked == [True, True]
    assert e.deliverer.posted == [(f"{EVENT_ID}:5", 1)]  # queue 12's, on the fresh hooks
    assert consumed(e, "delivering") == 1 and consumed(e, "no_hooks") == 1


async def test_a_handler_raising_before_it_awaits_is_classified_as_ever() -> None:
    e = engine()

    def handler(_inbound: Inbound) -> None:
        raise Permanent("refused at once")

    work = e.settler.message_now(handler, [event_inbound()], lambda: e.acked.append(True), e._nack)
    assert work is not None and not e.acked
    await work
    ((_b, headers, _t),) = e.publisher.dead
    assert headers[codec.H_ERROR] == "refused at once" and e.acked == [True]


# -- a publish the broker refuses (issue 14) ------------------------------------------------------
@dataclass
class RefusingPublisher(FakePublisher):
    """Refuses (basic.nack, the connection up) the first `refusals` publishes it is asked."""

    refusals: int = 0
    refused: int = 0

    def _refuse(self) -> None:
        if self.refused < self.refusals:
            self.refused += 1
            raise Refused("the broker refused the publish to queue-hooks.wait.0.3s (basic.nack)")

    async def publish_wait(
        self, body: bytes, headers: dict[str, Any], tier_delay: float, wait: float
    ) -> None:
        self._refuse()
        await super().publish_wait(body, headers, tier_delay, wait)

    async def publish_dead(
        self, body: bytes, headers: dict[str, Any], content_type: str | None
    ) -> None:
        self._refuse()
        await super().publish_dead(body, headers, content_type)


@dataclass
class ByUrl(FakeDeliverer):
    """Answers each schema with its own attempt."""

    answers: dict[str, Attempt] = field(default_factory=dict)

    async def post(self, target: Any, body: bytes, webhook_id: str, attempt: int) -> Attempt:
        self.posted.append((webhook_id, attempt))
        return self.answers[str(target.url)]


def refusing(refusals: int, monkeypatch: pytest.MonkeyPatch) -> tuple[Engine, RefusingPublisher]:
    """Queue 12's joined has two hooks: 5 to a healthy schema, 6 to one answering 500."""
    monkeypatch.setattr(backoff, "delays", lambda: itertools.repeat(0.0))
    healthy, failing = schema(), schema(id=4, url="https://failing.example/hook")
    e = engine(hooks=[hook(healthy, 5), hook(failing, 6)])
    publisher = RefusingPublisher(refusals=refusals)
    e.publisher = e.settler.publisher = publisher
    e.deliverer = e.pipeline.deliverer = ByUrl(
        [], answers={healthy.url: Attempt(204, 0.001), failing.url: Attempt(500, 0.001)}
    )
    return e, publisher


async def test_a_refused_wait_publish_is_made_again_not_the_event_handed_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: the refusal handed the event back, and each redelivery called the healthy hook
    again (516 duplicates in a `make chaos` run)."""
    e, publisher = refusing(3, monkeypatch)
    await e.consume(event_inbound())
    assert publisher.refused == 3
    assert sorted(e.deliverer.posted) == [(f"{EVENT_ID}:5", 1), (f"{EVENT_ID}:6", 1)]  # once each
    ((_body, headers, _tier, _wait),) = publisher.waits
    assert headers[codec.H_HOOK_ID] == 6 and headers[codec.H_ATTEMPTS] == 1
    assert e.acked == [True] and not e.nacked


async def test_a_refused_dead_letter_is_made_again(monkeypatch: pytest.MonkeyPatch) -> None:
    e, publisher = refusing(2, monkeypatch)
    await e.consume(event_inbound(queue_id="x"))  # invalid: dead-lettered
    assert publisher.refused == 2 and len(publisher.dead) == 1
    assert e.acked == [True] and not e.nacked


class LostPublisher(FakePublisher):
    async def publish_wait(
        self, body: bytes, headers: dict[str, Any], tier_delay: float, wait: float
    ) -> None:
        raise ConnectionError("the broker connection is down (a failover is under way)")


async def test_a_publish_on_a_lost_connection_still_hands_the_event_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing to hold it for: the broker has the event back already, with its connection."""
    monkeypatch.setattr(policy, "HAND_BACK_PAUSE", 0.0)
    e, _ = refusing(0, monkeypatch)
    e.publisher = e.settler.publisher = LostPublisher()
    await e.consume(event_inbound())
    assert e.nacked == [True] and not e.acked


# -- put off with no task: a receiver whose circuit is open (docs/receivers.md) ----------------
@dataclass
class HeldPublisher(FakePublisher):
    """Its wait publishes are futures the test confirms (or fails), as the broker's batches are."""

    confirms: list[asyncio.Future[None]] = field(default_factory=list)

    def publish_wait(  # type: ignore[override]
        self, body: bytes, headers: dict[str, Any], tier_delay: float, wait: float
    ) -> asyncio.Future[None]:
        self.waits.append((body, headers, tier_delay, wait))
        self.confirms.append(asyncio.get_running_loop().create_future())
        return self.confirms[-1]


def deliveries(e: Engine, outcome: str) -> float:
    return e.settler.metrics.deliveries.labels(outcome, "")._value.get()  # type: ignore[no-any-return]


async def opened() -> tuple[Engine, HeldPublisher]:
    """An engine whose schema 3's circuit opened on its first failure (the receiver's 500),
    and its publisher, whose confirms the test gives."""
    e = engine(Attempt(500, 0.001), circuit_failures=1)
    held = HeldPublisher()
    e.publisher = e.settler.publisher = held
    first = e.settler.message_now(
        e.pipeline.on_event, [event_inbound(id=OTHER_ID)], lambda: e.acked.append(True), e._nack
    )
    assert asyncio.iscoroutine(first)  # attempted: in a task, as ever
    running = asyncio.ensure_future(first)
    await until(lambda: bool(held.confirms))  # its retry's wait, once the 500 came
    held.confirms.pop().set_result(None)
    await running
    held.waits.clear()
    e.acked.clear()
    return e, held


async def until(condition: Any) -> None:
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - a turn of the loop at a time, no clock
            await asyncio.sleep(0)


async def test_a_delivery_put_off_is_acked_from_its_confirm_with_no_coroutine() -> None:
    e, held = await opened()
    posted = len(e.deliverer.posted)
    work = e.settler.message_now(
        e.pipeline.on_event, [event_inbound()], lambda: e.acked.append(True), e._nack
    )
    # No coroutine, so no task: the future of the message settled, decided here and now.
    assert isinstance(work, asyncio.Future) and not work.done()
    assert consumed(e, "delivering") == 2 and deliveries(e, "deferred") == 1
    ((body, headers, _delay, _wait),) = held.waits
    assert headers[codec.H_DEFERRED] == 1 and headers[codec.H_ATTEMPTS] == 0
    assert "circuit open" in headers[codec.H_ERROR] and orjson.loads(body)["hook_id"] == 5
    retried = deliveries(e, "retried")
    await asyncio.sleep(0)
    assert not e.acked  # not before the broker holds its wait
    held.confirms[0].set_result(None)
    await work
    assert e.acked == [True] and not e.nacked and deliveries(e, "retried") == retried + 1
    assert len(e.deliverer.posted) == posted  # no request


async def test_a_put_off_whose_wait_publish_is_refused_is_made_again_and_acked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refusal (basic.nack) is held and made again, as on the awaited path (issue 14)."""
    monkeypatch.setattr(backoff, "delays", lambda: itertools.repeat(0.0))
    e, held = await opened()
    work = e.settler.message_now(
        e.pipeline.on_event, [event_inbound()], lambda: e.acked.append(True), e._nack
    )
    assert isinstance(work, asyncio.Future)
    held.confirms[0].set_exception(Refused("the broker refused the publish (basic.nack)"))
    await until(lambda: len(held.confirms) == 2)  # made again
    assert not e.acked and not e.nacked
    held.confirms[1].set_result(None)
    await work
    assert e.acked == [True] and not e.nacked
    assert [h[codec.H_HOOK_ID] for _b, h, _d, _w in held.waits] == [5, 5]


async def test_a_put_off_whose_wait_publish_fails_is_handed_back_not_acked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(policy, "HAND_BACK_PAUSE", 0.0)
    e, held = await opened()
    retried = deliveries(e, "retried")
    work = e.settler.message_now(
        e.pipeline.on_event, [event_inbound()], lambda: e.acked.append(True), e._nack
    )
    assert isinstance(work, asyncio.Future)
    held.confirms[0].set_exception(ConnectionResetError("the broker went away"))
    await work  # done once the message is settled: handed back, by a task of its own
    assert e.nacked == [True] and not e.acked and deliveries(e, "retried") == retried


async def test_a_put_off_given_up_at_shutdown_is_still_acked_once_its_wait_is_held() -> None:
    e, held = await opened()
    work = e.settler.message_now(
        e.pipeline.on_event, [event_inbound()], lambda: e.acked.append(True), e._nack
    )
    assert isinstance(work, asyncio.Future)
    work.cancel()  # the drain's grace ran out
    held.confirms[0].set_result(None)
    await until(lambda: bool(e.acked))
    assert e.acked == [True] and not e.nacked


async def test_every_hook_put_off_is_one_future_and_a_mix_takes_the_task() -> None:
    e, held = await opened()  # schema 3's circuit open
    e.hooks.hooks[6] = hook(schema(id=4, url="https://other.example/hook"), hook_id=6)
    e.deliverer.script = [Attempt(204, 0.001)]
    mixed = e.settler.message_now(
        e.pipeline.on_event, [event_inbound()], lambda: e.acked.append(True), e._nack
    )
    assert asyncio.iscoroutine(mixed)  # schema 4's is attempted: the task path, as ever
    running = asyncio.ensure_future(mixed)
    await until(lambda: bool(held.confirms))
    held.confirms[0].set_result(None)  # schema 3's, put off
    await running
    assert e.acked == [True] and e.deliverer.posted[-1] == (f"{EVENT_ID}:6", 1)
    # Both put off: one future for the two waits, acked once both are confirmed.
    e.pipeline.admission.circuits.of(4).record("fail", time.monotonic())
    assert e.pipeline.admission.circuits.of(4).state is State.OPEN
    e.acked.clear()
    both = e.settler.message_now(
        e.pipeline.on_event, [event_inbound(id=OTHER_ID)], lambda: e.acked.append(True), e._nack
    )
    assert isinstance(both, asyncio.Future) and len(held.confirms) == 3
    held.confirms[1].set_result(None)
    await asyncio.sleep(0)
    assert not e.acked
    held.confirms[2].set_result(None)
    await both
    assert e.acked == [True]


async def test_a_wait_given_up_gives_up_its_place_in_the_batch() -> None:
    """A stop past its grace cancels what awaits a wait: the batch's future of that delivery
    is cancelled with it (the batch skips it), as when that future itself was awaited. Before,
    it stayed, and its failure at the connection's close was never retrieved (asyncio's
    "Future exception was never retrieved", an error line in `make chaos`)."""
    e = engine()
    held = HeldPublisher()
    e.publisher = e.settler.publisher = held
    wait = policy.deferral(delivery(), DELAYS, "circuit open: schema 3", 0.0)
    waiting = asyncio.ensure_future(e.settler.delivery(delivery(), wait, time.time()))
    await until(lambda: bool(held.confirms))
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert held.confirms[0].cancelled()
