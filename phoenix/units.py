"""Quantities as people read them, in one format for every report: durations and ages ("0.6s", "45s",
"12m", "3.4h", "2.1d"), moments to the minute ("2026-11-30 10:59"), step timings and byte counts
("512 B", "1.5 MiB")."""

from __future__ import annotations

from datetime import datetime


def duration(seconds: float | None) -> str:
    """Given a duration or an age in seconds, returns it as every Phoenix report prints one: tenths of a
    second under 10 seconds ("0.6s", a short step still shows), whole seconds under 2 minutes ("45s"),
    whole minutes under 2 hours ("95m"), hours under 2 days ("3.4h"), else days ("2.1d"); "-" for None
    (not measured)."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 120 * 60:
        return f"{seconds / 60:.0f}m"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def age(time: str, now: datetime) -> str:
    """Given an ISO 8601 time and the clock to measure it by, returns how long ago it was, as duration() says it."""
    return duration((now - datetime.fromisoformat(time)).total_seconds())


def minute(time: str) -> str:
    """Given an ISO 8601 time, returns it to the minute as every Phoenix report prints a moment: "2026-11-30 10:59"."""
    return time[:16].replace("T", " ")


def step_durations(steps: dict[str, float]) -> str:
    """Given {step: seconds} in the order the steps ran, returns them on one line: "provision 40s, restore data 7s"."""
    return ", ".join(f"{step} {duration(seconds)}" for step, seconds in steps.items())


def human_bytes(count: float) -> str:
    """Returns a byte count as people read it: 512 B, 1.5 MiB, 12.0 GiB."""
    units = ["B", "KiB", "MiB", "GiB"]
    while count >= 1024 and len(units) > 1:
        count /= 1024
        units.pop(0)
    return f"{count:.0f} B" if units[0] == "B" else f"{count:.1f} {units[0]}"
