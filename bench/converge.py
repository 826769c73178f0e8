"""Cold and no-op converge of one fresh sandbox host: seconds and remote commands.

    .venv/bin/python bench/converge.py [--inventory inventories/dev.py] [--keep]

Starts a sandbox of its own (one host with nginx, app and PostgreSQL, from dev.yml), converges
it twice with `pyinfra -y -vvv`, and counts the commands pyinfra ran on the host (fact
look-ups and operation commands, each one nsenter into the container) and the files it uploaded.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from bench.converge_timing import timed_converge  # noqa: E402
from bench.machine import machine_line  # noqa: E402
from phoenix import sandbox  # noqa: E402
from phoenix.inventory import load_environment  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--inventory", default="inventories/dev.py")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running")
    arguments = parser.parse_args()
    sandbox_name = f"bench-{os.getpid()}"
    hosts = list(load_environment(REPOSITORY / arguments.inventory).hosts)
    os.chdir(REPOSITORY)
    start_line = machine_line("at the start")
    started = time.monotonic()
    sandbox.up(sandbox_name, hosts)
    boot = time.monotonic() - started
    try:
        cold = timed_converge(arguments.inventory, sandbox_name, count_commands=True)
        noop = timed_converge(arguments.inventory, sandbox_name, count_commands=True)
    finally:
        if not arguments.keep:
            sandbox.down(sandbox_name)
    print(start_line)
    print(f"hosts: {', '.join(hosts)} ({arguments.inventory})")
    print(f"sandbox up (containers + systemd boot): {boot:6.1f} s")
    for name, run in (("cold converge:  ", cold), ("no-op converge: ", noop)):
        print(f"{name} {run.seconds:6.1f} s  {run.commands:4d} remote commands  {run.uploads:3d} uploads")
    print(
        f"no-op / cold: {noop.seconds / cold.seconds:.2f} of the time,"
        f" {noop.commands / max(cold.commands, 1):.2f} of the commands"
    )


if __name__ == "__main__":
    main()
