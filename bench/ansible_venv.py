"""The control machine's Ansible for bench/ansible.py: a venv of its own (.venv-ansible), made on first use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# ansible 9 is ansible-core 2.16 with the community collections, community.docker (its docker connection)
# among them; mitogen 0.3.x has no upper bound on ansible-core and is tested against 2.16.
PINS = ["ansible==9.13.0", "ansible-core==2.16.19", "mitogen==0.3.54"]


def ansible_venv(repository: Path) -> Path:
    """Returns the bin directory of repository/.venv-ansible, made with PINS when it lacks them."""
    venv = repository / ".venv-ansible"
    if not _has_pins(venv):
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", *PINS], check=True)
    return venv / "bin"


def _has_pins(venv: Path) -> bool:
    if not (venv / "bin" / "pip").exists():
        return False
    frozen = subprocess.run([str(venv / "bin" / "pip"), "freeze"], capture_output=True, text=True).stdout
    return set(PINS) <= set(frozen.lower().split())


def mitogen_strategy_plugins(bin_directory: Path) -> Path:
    """The directory holding mitogen's strategy plugins (mitogen_linear) inside the venv."""
    found = sorted(bin_directory.parent.glob("lib/python*/site-packages/ansible_mitogen/plugins/strategy"))
    if not found:
        sys.exit(f"mitogen's strategy plugins are missing from {bin_directory.parent}")
    return found[0]
