"""Quantities as people read them: byte counts (and, below, durations and ages)."""

from __future__ import annotations


def human_bytes(count: float) -> str:
    """Returns a byte count as people read it: 512 B, 1.5 MiB, 12.0 GiB."""
    units = ["B", "KiB", "MiB", "GiB"]
    while count >= 1024 and len(units) > 1:
        count /= 1024
        units.pop(0)
    return f"{count:.0f} B" if units[0] == "B" else f"{count:.1f} {units[0]}"
