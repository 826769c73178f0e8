"""Building the app's wheel on the control machine, once per distinct source tree.

Servers cannot reach the Python package index, so code travels as a wheel built here and is
installed there with `pip install --no-index`. Builds are reproducible (SOURCE_DATE_EPOCH)
and cached by a hash of the source, so an unchanged app uploads nothing on the next deploy.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from phoenix.errors import PhoenixError
from phoenix.progress import say
from phoenix.sandbox_state import state_root

IGNORED_PARTS = {"__pycache__", "build", "dist", ".git", ".pytest_cache"}
REPRODUCIBLE_EPOCH = "315532800"  # 1980-01-01, the earliest date a zip file can hold


def source_hash(source: Path) -> str:
    """Given a source directory, returns a SHA-256 over its files' relative paths and contents."""
    digest = hashlib.sha256()
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        skipped = IGNORED_PARTS & set(relative.parts) or any(part.endswith(".egg-info") for part in relative.parts)
        if path.is_dir() or skipped:
            continue
        digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """Returns the SHA-256 hex digest of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wheel_version(wheel: str) -> str:
    """Given a wheel's file name or path (…/dist-version-tags.whl), returns its version."""
    return Path(wheel).name.split("-")[1]


def wheel_for(source: str) -> Path:
    """Given a .whl path or a source directory with pyproject.toml, returns a wheel file.

    Raises PhoenixError when the source is missing or the build fails.
    """
    path = Path(source)
    if path.suffix == ".whl":
        if not path.is_file():
            raise PhoenixError(f"app.source: wheel {path} not found")
        return path
    if not (path / "pyproject.toml").is_file() and not (path / "setup.py").is_file():
        raise PhoenixError(f"app.source: {path} is neither a .whl nor a directory with pyproject.toml")
    output = state_root() / "wheels" / source_hash(path)
    output.mkdir(parents=True, exist_ok=True)
    with open(output / ".lock", "w") as lock:
        lock_cooperatively(lock)
        return _built_wheel(path, output)


def lock_cooperatively(lock_file) -> None:
    """Takes an exclusive lock on `lock_file`, polling.

    pyinfra prepares hosts as gevent greenlets in one process: a blocking flock() would stall the
    whole process while the greenlet holding the lock waits for its build. time.sleep yields.
    """
    while True:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            time.sleep(0.1)


def _built_wheel(path: Path, output: Path) -> Path:
    built = sorted(output.glob("*.whl"))
    if built:
        return built[0]
    say(f"building a wheel of {path}")
    # Build from a clean copy: a stale build/ in the source could leak deleted files into the wheel.
    with tempfile.TemporaryDirectory(prefix="phoenix-wheel-") as scratch:
        clean_source = Path(scratch) / path.name
        shutil.copytree(path, clean_source, ignore=shutil.ignore_patterns(*IGNORED_PARTS, "*.egg-info"))
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(output), str(clean_source)],
            env=dict(os.environ, SOURCE_DATE_EPOCH=REPRODUCIBLE_EPOCH),
            capture_output=True,
            text=True,
        )
    built = sorted(output.glob("*.whl"))
    if result.returncode != 0 or not built:
        raise PhoenixError(f"app.source: building a wheel of {path} failed:\n{result.stderr.strip()[-2000:]}")
    return built[0]
