"""backup.py's work on one data host: run its jobs now, then have the vault pin what was asked.

The pin is decided here, on the control machine, and recorded by the vault (`phoenix-vault
pin`): the server's own `--pin` only tags its snapshots, which pins nothing. A job the vault
refused to store (its disk is full) is reported with the vault's free space, which only the
vault knows.
"""

from __future__ import annotations

from collections.abc import Callable

from phoenix.commands import split_run_records
from phoenix.errors import PhoenixError
from phoenix.inventory import Environment
from phoenix.remote.vault_link import DISK_FULL
from phoenix.units import human_bytes
from phoenix.vault_client import pin_run, vault_space

# given a shell command, runs it as root on the host; returns (succeeded, stdout, stderr)
Shell = Callable[[str], tuple[bool, str, str]]


def back_up_now(shell: Shell, command: str, environment: Environment, client: str, pin: str, by: str) -> list[str]:
    """Runs `command` (phoenix-backup run all ... --records) on the host `client`, then pins each run it made
    on the vault when `pin` is set; returns the lines to print. Raises PhoenixError naming every
    failed job (with the vault's free space when it refused the data). The runs' own records are read from
    the command's output: the host's status file may already be the next run's (the files watch's)."""
    succeeded, stdout, stderr = shell(command)
    lines, records = split_run_records(stdout)  # each job's report, then its final record
    for job, entry in sorted(records.items()):
        if pin and entry.get("result") == "ok" and entry.get("pin") == pin:
            pinned = pin_run(environment, client, entry["run"], pin, by)
            lines.append(f"{client}/{job}: run {pinned['run']} pinned on the vault: {pinned['pin']}")
    if succeeded:
        return lines
    failures = [f"{client}/{job}: {entry['error']}" for job, entry in sorted(records.items()) if entry.get("error")]
    if not failures:
        failures = [f"{client}: {(stderr.strip() or stdout.strip())[-800:]}"]
    if any(DISK_FULL in failure for failure in failures):
        failures.append(vault_space_line(environment, client))
    raise PhoenixError("\n".join(lines + failures))


def vault_space_line(environment: Environment, client: str) -> str:
    """Returns the free space where the vault keeps `client`'s repository, in words, or why it is not known."""
    try:
        space = vault_space(environment, client)
    except PhoenixError as error:
        return f"{DISK_FULL}? the vault's free space is unknown: {error}"
    return (
        f"{DISK_FULL}: {human_bytes(space['free_bytes'])} free of {human_bytes(space['total_bytes'])}"
        f" on the vault's {space['path']}"
    )
