"""Ids and numbers typed by people are ASCII digits: `str.isdigit` alone also passes "²", which
`int` refuses, and each of these once raised a bare ValueError (a traceback) instead of saying
what is wrong."""

from __future__ import annotations

import pytest

from worker.api.models import _id
from worker.cli.base import CommandError
from worker.cli.inputs import queue_type

ODD = ["²", "\uff11\uff12", "٣"]  # superscript two, fullwidth 12, Arabic-Indic three


@pytest.mark.parametrize("odd", ODD)
def test_a_queue_type_of_odd_digits_is_an_unknown_type(odd: str) -> None:
    with pytest.raises(CommandError, match="unknown queue type"):
        queue_type(odd)


@pytest.mark.parametrize("odd", ODD)
def test_a_lookup_id_of_odd_digits_is_refused_in_words(odd: str) -> None:
    with pytest.raises(ValueError, match="an id is a whole number"):
        _id(odd)


def test_ascii_ids_still_read() -> None:
    assert queue_type("1") == 1 and _id(" 12 ") == 12 and _id(7) == 7
