"""Packages taken out of app.system_packages are removed, unless another installed package needs them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from roles.app import remove_unneeded_packages_command

# Stand-ins for dpkg-query, apt-mark and apt-get: libfoo and libbar are installed, libbar is still
# needed by another package (a simulated autoremove lists only libfoo), libgone is not installed.
FAKE_TOOLS = {
    "dpkg-query": 'case "$3" in libfoo|libbar) printf "install ok installed";; *) exit 1;; esac',
    "apt-mark": 'echo "apt-mark $*" >> "$CALLS"',
    "apt-get": 'if [ "$1" = -s ]; then echo "Remv libfoo [1.0]"; else echo "apt-get $*" >> "$CALLS"; fi',
}


def test_only_installed_packages_nothing_else_needs_are_purged(tmp_path):
    tools = tmp_path / "bin"
    tools.mkdir()
    for name, body in FAKE_TOOLS.items():
        (tools / name).write_text(f"#!/bin/sh\n{body}\n")
        (tools / name).chmod(0o755)
    calls = tmp_path / "calls"
    command = remove_unneeded_packages_command(["libfoo", "libbar", "libgone"])
    environment = dict(os.environ, PATH=f"{tools}:{os.environ['PATH']}", CALLS=str(calls))
    subprocess.run(["sh", "-c", command], check=True, env=environment)
    assert Path(calls).read_text().splitlines() == [
        "apt-mark auto libfoo",
        "apt-get -y -q purge libfoo",
        "apt-mark auto libbar",
    ]
