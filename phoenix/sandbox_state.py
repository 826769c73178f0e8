"""Where a sandbox's state lives on the control machine, and the names its containers get."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from phoenix.errors import PhoenixError

SANDBOX_LABEL = "io.phoenix.sandbox"
HOST_LABEL = "io.phoenix.host"
# the inventory's connection types whose hosts are a sandbox's containers (nsenter into them, or SSH to them)
SANDBOX_CONNECTIONS = ("docker", "sandbox-ssh")


def state_root() -> Path:
    """Returns the directory holding Phoenix's local state (PHOENIX_STATE_DIR or ./.phoenix)."""
    return Path(os.environ.get("PHOENIX_STATE_DIR") or Path.cwd() / ".phoenix")


def container_name(sandbox: str, host: str) -> str:
    """Returns the Docker container name of a sandbox host, e.g. phx-sandbox-web1."""
    return f"phx-{sandbox}-{host}"


def pyinfra_host_name(container: str) -> str:
    """Returns the name pyinfra reaches a sandbox container by, through Phoenix's connector
    (phoenix/sandbox_connector.py, registered as pyinfra's `sandbox` connector)."""
    return f"@sandbox/{container}"


def network_name(sandbox: str) -> str:
    """Returns the name of the Docker network a sandbox's hosts share."""
    return f"phx-{sandbox}"


def state_file(sandbox: str) -> Path:
    return state_root() / "sandboxes" / f"{sandbox}.json"


def read(sandbox: str) -> dict:
    """Returns the recorded state of a sandbox; raises PhoenixError when it is not up."""
    path = state_file(sandbox)
    if not path.exists():
        raise PhoenixError(f"sandbox '{sandbox}' is not up (no {path}): run `phoenix sandbox up {sandbox}`")
    return json.loads(path.read_text())


def inventory_file(sandbox: str) -> Path:
    return state_root() / "sandboxes" / f"{sandbox}_inventory.py"


def write(sandbox: str, state: dict) -> Path:
    """Records a sandbox's state, and a plain pyinfra inventory of its hosts; returns the latter.

    The inventory serves ad-hoc commands: `pyinfra .phoenix/sandboxes/NAME_inventory.py exec -- uptime`.
    """
    path = state_file(sandbox)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=2) + "\n")
    hosts = [pyinfra_host_name(info["container"]) for info in state["hosts"].values()]
    inventory = inventory_file(sandbox)
    inventory.write_text(f'"""Hosts of sandbox {sandbox}, written by `phoenix sandbox up`."""\n\nhosts = {hosts!r}\n')
    return inventory


def ssh_directory(sandbox: str) -> Path:
    """Returns the directory of a sandbox's SSH key and known_hosts (connection type sandbox-ssh)."""
    return state_root() / "sandboxes" / f"{sandbox}-ssh"


def remove(sandbox: str) -> None:
    """Forgets a sandbox's state."""
    state_file(sandbox).unlink(missing_ok=True)
    inventory_file(sandbox).unlink(missing_ok=True)
    shutil.rmtree(ssh_directory(sandbox), ignore_errors=True)
