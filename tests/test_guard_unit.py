"""The private-address guard on its own: which addresses count as public (contract §7)."""

from __future__ import annotations

import pytest
from pyreqwest.http import Url

from worker.deliver import BlockedTarget, _reqwest_host, check_address, check_host, describe_target

NOT_PUBLIC = [
    "127.0.0.1", "127.1", "2130706433", "0x7f.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1",
    "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "239.255.255.250", "::1", "::",
    "fe80::1", "fd00:ec2::254", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    "64:ff9b::7f00:1", "2002:7f00:1::1", "2001:0:4136:e378:8000:63bf:80ff:fffe",
]  # fmt: skip
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


def as_connected(host: str) -> str:
    """The address reqwest connects to for this URL host (it reads `127.1` as 127.0.0.1)."""
    url = Url(f"http://[{host}]/" if ":" in host else f"http://{host}/")
    return (url.host_str or "").strip("[]")


@pytest.mark.parametrize("host", NOT_PUBLIC)
def test_the_address_guard_refuses_what_is_not_public(host: str) -> None:
    with pytest.raises(BlockedTarget, match="not a public address"):
        check_address(as_connected(host))


@pytest.mark.parametrize("host", PUBLIC)
def test_the_address_guard_lets_public_addresses_through(host: str) -> None:
    check_address(as_connected(host))


@pytest.mark.parametrize(
    ("url", "address"),
    [("http://127.1:8080/h", "127.0.0.1"), ("http://2130706433/", "127.0.0.1"),
     ("http://0x7f.0.0.1/", "127.0.0.1"),
     ("http://127.0.0.1./", "127.0.0.1"), ("http://[::ffff:127.0.0.1]/", "::ffff:7f00:1"),
     ("https://crm.example/hook", "crm.example")],
)  # fmt: skip
def test_the_guard_reads_a_host_as_the_client_will(url: str, address: str) -> None:
    """Odd spellings of an address are judged as the address reqwest would connect to."""
    assert _reqwest_host(url) == address


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "169.254.169.254", "[fd00:ec2::254]"])
def test_ip_literals_are_refused_before_any_connection(host: str) -> None:
    with pytest.raises(BlockedTarget):
        check_host(host)


def test_names_are_left_to_the_resolver() -> None:
    check_host("crm.example")  # no DNS here: the resolver checks what it resolves to


def test_an_ipv6_target_is_shown_with_its_brackets() -> None:
    assert describe_target("https://u:p@[fd00::1]:8443/h?k=1") == "https://[fd00::1]:8443/h"
