"""Releases of the reference app that only the upgrade tests install."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
BROKEN_VERSION = "2.1.0"


def broken_release(directory: Path) -> Path:
    """Writes release 2.1.0 into `directory`: app/ (2.0.0) plus a migration that fails halfway; returns its source."""
    source = directory / "broken-release"
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(REPOSITORY / "app", source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    for name in ("pyproject.toml", "links/__init__.py"):
        path = source / name
        path.write_text(
            re.sub(r'(version\s*=\s*|__version__\s*=\s*)"2\.0\.0"', rf'\1"{BROKEN_VERSION}"', path.read_text())
        )
    migration = Path(__file__).with_name("broken_release") / "0003_broken_halfway.py"
    shutil.copy(migration, source / "links" / "migrations" / "versions" / migration.name)
    return source
