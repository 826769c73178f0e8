"""`phoenix pins inventories/<env>.py`, `phoenix pin inventories/<env>.py RUN --reason WHY` and
`phoenix unpin inventories/<env>.py RUN --reason WHY`.

A pin (backup.py --data pin="reason", the pre-upgrade backup, or `phoenix pin`) keeps a run
whatever the retention policy says. Pins are decided here, on the control machine, and recorded
by the vault in its own state: a pin= tag a server writes into its own snapshot pins nothing.
Only `unpin` releases one, on the vault, which logs who and why in its retention log; the run
then ages out like any other.
"""

from __future__ import annotations

import getpass
import socket
import subprocess
from datetime import datetime

from phoenix import archive_plan, backup_plan
from phoenix.commands import make_barman_keep_command, make_remote_shell_argv, make_vault_pin_arguments
from phoenix.errors import PhoenixError
from phoenix.inventory import load_environment
from phoenix.units import age, minute
from phoenix.vault_client import ask_vault, remote_command


def render(document: dict) -> str:
    """Returns the pins table: client, job, run, when, age, reason."""
    if not document["pins"]:
        return "no pinned backups"
    now = datetime.fromisoformat(document["now"])
    lines = [f"{'HOST':8} {'JOB':14} {'RUN':26} {'TAKEN':17} {'AGE':>8}  REASON"]
    for pin in document["pins"]:
        taken = minute(pin["time"])
        lines.append(
            f"{pin['client']:8} {pin['job']:14} {pin['run']:26} {taken:17} {age(pin['time'], now):>8}  {pin['pin']}"
        )
    return "\n".join(lines)


def list_pins(inventory: str) -> int:
    print(render(ask_vault(load_environment(inventory), "pins")))
    return 0


def who_am_i() -> str:
    """Returns user@host of the control machine, as the vault logs it for a pin or an unpin."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def pin(inventory: str, run: str, reason: str) -> int:
    if not reason.strip():
        raise PhoenixError("pin: --reason must say why the run must be kept; it is logged on the vault")
    environment = load_environment(inventory)
    pinned = ask_vault(environment, *make_vault_pin_arguments(run, reason, who_am_i()))
    print(f"pinned {pinned['client']} run {pinned['run']}: '{pinned['pin']}' (logged on the vault: by {pinned['by']})")
    if pinned["client"] in archive_plan.archived_hosts(environment.hosts):
        kept = keep_newest_base_backup(environment, pinned["client"])
        print(f"kept {pinned['client']}'s newest base backup {kept} in the vault's archive (barman keep)")
    return 0


def keep_newest_base_backup(environment, client: str) -> str:
    """Keeps the newest base backup of an archived host on the vault (`barman keep --target full`); returns its
    id; raises PhoenixError when Barman refuses."""
    vault = backup_plan.vault_host(environment.hosts)
    ssh = environment.over_ssh
    command = make_remote_shell_argv(remote_command(environment, vault), make_barman_keep_command(client), ssh)
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise PhoenixError(
            f"{vault}: barman keep of {client}'s newest base backup failed: {result.stderr.strip()[-300:]}"
        )
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "latest"


def unpin(inventory: str, run: str, reason: str) -> int:
    if not reason.strip():
        raise PhoenixError("unpin: --reason must say why the pin may go; it is logged on the vault")
    who = who_am_i()
    released = ask_vault(load_environment(inventory), "unpin", run, "--reason", reason, "--by", who)
    print(
        f"released pin '{released['released_pin']}' of {released['client']} run {released['run']}"
        f" (logged on the vault: by {who}, because: {reason})"
    )
    return 0
