"""Connecting to a cluster's nodes: the first that answers, and the next one after a loss.

aio-pika's robust connection reconnects to the one URL it was given; it has no list of hosts
(mosquito/aio-pika#141, open since 2018; a round-robin class, #680, was closed unmerged). So
walking the nodes is ours: each round tries every node once, starting after the one used
last (a node that has just failed is tried last), and a round in which none answered waits
the usual back-off (worker/backoff.py) before the next.

The connection we hand out is robust for its channels (a channel the broker closes is
reopened, its queues declared again) but never reconnects by itself: on a loss the Broker
walks the nodes again (worker/broker/__init__.py), so it can land on another node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aio_pika
import structlog
from aio_pika.abc import AbstractConnection, AbstractRobustConnection
from aio_pika.connection import Connection
from aio_pika.robust_connection import RobustConnection

from worker.backoff import keep_trying
from worker.broker import consumers, frames
from worker.errors import Fatal, is_transient, one_line
from worker.urls import scrub, where

log = structlog.get_logger("queue_hooks.broker")

C = TypeVar("C", bound=AbstractConnection)
CONNECT_TIMEOUT = 5.0  # a node that does not answer within it: try the next


class NodeConnection(RobustConnection):
    """Robust channels on one node; when the connection itself is lost, it stays lost."""

    async def _on_connection_close(self, closing: asyncio.Future[object]) -> None:
        # The close callbacks, without RobustConnection's reconnect to this same node.
        await Connection._on_connection_close(self, closing)


class Nodes:
    def __init__(self, urls: tuple[str, ...]) -> None:
        assert urls, "at least one URL"
        self.urls = urls
        self.current = len(urls) - 1  # so the first round starts at the first URL

    def __repr__(self) -> str:
        return f"Nodes({', '.join(where(u) for u in self.urls)})"

    @property
    def node(self) -> str:
        """host:port of the node used last."""
        return where(self.urls[self.current])

    async def robust(self, *, attempts: int | None = None) -> AbstractRobustConnection:
        """A NodeConnection to the first node that answers (the worker's)."""
        return await self._walk(
            lambda url: aio_pika.connect_robust(
                url, timeout=CONNECT_TIMEOUT, connection_class=NodeConnection
            ),
            attempts,
        )

    async def plain(self, *, attempts: int | None = 1) -> AbstractConnection:
        """A plain connection to the first node that answers (an ops command's)."""
        return await self._walk(
            lambda url: aio_pika.connect(url, timeout=CONNECT_TIMEOUT), attempts
        )

    async def _walk(self, connect: Callable[[str], Awaitable[C]], attempts: int | None) -> C:
        return await keep_trying(
            lambda: self._round(connect), "broker unreachable, waiting",
            attempts=attempts, logger=log,
        )  # fmt: skip

    async def _round(self, connect: Callable[[str], Awaitable[C]]) -> C:
        frames.install()  # aiormq receives our connections' frames in bulk (frames.py)
        consumers.install()  # and makes a task only for a message that needs one
        failures: list[str] = []
        for step in range(1, len(self.urls) + 1):
            index = (self.current + step) % len(self.urls)
            url = self.urls[index]
            try:
                conn = await connect(url)
            except Exception as exc:
                if not is_transient(exc):
                    raise Fatal(_failure(url, exc)) from None
                failures.append(_failure(url, exc))
                continue
            self.current = index
            if len(self.urls) > 1:
                log.info("broker node connected", node=where(url))
            return conn
        # One line naming each node (host:port) and its error: never a password.
        raise ConnectionError("; ".join(failures)) from None


def _failure(url: str, exc: BaseException) -> str:
    return f"{where(url)}: {scrub(one_line(exc), url)}"
