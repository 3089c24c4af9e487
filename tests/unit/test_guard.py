"""The private-address guard on its own: which addresses count as public (contract §7)."""

from __future__ import annotations

import socket

import pytest

from worker.deliver import BlockedTarget, check_host, describe_target, guarded_socket

NOT_PUBLIC = [
    "127.0.0.1", "127.1", "2130706433", "0x7f.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1",
    "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "239.255.255.250", "::1", "::",
    "fe80::1", "fd00:ec2::254", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    "64:ff9b::7f00:1", "2002:7f00:1::1", "2001:0:4136:e378:8000:63bf:80ff:fffe",
]  # fmt: skip
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


def addr_info(host: str) -> tuple[object, ...]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, 443))


@pytest.mark.parametrize("host", NOT_PUBLIC)
def test_the_socket_guard_refuses_what_is_not_public(host: str) -> None:
    with pytest.raises(BlockedTarget, match="not a public address"):
        guarded_socket(addr_info(host))


@pytest.mark.parametrize("host", PUBLIC)
def test_the_socket_guard_lets_public_addresses_through(host: str) -> None:
    guarded_socket(addr_info(host)).close()


def test_the_socket_guard_refuses_a_name_it_cannot_check_without_dns() -> None:
    with pytest.raises(BlockedTarget, match="not an address that can be checked"):
        guarded_socket(addr_info("example.com"))


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "169.254.169.254", "[fd00:ec2::254]"])
def test_ip_literals_are_refused_before_any_connection(host: str) -> None:
    with pytest.raises(BlockedTarget):
        check_host(host)


def test_names_are_left_to_the_resolver() -> None:
    check_host("crm.example")  # no DNS here: the resolver checks what it resolves to


def test_an_ipv6_target_is_shown_with_its_brackets() -> None:
    assert describe_target("https://u:p@[fd00::1]:8443/h?k=1") == "https://[fd00::1]:8443/h"
