"""The repository's own pyinfra command, run from the repository (where relative app sources resolve)."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def run_pyinfra(*arguments: str) -> subprocess.CompletedProcess:
    """Runs pyinfra with `arguments` (no input, 60 s at most); returns the finished process."""
    return subprocess.run(
        [str(REPOSITORY / ".venv" / "bin" / "pyinfra"), *arguments],
        check=False,
        cwd=REPOSITORY,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
