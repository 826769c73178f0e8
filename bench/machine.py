"""The line every bench prints with its figures: the machine's core count and load, which bound what they mean."""

from __future__ import annotations

import os


def machine_line(moment: str) -> str:
    """Returns e.g. 'machine: 2 cores, load average 0.95 (1 min) at the start'."""
    return f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (1 min) {moment}"
