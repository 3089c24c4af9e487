"""The path and query values of the admin API (worker/api/params.py): digits, true or false."""

from __future__ import annotations

import pytest

from worker.api.params import digits, true_or_false


@pytest.mark.parametrize("text", ["0", "12", "9223372036854775807", "007"])
def test_digits_are_read_as_the_number(text: str) -> None:
    assert digits(text) == int(text)


@pytest.mark.parametrize(
    "text", ["", " 3", "3 ", "+3", "-3", "3.0", "1e3", "\u00b2", "\u0663", "\uff13"]
)
def test_anything_but_ascii_digits_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="digits"):
        digits(text)


@pytest.mark.parametrize(("text", "value"), [("true", True), ("FALSE", False), ("True", True)])
def test_true_or_false_in_any_case(text: str, value: bool) -> None:
    assert true_or_false(text) is value


@pytest.mark.parametrize("text", ["yes", "no", "on", "off", "1", "0", "t", "f", "", " true"])
def test_other_words_are_not_booleans(text: str) -> None:
    with pytest.raises(ValueError, match="true or false"):
        true_or_false(text)
