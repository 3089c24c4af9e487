"""Pure: what each result means, and how long each retry tier waits (contract §5)."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from worker.deliver import build_target, request_headers
from worker.model import Attempt, Schema, describe_target
from worker.policy import (
    Dead,
    Delivered,
    Retry,
    judge,
    not_its_hook,
    quick_retryable,
    retry_after,
    tier_wait,
)

URL = "https://user:pw@crm.example/hook?token=abc"
SHOWN = describe_target(URL)
NOW = 1_800_000_000.0


def at(status: int | None, **kw: object) -> Attempt:
    return Attempt(status, 0.01, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_2xx_is_delivered(status: int) -> None:
    assert judge(at(status), SHOWN, NOW) == Delivered()


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504, 599])
def test_retryable_statuses(status: int) -> None:
    verdict = judge(at(status), SHOWN, NOW)
    assert verdict == Retry(f"HTTP {status} from https://crm.example/hook")


def test_no_response_is_retried_and_the_error_hides_credentials() -> None:
    verdict = judge(at(None, error="no response within 5000 ms"), SHOWN, NOW)
    assert isinstance(verdict, Retry)
    assert "pw" not in verdict.error and "token" not in verdict.error


def test_410_is_gone() -> None:
    assert judge(at(410), SHOWN, NOW) == Dead("gone", "HTTP 410 from https://crm.example/hook")


# 600 and above are not 5xx: "any other status" (HTTP/1.1 parsers take three digits).
@pytest.mark.parametrize("status", [301, 302, 307, 400, 401, 403, 404, 409, 422, 600, 999])
def test_other_statuses_are_rejected_at_once(status: int) -> None:
    verdict = judge(at(status), SHOWN, NOW)
    assert isinstance(verdict, Dead) and verdict.reason == "rejected"
    assert f"HTTP {status} from https://crm.example/hook" in verdict.error


@pytest.mark.parametrize(
    ("status", "redirect"), [(301, True), (308, True), (300, False), (304, False)]
)
def test_only_a_redirect_is_said_to_be_one(status: int, redirect: bool) -> None:
    verdict = judge(at(status), SHOWN, NOW)
    assert isinstance(verdict, Dead) and verdict.reason == "rejected"
    assert ("redirects are not followed" in verdict.error) is redirect


def test_a_blocked_address_is_dead_with_reason_blocked() -> None:
    verdict = judge(at(None, error="blocked: 10.0.0.1 is not a public address", blocked=True),
                    URL, NOW)  # fmt: skip
    assert isinstance(verdict, Dead) and verdict.reason == "blocked"


def test_retry_after_only_counts_on_429_and_503() -> None:
    assert judge(at(429, retry_after="30"), SHOWN, NOW) == Retry(
        "HTTP 429 from https://crm.example/hook", 30.0
    )
    assert judge(at(500, retry_after="30"), SHOWN, NOW) == Retry(
        "HTTP 500 from https://crm.example/hook", None
    )


def test_retry_after_as_a_date() -> None:
    assert retry_after(formatdate(NOW + 90, usegmt=True), NOW) == pytest.approx(90, abs=1)
    assert retry_after("soon", NOW) is None
    assert retry_after(None, NOW) is None


@pytest.mark.parametrize("odd", ["²", "\uff11\uff12", "٣", "-5", "1.5", "12 "])
def test_an_odd_retry_after_is_read_as_none_never_raises(odd: str) -> None:
    """A receiver's header is anything: digits that are not ASCII ("²" passes str.isdigit,
    float() refuses it) must not fail the delivery's judging (contract §5: the tier's wait)."""
    assert retry_after(odd, NOW) in (None, 12.0)
    assert judge(at(503, retry_after=odd), SHOWN, NOW) == Retry(
        "HTTP 503 from https://crm.example/hook", retry_after(odd, NOW)
    )


def test_tier_waits_lengthen_but_never_shorten_and_at_most_double() -> None:
    delays = (10.0, 60.0)
    assert tier_wait(delays, 0, None) == 10.0
    assert tier_wait(delays, 0, 3.0) == 10.0
    assert tier_wait(delays, 0, 15.0) == 15.0
    assert tier_wait(delays, 0, 500.0) == 20.0
    assert tier_wait(delays, 1, None) == 60.0
    assert tier_wait(delays, 2, None) is None


def test_quick_retries_are_for_refused_connections_and_gateway_errors() -> None:
    assert quick_retryable(at(None, refused=True))
    assert all(quick_retryable(at(s)) for s in (502, 503, 504))
    assert not quick_retryable(at(500))
    assert not quick_retryable(at(None, error="timeout"))


def test_static_headers_never_replace_ours() -> None:
    schema = Schema(
        1, 1, "crm", URL, None,
        (("Authorization", "Bearer x"), ("Webhook-Id", "evil"), ("User-Agent", "evil"),
         ("Content-Type", "text/plain"), ("Queue-Hooks-Attempt", "9")),
        5.0,
    )  # fmt: skip
    headers = request_headers(build_target(schema, True), "e:1", 2, b"{}", NOW)
    assert headers["webhook-id"] == "e:1"
    assert headers["queue-hooks-attempt"] == "2"
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith("queue-hooks/")
    assert headers["Authorization"] == "Bearer x"
    assert "webhook-signature" not in headers
    assert {k.lower() for k in headers} == {
        "webhook-id", "queue-hooks-attempt", "content-type", "user-agent", "authorization",
        "webhook-timestamp",
    }  # fmt: skip


LEAVING_12 = "leaving of queue 12"


@pytest.mark.parametrize(
    ("made_for", "now", "error"),
    [((12, "leaving"), (12, "leaving"), None),
     ((12, "leaving"), None, "hook 5 is disabled or deleted"),
     ((12, "leaving"), (12, "joined"), f"hook 5 is now for joined of queue 12, not {LEAVING_12}"),
     ((12, "leaving"), (13, "leaving"), f"hook 5 is now for leaving of queue 13, not {LEAVING_12}"),
     ((0, ""), (13, "joined"), None)],  # a message from before these headers: not held against it
)  # fmt: skip
def test_a_retry_goes_only_to_the_hook_it_was_made_for(
    made_for: tuple[int, str], now: tuple[int, str] | None, error: str | None
) -> None:
    assert not_its_hook(5, made_for, now) == error
