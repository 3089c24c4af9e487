"""The outbound guard: no delivery reaches a loopback, private, link-local, multicast or
reserved address, however its URL is spelled and whatever its DNS answers (issue 6)."""

from __future__ import annotations

import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from worker.addresses import is_public as _is_public
from worker.addresses import private_literal

_NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV


class BlockedTarget(OSError):
    """The schema's address is loopback, private, link-local, multicast or reserved."""


def guarded_socket(addr_info: tuple[Any, ...]) -> socket.socket:
    """aiohttp's socket factory: the last word on every address about to be connected to.

    aiohttp skips the resolver for hosts it takes for IP literals, and then lets the OS parse
    them (`127.1` and `2130706433` are 127.0.0.1), so the address is normalised the same way
    here and refused unless public: no URL spelling and no DNS answer gets around it.
    """
    family, kind, proto, _name, sockaddr = addr_info
    try:
        found = socket.getaddrinfo(sockaddr[0], sockaddr[1], family, kind, proto, _NUMERIC)
    except socket.gaierror:
        raise BlockedTarget(f"{sockaddr[0]} is not an address that can be checked") from None
    for *_rest, address in found:
        if not _is_public(str(address[0])):
            raise BlockedTarget(f"{address[0]} is not a public address")
    return socket.socket(family, kind, proto)


def check_host(host: str) -> None:
    """Raises BlockedTarget for an IP literal that is not public (no DNS involved)."""
    if private_literal(host) is not None:
        raise BlockedTarget(f"{host} is not a public address")


class GuardedResolver(AbstractResolver):
    """Checks the addresses actually connected to, so DNS changed after save cannot sneak by."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        allowed = [r for r in found if _is_public(r["host"])]
        if not allowed:
            shown = ", ".join(sorted({r["host"] for r in found}))
            raise BlockedTarget(f"{host} resolves to {shown}, not a public address")
        return allowed

    async def close(self) -> None:
        await self._inner.close()
