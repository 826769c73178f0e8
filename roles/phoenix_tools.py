"""The Phoenix programs that run on servers (phoenix-backup, phoenix-vault): stdlib-only Python."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra.api import deploy

from roles.operations import managed_directory, put_file

LIBRARY = "/usr/local/lib/phoenix"
REPOSITORY = Path(__file__).resolve().parents[1]
# The modules the server-side programs import; all standard library only (tests/unit/test_remote_imports.py
# checks that this list is exactly their import closure).
MODULES = [
    "phoenix/__init__.py",
    "phoenix/errors.py",
    "phoenix/retention.py",
    "phoenix/remote/__init__.py",
    "phoenix/remote/common.py",
    "phoenix/remote/runs.py",
    "phoenix/remote/backup_host.py",
    "phoenix/remote/backup.py",
    "phoenix/remote/backup_job.py",
    "phoenix/remote/vault_link.py",
    "phoenix/remote/vault.py",
    "phoenix/remote/restore.py",
    "phoenix/remote/restore_progress.py",
]
PROGRAMS = {"phoenix-backup": "phoenix.remote.backup_job", "phoenix-vault": "phoenix.remote.vault"}


def launcher(module: str) -> str:
    return f'#!/bin/sh\n# Managed by Phoenix (pyinfra).\nexport PYTHONPATH={LIBRARY}\nexec python3 -m {module} "$@"\n'


@deploy("Phoenix server tools")
def apply() -> None:
    for directory in sorted({str(Path(module).parent) for module in MODULES}):
        managed_directory(name=f"{LIBRARY}/{directory}", path=f"{LIBRARY}/{directory}", mode="0755")
    for module in MODULES:
        put_file(name=f"{LIBRARY}/{module}", src=str(REPOSITORY / module), dest=f"{LIBRARY}/{module}", mode="0644")
    for program, module in PROGRAMS.items():
        put_file(
            name=f"/usr/local/sbin/{program}",
            src=StringIO(launcher(module)),
            dest=f"/usr/local/sbin/{program}",
            mode="0755",
        )
