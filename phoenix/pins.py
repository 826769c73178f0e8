"""`phoenix pins inventories/<env>.py` and `phoenix unpin inventories/<env>.py ID --reason WHY`.

A pin (backup.py --data pin="reason", or the pre-upgrade backup) keeps a run whatever the
retention policy says. Only `unpin` releases one, on the vault, which logs who and why in its
retention log; the run then ages out like any other.
"""

from __future__ import annotations

import getpass
import socket
from datetime import datetime

from phoenix.drill import duration
from phoenix.errors import PhoenixError
from phoenix.inventory import load_environment
from phoenix.status import ask_vault


def render(document: dict) -> str:
    """Returns the pins table: client, job, run, when, age, reason."""
    if not document["pins"]:
        return "no pinned backups"
    now = datetime.fromisoformat(document["now"])
    lines = [f"{'HOST':8} {'JOB':14} {'RUN':26} {'TAKEN':17} {'AGE':>8}  REASON"]
    for pin in document["pins"]:
        age = (now - datetime.fromisoformat(pin["time"])).total_seconds()
        taken = pin["time"][:16].replace("T", " ")
        lines.append(f"{pin['client']:8} {pin['job']:14} {pin['run']:26} {taken:17} {duration(age):>8}  {pin['pin']}")
    return "\n".join(lines)


def list_pins(inventory: str) -> int:
    print(render(ask_vault(load_environment(inventory), "pins")))
    return 0


def unpin(inventory: str, run: str, reason: str) -> int:
    if not reason.strip():
        raise PhoenixError("unpin: --reason must say why the pin may go; it is logged on the vault")
    who = f"{getpass.getuser()}@{socket.gethostname()}"
    released = ask_vault(load_environment(inventory), "unpin", run, "--reason", reason, "--by", who)
    print(
        f"released pin '{released['released_pin']}' of {released['client']} run {released['run']}"
        f" (logged on the vault: by {who}, because: {reason})"
    )
    return 0
