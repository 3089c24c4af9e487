"""bench/receivers.py: the repeated phases' figures are medians, each run's ratio shown."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bench.receivers import _medians


def test_the_figures_are_the_medians_and_each_runs_ratio_is_kept_in_order() -> None:
    runs: list[dict[str, Any]] = [
        {"rx_hookless_ratio": 0.71, "rx_dead_ratio": 0.80, "rx_alone_per_s": 5400, "x": "n/a"},
        {"rx_hookless_ratio": 0.78, "rx_dead_ratio": 0.74, "rx_alone_per_s": 5600, "x": "n/a"},
        {"rx_hookless_ratio": 0.74, "rx_dead_ratio": 0.77, "rx_alone_per_s": 5500, "x": "n/a"},
    ]
    bench = SimpleNamespace(runs=runs, figures={})
    _medians(bench)  # type: ignore[arg-type]
    assert bench.figures["rx_hookless_ratio"] == 0.74
    assert bench.figures["rx_dead_ratio"] == 0.77
    assert bench.figures["rx_alone_per_s"] == 5500
    assert bench.figures["rx_hookless_ratio_runs"] == "0.71 0.78 0.74"
    assert "x" not in bench.figures  # not a number: no median of it
    assert bench.runs == []  # the next repeated phase starts afresh


def test_an_even_count_takes_the_lower_middle_and_one_run_shows_no_runs_row() -> None:
    bench = SimpleNamespace(runs=[{"rx_dead_ratio": 0.9}, {"rx_dead_ratio": 0.7}], figures={})
    _medians(bench)  # type: ignore[arg-type]
    assert bench.figures["rx_dead_ratio"] == 0.7
    bench = SimpleNamespace(runs=[{"rx_dead_ratio": 0.9}], figures={})
    _medians(bench)  # type: ignore[arg-type]
    assert bench.figures == {"rx_dead_ratio": 0.9}


def test_a_figure_missing_from_the_first_run_is_still_the_median_of_the_others() -> None:
    """A dead phase cut short reports no CPU figure: the runs that have one still count."""
    runs = [{"rx_dead_ratio": 0.5}, {"rx_dead_ratio": 0.7, "rx_dead_cpu_us": 120}]
    bench = SimpleNamespace(runs=runs, figures={})
    _medians(bench)  # type: ignore[arg-type]
    assert bench.figures["rx_dead_cpu_us"] == 120
