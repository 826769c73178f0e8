"""Cold and no-op converge of one fresh sandbox host: seconds and remote commands.

    .venv/bin/python bench/converge.py [--inventory inventories/dev.py] [--keep]

Starts a sandbox of its own (one host with nginx, app and PostgreSQL, from dev.yml), converges
it twice with `pyinfra -y -vvv`, and counts the commands pyinfra ran on the host (fact
look-ups and operation commands, each one `docker exec`) and the files it uploaded.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from phoenix import sandbox  # noqa: E402
from phoenix.inventory import load_environment  # noqa: E402

COMMAND_LINE = re.compile(r">>> sh -c '?docker exec")


def timed_converge(inventory: str, sandbox_name: str) -> tuple[float, int, int]:
    """Runs one converge; returns (seconds, remote commands, uploads)."""
    started = time.monotonic()
    process = subprocess.run(
        [str(REPOSITORY / ".venv" / "bin" / "pyinfra"), "-y", "-vvv", inventory, "deploy.py"],
        cwd=REPOSITORY,
        env=dict(os.environ, PHOENIX_SANDBOX=sandbox_name),
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    if process.returncode != 0:
        sys.exit(f"converge failed:\n{process.stderr[-3000:]}")
    output = process.stdout + process.stderr
    commands = len(COMMAND_LINE.findall(output))
    uploads = output.count("docker cp ")
    return seconds, commands, uploads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", default="inventories/dev.py")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running")
    arguments = parser.parse_args()
    sandbox_name = f"bench-{os.getpid()}"
    hosts = list(load_environment(REPOSITORY / arguments.inventory).hosts)
    os.chdir(REPOSITORY)
    started = time.monotonic()
    sandbox.up(sandbox_name, hosts)
    boot = time.monotonic() - started
    try:
        cold = timed_converge(arguments.inventory, sandbox_name)
        noop = timed_converge(arguments.inventory, sandbox_name)
    finally:
        if not arguments.keep:
            sandbox.down(sandbox_name)
    print(f"hosts: {', '.join(hosts)} ({arguments.inventory})")
    print(f"sandbox up (containers + systemd boot): {boot:6.1f} s")
    print(f"cold converge:   {cold[0]:6.1f} s  {cold[1]:4d} remote commands  {cold[2]:3d} uploads")
    print(f"no-op converge:  {noop[0]:6.1f} s  {noop[1]:4d} remote commands  {noop[2]:3d} uploads")
    print(f"no-op / cold: {noop[0] / cold[0]:.2f} of the time, {noop[1] / max(cold[1], 1):.2f} of the commands")


if __name__ == "__main__":
    main()
