"""Sandbox hosts reached over SSH, as real servers are (connection type sandbox-ssh).

Each such sandbox has a key of its own on the control machine, authorized for root on its
blank containers (the first deploy logs in as root, as on a provider's new server), and a
known_hosts file holding each container's own host keys, read through docker: the SSH client
checks them strictly, so a replaced container is a new host key, as a rebuilt server is.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

from phoenix import sandbox_state
from phoenix.engine import install_debian_packages
from phoenix.errors import PhoenixError

# the image's host keys are the same in every container: each container makes its own once
HOST_KEYS_MARKER = "/etc/ssh/phoenix-sandbox-host-keys"


def key_file(sandbox: str) -> Path:
    """Returns the private key that logs into sandbox `sandbox`'s hosts."""
    return sandbox_state.ssh_directory(sandbox) / "id_ed25519"


def known_hosts_file(sandbox: str) -> Path:
    """Returns the known_hosts file holding sandbox `sandbox`'s host keys."""
    return key_file(sandbox).with_name("known_hosts")


def ensure_key(sandbox: str) -> str:
    """Makes the sandbox's key unless it exists; returns its public half."""
    private = key_file(sandbox)
    if not private.exists():
        if shutil.which("ssh-keygen") is None:  # the SSH client: ssh-keygen here, ssh for restore.py and status
            install_debian_packages("openssh-client")
        private.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        made = subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"phoenix-sandbox-{sandbox}", "-f", str(private)],
            capture_output=True,
            text=True,
        )
        if made.returncode != 0:
            raise PhoenixError(f"ssh-keygen could not make {private}: {made.stderr.strip()}")
    return private.with_suffix(".pub").read_text().strip()


def make_prepare_host_command(public_key: str) -> str:
    """Given the sandbox's public key, returns the line that gives a container host keys of its own (once),
    authorizes the key for root, and prints the host's public keys."""
    key = shlex.quote(public_key)
    authorized = "/root/.ssh/authorized_keys"
    return (
        f"set -e; if [ ! -e {HOST_KEYS_MARKER} ]; then rm -f /etc/ssh/ssh_host_*; ssh-keygen -A >/dev/null;"
        f" touch {HOST_KEYS_MARKER}; systemctl restart ssh; fi; install -d -m 0700 /root/.ssh;"
        f" grep -qxF {key} {authorized} 2>/dev/null || printf '%s\\n' {key} >> {authorized}; chmod 0600 {authorized};"
        " cat /etc/ssh/ssh_host_*_key.pub"
    )


def known_hosts_lines(address: str, port: int, host_keys: str) -> list[str]:
    """Given a host's address, SSH port and its `ssh_host_*_key.pub` lines, returns its known_hosts lines
    (for port 22, where a blank server listens, and for `port` when the inventory moves sshd)."""
    names = address if port == 22 else f"{address},[{address}]:{port}"
    return [f"{names} {' '.join(line.split()[:2])}" for line in host_keys.splitlines() if line.strip()]


def enable(sandbox: str, ports: dict[str, int]) -> None:
    """Makes sandbox `sandbox` one reached over SSH: gives it a key unless it has one, and records its hosts' SSH
    ports ({host: port}); from then on phoenix/sandbox.py's `up` prepares every host it brings up."""
    ensure_key(sandbox)
    _ports_file(sandbox).write_text(json.dumps(ports) + "\n")


def prepare(sandbox: str, hosts: list[str]) -> None:
    """Makes `hosts` of sandbox `sandbox` reachable over SSH with the sandbox's key, and records their host keys
    in its known_hosts file in place of any older ones (for the ports `enable` recorded, else 22)."""
    public_key = ensure_key(sandbox)
    ports = _recorded_ports(sandbox)
    state = sandbox_state.read(sandbox)["hosts"]
    path = known_hosts_file(sandbox)
    addresses = {state[name]["address"] for name in hosts}
    kept = [line for line in _read_lines(path) if line.split(" ", 1)[0].split(",")[0] not in addresses]
    for name in hosts:
        container = state[name]["container"]
        prepared = subprocess.run(
            ["docker", "exec", container, "bash", "-c", make_prepare_host_command(public_key)],
            capture_output=True,
            text=True,
        )
        if prepared.returncode != 0:
            raise PhoenixError(f"{container}: could not prepare SSH: {prepared.stderr.strip()}")
        kept += known_hosts_lines(state[name]["address"], ports.get(name, 22), prepared.stdout)
    path.write_text("".join(f"{line}\n" for line in kept))


def is_prepared(sandbox: str) -> bool:
    """True when sandbox `sandbox` was made reachable over SSH (its key exists)."""
    return key_file(sandbox).exists()


def _ports_file(sandbox: str) -> Path:
    return key_file(sandbox).with_name("ports.json")


def _recorded_ports(sandbox: str) -> dict[str, int]:
    path = _ports_file(sandbox)
    return json.loads(path.read_text()) if path.exists() else {}


def _read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []
