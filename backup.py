"""Back up every data host now: `pyinfra inventories/prod.py backup.py`.

    --data pin="before the 2.0 upgrade"   has the vault pin the runs it makes (retention never removes them)
    --data backup_trigger=pre-upgrade     records why it ran (default: manual)

Runs each host's jobs with phoenix-backup, the program the nightly timers run. One backup runs
at a time per host: this waits for a scheduled run in progress instead of racing it, and both
runs keep their own snapshots. The pin is recorded by the vault, asked from here
(phoenix/backup_now.py): a server cannot pin its own backups. Each job's report is printed.
"""

import sys

from pyinfra import host
from pyinfra.operations import python

from phoenix import backup_now, pins
from phoenix.errors import PhoenixError
from phoenix.inventory import environment_of
from roles.backup import now_command


def run_backup(state, host, command: str, pin: str, inventory: str) -> bool:
    """The backup, as a pyinfra callback: False (the host failed, the reason printed) unless every job succeeded."""

    def shell(line: str) -> tuple[bool, str, str]:
        ok, output = host.run_shell_command(line, _sudo=bool(host.data.get("_sudo")), _timeout=7200, _get_pty=False)
        return ok, output.stdout, "\n".join(output.stderr_lines)

    environment = environment_of(inventory)
    name = host.data.phoenix_host
    try:
        lines = backup_now.back_up_now(shell, command, environment, name, pin, f"{pins.who_am_i()} (backup.py)")
    except PhoenixError as error:
        print(f"phoenix: backup.py on {name} failed:\n{error}", file=sys.stderr, flush=True)
        return False
    for line in lines:
        print(line, flush=True)
    return True


if host.data.backup_jobs:
    PIN = (host.data.run_flags["pin"] or "").strip()
    COMMAND = now_command(host.data.run_flags["backup_trigger"], PIN)
    python.call(
        name="Back up now: " + ", ".join(job["name"] for job in host.data.backup_jobs),
        function=run_backup,
        command=COMMAND,
        pin=PIN,
        inventory=host.data.phoenix_inventory,
    )
