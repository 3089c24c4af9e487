"""Which addresses a delivery may reach: pure, shared by the delivery guard (worker/deliver)
and the admin rules that refuse a schema URL at save time (worker/store/admin.py), so the
two can never disagree (issue 6, issue 12 defect 6)."""

from __future__ import annotations

import ipaddress

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_public(address: str) -> bool:
    """True for a global unicast address; raises ValueError for text that is not an address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address a gateway would reach: judge that one too.
        embedded = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if any(v4 is not None and not is_public(str(v4)) for v4 in embedded):
            return False
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _legacy_ipv4(host: str) -> str | None:
    """`127.1`, `2130706433`, `0x7f.0.0.1`: the forms inet_aton (and so the OS) takes for
    IPv4, as the dotted quad they mean; None when the text is not one of them."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    try:
        nums = [int(p, 16) if p.lower().startswith("0x") else int(p, 8 if p[:1] == "0" and
                len(p) > 1 else 10) for p in parts]  # fmt: skip
    except ValueError:
        return None
    *head, last = nums
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(nums)) or min(nums) < 0:
        return None
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return str(ipaddress.IPv4Address(value))


def private_literal(host: str) -> str | None:
    """The address an IP literal host means when it is not public (loopback, private,
    link-local such as the 169.254.169.254 metadata service, multicast, reserved); None for
    a public literal or a name (names are judged when they are resolved, at delivery)."""
    text = host.strip("[]")
    address = _legacy_ipv4(text) or text
    try:
        return None if is_public(address) else address
    except ValueError:
        return None
