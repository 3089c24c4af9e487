"""The service URLs of the settings (issue 14): a cluster's AMQP nodes, a database's hosts."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from worker.broker import Broker
from worker.broker.topology import GROUP_SIZE, QueueSpec, declarations, queue_specs
from worker.settings import Settings
from worker.urls import amqp_nodes, check_database_url, database_hosts, scrub, where

PASSWORD = "s3cr3t-pw"


def test_one_url_or_a_list() -> None:
    assert amqp_nodes("amqp://u:p@h1:1/") == ("amqp://u:p@h1:1/",)
    assert amqp_nodes(" amqp://h1:1/ , amqps://h2/v ,") == ("amqp://h1:1/", "amqps://h2/v")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no AMQP URL"),
        ("amqp://h1/,http://h2/", "#2 (h2): the scheme must be amqp"),
        ("amqp://h1/,amqp://:5672/", "#2 (?:5672): no host"),
        (f"amqp://u:{PASSWORD}@h1:notaport/", "#1"),
    ],
)
def test_a_bad_url_is_named_by_place_and_host(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)) as err:
        amqp_nodes(text)
    assert PASSWORD not in str(err.value)


def test_settings_refuse_a_bad_list_without_its_password() -> None:
    with pytest.raises(ValidationError) as err:
        Settings(amqp_url=f"amqp://u:{PASSWORD}@h1/,ftp://u:{PASSWORD}@h2/")
    assert PASSWORD not in err.value.errors()[0]["msg"]


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://postgres@localhost:5432/queue_hooks",
        f"postgres://u:{PASSWORD}@h1:1,h2:2,[::1]/db?target_session_attrs=read-write",
        "postgresql:///queue_hooks?host=/var/run/postgresql&port=5433",
        "postgresql://[::1]:6432/db",
    ],
)
def test_a_database_url_of_libpq_is_taken_as_it_is(dsn: str) -> None:
    assert check_database_url(dsn) == dsn


def test_where_and_database_hosts_show_no_password() -> None:
    assert where(f"amqp://u:{PASSWORD}@h1/") == "h1:5672"
    assert where("amqps://h1:5000/v") == "h1:5000"
    dsn = f"postgresql://u:{PASSWORD}@h1:1,h2:2,[::1]/db?target_session_attrs=read-write"
    assert database_hosts(dsn) == "h1:1,h2:2,[::1]:5432"
    assert scrub(f"login {PASSWORD} refused", f"amqp://u:{PASSWORD}@h/") == "login *** refused"


def test_quorum_group_size_follows_the_list_at_most_three() -> None:
    one = "amqp://h1/"
    assert Settings(amqp_url=one).quorum_group_size == 1
    assert Settings(amqp_url=",".join([one] * 2)).quorum_group_size == 2
    assert Settings(amqp_url=",".join([one] * 5)).quorum_group_size == 3
    assert Settings(amqp_url=one, quorum_size=5).quorum_group_size == 5


def test_broker_repr_names_every_node_and_no_password() -> None:
    broker = Broker(f"amqp://u:{PASSWORD}@h1:1/,amqp://u:{PASSWORD}@h2:2/", "x", (1.0,), 1)
    assert repr(broker) == "Broker(Nodes(h1:1, h2:2), exchange='x')"


def test_declarations_try_ours_then_none_then_other_sizes() -> None:
    events = queue_specs((1.0,), 3)[0]
    tried = declarations(events)
    assert tried[0] == {"x-queue-type": "quorum", GROUP_SIZE: 3}
    assert tried[1] == {"x-queue-type": "quorum"}
    assert [a[GROUP_SIZE] for a in tried[2:]] == [1, 2, 4, 5, 6, 7, 8, 9]
    classic = QueueSpec("q", {"x-queue-type": "classic"})
    assert declarations(classic) == [classic.arguments]
    assert all(GROUP_SIZE not in s.arguments for s in queue_specs((1.0,)))
    unsized = declarations(queue_specs((1.0,))[0])  # a broker of no set size takes any
    assert unsized[0] == {"x-queue-type": "quorum"}
    assert [a[GROUP_SIZE] for a in unsized[1:]] == list(range(1, 10))
