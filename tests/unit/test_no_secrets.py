"""No password, token or secret in any repr (issue 12, defect 4)."""

from __future__ import annotations

from worker.broker import Broker, safe_url
from worker.deliver import build_target
from worker.model import Hook, Schema
from worker.settings import Settings

PASSWORD, TOKEN, SECRET, HEADER = (
    "amqp-pw-42",
    "url-token-43",
    "whsec_c2VjcmV0LTQ0LXNlY3JldA==",
    "Bearer hdr-45",
)


def _schema() -> Schema:
    return Schema(
        3, 1, "crm", f"https://user:{TOKEN}@crm.example/hook?token={TOKEN}", SECRET,
        (("Authorization", HEADER),), 5.0, previous_secret=SECRET,
    )  # fmt: skip


def _clean(text: str) -> None:
    for word in (PASSWORD, TOKEN, SECRET, HEADER, "hdr-45"):
        assert word not in text, text


def test_the_broker_repr_shows_no_password() -> None:
    broker = Broker(f"amqp://guest:{PASSWORD}@127.0.0.1:5672/", "cc.events", (1.0,), 10)
    _clean(repr(broker))
    assert "127.0.0.1" in repr(broker)
    assert safe_url(f"amqp://guest:{PASSWORD}@h:1/v") == "amqp://guest:***@h:1/v"


def test_schemas_hooks_and_targets_show_no_secret() -> None:
    schema = _schema()
    target = build_target(schema, allow_private=False)
    for obj in (schema, target, Hook(5, 12, "joined", schema, target)):
        _clean(repr(obj))
        _clean(str(obj))


def test_settings_show_no_password() -> None:
    settings = Settings(
        _env_file=None, amqp_url=f"amqp://u:{PASSWORD}@h/",
        database_url=f"postgresql://u:{PASSWORD}@h/db", secret_key=SECRET,
    )  # fmt: skip
    _clean(repr(settings))
