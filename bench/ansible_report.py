"""bench/ansible.py's figures: medians over the pairs and Phoenix's time as a fraction of each Ansible's."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

TOOLS = ["phoenix", "ansible", "ansible+mitogen"]


@dataclass(frozen=True)
class Run:
    """One tool on one fresh container: cold and no-op wall seconds, what the no-op reported changed (None: the
    tool does not say), and the lines where the host differs from the reference build."""

    tool: str
    pair: int
    cold: float
    noop: float
    noop_changed: int | None
    differences: tuple[str, ...] = ()


def order(pair: int) -> list[str]:
    """The tools in the order pair `pair` (from 1) runs them: Phoenix first in odd pairs, last in even ones."""
    return TOOLS if pair % 2 else TOOLS[::-1]


def medians(runs: list[Run], field: str) -> dict[str, float]:
    """{tool: the median of `field` ("cold" or "noop") over its runs}."""
    return {tool: median(getattr(run, field) for run in runs if run.tool == tool) for tool in TOOLS}


def ratio_line(label: str, figures: dict[str, float], goal: str) -> str:
    """One line: Phoenix's median and each Ansible's, with Phoenix/that Ansible after it."""
    phoenix = figures["phoenix"]
    others = "  ".join(f"{tool} {figures[tool]:6.1f} s (ratio {phoenix / figures[tool]:.2f})" for tool in TOOLS[1:])
    return f"{label} phoenix {phoenix:6.1f} s  {others}  goal: {goal}"


def run_line(run: Run) -> str:
    changed = "-" if run.noop_changed is None else str(run.noop_changed)
    same = "yes" if not run.differences else f"NO ({len(run.differences)} lines differ)"
    return f"pair {run.pair}  {run.tool:16} {run.cold:7.1f} {run.noop:8.1f}  {changed:>13}  {same}"


def report(runs: list[Run]) -> list[str]:
    """The lines bench/ansible.py prints about its runs."""
    lines = ["run     tool              cold s  no-op s  no-op changed  same build as the reference"]
    lines += [run_line(run) for run in runs]
    lines.append(ratio_line("median cold: ", medians(runs, "cold"), "ratio <= 0.5"))
    lines.append(ratio_line("median no-op:", medians(runs, "noop"), "ratio <= 0.3 against ansible+mitogen"))
    for run in runs:
        lines += [f"  {run.tool} pair {run.pair} differs: {line}" for line in run.differences]
    return lines
