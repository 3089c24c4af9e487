"""The one test of a private target, shared by the delivery guard and the save-time rule."""

from __future__ import annotations

import pytest

from worker.addresses import private_literal
from worker.store.admin import Refused, check_target


@pytest.mark.parametrize(
    ("host", "means"),
    [
        ("169.254.169.254", "169.254.169.254"), ("10.1.2.3", "10.1.2.3"),
        ("127.1", "127.0.0.1"), ("2130706433", "127.0.0.1"), ("0x7f.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"), ("::ffff:169.254.169.254", "::ffff:169.254.169.254"),
        ("fd00::1", "fd00::1"), ("0.0.0.0", "0.0.0.0"), ("224.0.0.1", "224.0.0.1"),
    ],
)  # fmt: skip
def test_private_literals(host: str, means: str) -> None:
    assert private_literal(host) == means


@pytest.mark.parametrize("host", ["8.8.8.8", "crm.example", "1.2.3.com", "[2001:4860::8888]"])
def test_public_or_names(host: str) -> None:
    assert private_literal(host) is None


def test_check_target() -> None:
    with pytest.raises(Refused, match=r"169\.254\.169\.254 is not a public address"):
        check_target("http://169.254.169.254/latest/meta-data/", allow_private=False)
    check_target("http://169.254.169.254/", allow_private=True)
    check_target("https://crm.example/hook", allow_private=False)
