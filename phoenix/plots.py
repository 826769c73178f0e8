"""The dashboard's plots, drawn by matplotlib as inline SVG: no script, no network, prints anywhere.

Every plotted series carries an SVG id ("rto-total", "rpo", "size-web1-files", ...) and one marker
per point, so a reader (or a test, in a browser) can count the points of a series.
"""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta

from matplotlib import rc_context
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

# deterministic ids (svg.hashsalt), text as text (svg.fonttype none: smaller, selectable, searchable)
STYLE = {"svg.hashsalt": "phoenix", "svg.fonttype": "none", "font.size": 9, "axes.grid": True, "grid.alpha": 0.3}
FAILED_COLOR = "#c62828"


def series_id(*parts: str) -> str:
    """Returns an SVG id for a series: the parts joined by '-', anything but letters, digits, - and _ as '-'."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", "-".join(parts))


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    with rc_context(STYLE):
        figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _time_axis(axes, times: list[datetime]) -> None:
    if times and min(times) == max(times):  # one moment: a day either side, not matplotlib's decade
        axes.set_xlim(min(times) - timedelta(days=1), max(times) + timedelta(days=1))
    locator = AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _new_figure(rows: int) -> tuple[Figure, list]:
    with rc_context(STYLE):
        figure = Figure(figsize=(9, 2.8 * rows), layout="constrained")
        return figure, figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]


def drill_history_svg(drills: list[dict]) -> str:
    """Given drills oldest first (history entries), returns an SVG of the RTO per step and in total, and
    the RPO, over time; a failed drill's total is drawn in red. One marker per drill in "rto-total" and
    "rpo" (a drill that measured no RPO has none there)."""
    times = [datetime.fromisoformat(drill["started"]) for drill in drills]
    steps: list[str] = []
    for drill in drills:
        steps += [step for step in drill["steps"] if step not in steps]
    figure, (rto, rpo) = _new_figure(2)
    with rc_context(STYLE):
        for step in steps:
            values = [drill["steps"].get(step, float("nan")) for drill in drills]
            (line,) = rto.plot(times, values, marker=".", linewidth=1, label=step)
            line.set_gid(series_id("rto", step))
        (total,) = rto.plot(times, [drill["rto_seconds"] for drill in drills], marker="o", color="black", label="RTO")
        total.set_gid("rto-total")
        failed = [(time, d["rto_seconds"]) for time, d in zip(times, drills, strict=True) if not d["passed"]]
        if failed:
            (marks,) = rto.plot(*zip(*failed, strict=True), "X", color=FAILED_COLOR, markersize=10, label="failed")
            marks.set_gid("rto-failed")
        rto.set_ylabel("seconds")
        rto.set_title("RTO: time to recover, per step")
        rto.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
        hours = [float("nan") if drill["rpo_seconds"] is None else drill["rpo_seconds"] / 3600 for drill in drills]
        (line,) = rpo.plot(times, hours, marker="o", color="#1565c0")
        line.set_gid("rpo")
        rpo.set_ylabel("hours")
        rpo.set_title("RPO: age of the restored data")
        _time_axis(rpo, times)
    return _svg(figure)


def backups_svg(backups: list[dict]) -> str:
    """Given backup runs oldest first ({client, job, time, bytes, seconds}), returns an SVG of each job's
    size (MiB) and store time (seconds) over time, one series per host and job ("size-web1-files",
    "seconds-web1-files"), one marker per run."""
    jobs: dict[tuple[str, str], list[dict]] = {}
    for backup in backups:
        jobs.setdefault((backup["client"], backup["job"]), []).append(backup)
    figure, (size, seconds) = _new_figure(2)
    with rc_context(STYLE):
        for (client, job), runs in sorted(jobs.items()):
            times = [datetime.fromisoformat(run["time"]) for run in runs]
            mebibytes = [float("nan") if run["bytes"] is None else run["bytes"] / 2**20 for run in runs]
            (line,) = size.plot(times, mebibytes, marker="o", label=f"{client}/{job}")
            line.set_gid(series_id("size", client, job))
            (line,) = seconds.plot(times, [run["seconds"] for run in runs], marker="o", label=f"{client}/{job}")
            line.set_gid(series_id("seconds", client, job))
        size.set_ylabel("MiB")
        size.set_title("Backup size (the manifest's bytes)")
        size.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
        seconds.set_ylabel("seconds")
        seconds.set_title("Time to store the data")
        _time_axis(seconds, [datetime.fromisoformat(backup["time"]) for backup in backups])
    return _svg(figure)
