"""The Phoenix programs that run on servers (phoenix-backup, phoenix-vault): stdlib-only Python."""

from __future__ import annotations

from pathlib import Path

from pyinfra.api import deploy

from roles.operations import managed_directory, put_files

LIBRARY = "/usr/local/lib/phoenix"
REPOSITORY = Path(__file__).resolve().parents[1]
# The modules the server-side programs import; all standard library only (tests/unit/test_remote_imports.py
# checks that this list is exactly their import closure).
MODULES = [
    "phoenix/__init__.py",
    "phoenix/arguments.py",
    "phoenix/errors.py",
    "phoenix/retention.py",
    "phoenix/remote/__init__.py",
    "phoenix/remote/common.py",
    "phoenix/remote/runs.py",
    "phoenix/remote/backup_host.py",
    "phoenix/remote/file_changes.py",
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


def files() -> dict[str, tuple[str, str]]:
    """{path on the server: (its text, its mode)} for the modules and the programs' launchers."""
    modules = {f"{LIBRARY}/{module}": ((REPOSITORY / module).read_text(), "0644") for module in MODULES}
    programs = {f"/usr/local/sbin/{program}": (launcher(module), "0755") for program, module in PROGRAMS.items()}
    return modules | programs


@deploy("Phoenix server tools")
def apply() -> None:
    for directory in sorted({str(Path(module).parent) for module in MODULES}):
        managed_directory(name=f"{LIBRARY}/{directory}", path=f"{LIBRARY}/{directory}", mode="0755")
    wanted = files()
    put_files(
        name=f"{LIBRARY} and the programs {', '.join(PROGRAMS)}",
        texts={path: text for path, (text, _) in wanted.items()},
        modes={path: mode for path, (_, mode) in wanted.items()},
    )
