"""The engine's interfaces (aio-pika's `abc.py` style): what the pipeline and the settling
need of the broker, the hook cache and the HTTP side, and nothing more.

The pipeline depends only on these, so every outcome path of it runs in a unit test with fakes
(tests/unit/test_engine_unit.py) beside the integration tests with the real services.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from worker.codec import Inbound
    from worker.model import Attempt, Hook

Headers = dict[str, Any]


class Publisher(Protocol):
    """Confirmed publishing: each call returns once the broker holds the message."""

    def publish_wait(
        self, body: bytes, headers: Headers, tier_delay: float, wait: float
    ) -> Awaitable[None]:
        """Done once the broker holds it. The broker's is a future (a wait batch's confirm
        completes it), so that a delivery put off needs no task (worker/settle.py)."""
        ...

    async def publish_dead(
        self, body: bytes, headers: Headers, content_type: str | None
    ) -> None: ...


class HookSource(Protocol):
    """The enabled hooks, in memory (worker/store/cache.py)."""

    @property
    def ready(self) -> bool:
        """Fresh now: `wait_fresh` would not wait."""
        ...

    async def wait_fresh(self) -> None: ...

    def hooks_for(self, queue_id: int, event: str) -> tuple[Hook, ...]: ...

    def hook(self, hook_id: int) -> Hook | None: ...

    def queue_variables(self, queue_id: int) -> dict[str, str]: ...

    async def disable(self, hook_id: int) -> None:
        """After a 410 Gone: the hook is disabled in the database."""
        ...


class Target(Protocol):
    """A schema's delivery target, built once when the cache loads the schema."""

    @property
    def shown(self) -> str:
        """The URL as errors may show it: no userinfo, no query."""
        ...

    @property
    def url_error(self) -> str | None:
        """Why no client can use its URL (nothing is sent), or None."""
        ...


class Deliverer(Protocol):
    """One HTTP attempt; never raises for what a receiver or the network does."""

    async def post(self, target: Any, body: bytes, webhook_id: str, attempt: int) -> Attempt: ...


# None: the delivery was handled synchronously (an event no hook wants), nothing to await.
# A future: under way without a task (its deliveries put off, waiting for their confirm).
Handler = Callable[["Inbound"], Awaitable[object] | None]
Ack = Callable[[], None]
Nack = Callable[[], Awaitable[None]]
