"""One timed `pyinfra -y INVENTORY deploy.py` against a sandbox, shared by bench/converge.py and bench/scale.py."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
# each fact look-up and operation command enters the container once (phoenix/sandbox_connector.py: nsenter),
# which pyinfra prints with -vvv
COMMAND_LINE = re.compile(r">>> sh -c '?nsenter ")


@dataclass(frozen=True)
class Converge:
    """What one converge took: wall seconds, the control machine's CPU seconds (pyinfra and what it ran, user +
    system: since Phoenix enters the containers with nsenter, that includes the commands it ran in them), and,
    when run verbose, the remote commands and uploads it made."""

    seconds: float
    cpu_seconds: float
    commands: int = 0
    uploads: int = 0


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_converge(inventory: str | Path, sandbox_name: str, count_commands: bool = False) -> Converge:
    """Converges `inventory` in sandbox `sandbox_name`; returns what it took (with `count_commands`, pyinfra
    runs with -vvv and the remote commands are counted). Exits with pyinfra's last lines when it fails."""
    verbose = ["-vvv"] if count_commands else []
    cpu_before, started = children_cpu_seconds(), time.monotonic()
    process = subprocess.run(
        [str(REPOSITORY / ".venv" / "bin" / "pyinfra"), "-y", *verbose, str(inventory), "deploy.py"],
        cwd=REPOSITORY,
        env=dict(os.environ, PHOENIX_SANDBOX=sandbox_name),
        capture_output=True,
        text=True,
    )
    seconds, cpu = time.monotonic() - started, children_cpu_seconds() - cpu_before
    if process.returncode != 0:
        sys.exit(f"converge of {inventory} failed:\n{process.stderr[-3000:]}")
    output = process.stdout + process.stderr
    if not count_commands:
        return Converge(seconds, cpu)
    return Converge(seconds, cpu, len(COMMAND_LINE.findall(output)), output.count("docker cp "))
