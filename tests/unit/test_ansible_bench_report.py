"""bench/ansible_report.py: the pairs' order, the medians and the ratio lines."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.ansible_report import Run, medians, order, ratio_line, report  # noqa: E402


def _runs() -> list[Run]:
    figures = {"phoenix": [(40, 1), (50, 2), (45, 9)], "ansible": [(80, 10), (100, 12), (90, 11)],
               "ansible+mitogen": [(60, 4), (70, 5), (65, 6)]}  # fmt: skip
    return [
        Run(tool, pair, cold, noop, None if tool == "phoenix" else 0)
        for tool, pairs in figures.items()
        for pair, (cold, noop) in enumerate(pairs, 1)
    ]


def test_phoenix_goes_first_in_odd_pairs_and_last_in_even_ones():
    assert order(1) == ["phoenix", "ansible", "ansible+mitogen"]
    assert order(2) == ["ansible+mitogen", "ansible", "phoenix"]


def test_medians_are_per_tool():
    assert medians(_runs(), "cold") == {"phoenix": 45, "ansible": 90, "ansible+mitogen": 65}
    assert medians(_runs(), "noop") == {"phoenix": 2, "ansible": 11, "ansible+mitogen": 5}


def test_ratio_line_is_phoenix_over_each_ansible():
    line = ratio_line("median cold:", {"phoenix": 45, "ansible": 90, "ansible+mitogen": 60}, "ratio <= 0.5")
    assert "phoenix   45.0 s" in line
    assert "ansible   90.0 s (ratio 0.50)" in line
    assert "ansible+mitogen   60.0 s (ratio 0.75)" in line


def test_report_names_a_build_that_differs():
    runs = [*_runs(), Run("ansible", 4, 85, 11, 0, ("nginx disabled inactive",))]
    lines = report(runs)
    assert any("NO (1 lines differ)" in line for line in lines)
    assert "  ansible pair 4 differs: nginx disabled inactive" in lines
