"""How a converge scales with the number of hosts: wall time and the control machine's CPU per host.

    .venv/bin/python bench/scale.py [--hosts 1,4,10] [--keep]

For each count N, starts a sandbox of its own with N fresh hosts (host1 .. hostN) that get what
every host gets, the base system and the firewall (roles: []; nginx is left out because the
schema lets nginx only proxy to an app on the same host, which would make this a bench of app
installs), converges it cold, then again with nothing to change (no-op), and removes it.
The control machine's CPU is what pyinfra and its children used (user + system): since the sandbox connector
enters containers with nsenter (phoenix/sandbox_connector.py), the commands it runs in them count too, which
`docker exec` hid in dockerd and the container.
Prints one row per count and the no-op ratio of the largest count to one host (goal: <= 2).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from bench.converge_timing import Converge, timed_converge  # noqa: E402
from bench.machine import machine_line  # noqa: E402
from phoenix import sandbox  # noqa: E402

INVENTORY_FILE = "from phoenix.inventory import hosts_for\n\nservers = hosts_for(__file__)\n"


def host_counts(text: str) -> list[int]:
    """Given "1,4,10", returns [1, 4, 10]; raises ArgumentTypeError on anything but positive integers."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected host counts like 1,4,10")
    return counts


def inventory_yaml(sandbox_name: str, count: int) -> str:
    """Returns a throwaway environment of `count` base-and-firewall hosts in sandbox `sandbox_name`."""
    hosts = "".join(f"  host{number}:\n    roles: []\n" for number in range(1, count + 1))
    return (
        "environment:\n  name: scale-bench\n  throwaway: true\n"
        f"connection:\n  type: docker\n  sandbox: {sandbox_name}\nhosts:\n{hosts}"
    )


def bench_count(count: int, directory: Path, keep: bool) -> dict[str, Converge]:
    """Converges `count` fresh hosts cold and then no-op; returns {"cold": Converge, "no-op": Converge}."""
    sandbox_name = f"scale-bench-{count}-{os.getpid()}"
    inventory = directory / f"scale{count}.py"
    inventory.write_text(INVENTORY_FILE)
    inventory.with_suffix(".yml").write_text(inventory_yaml(sandbox_name, count))
    sandbox.up(sandbox_name, [f"host{number}" for number in range(1, count + 1)])
    try:
        return {"cold": timed_converge(inventory, sandbox_name), "no-op": timed_converge(inventory, sandbox_name)}
    finally:
        if not keep:
            sandbox.down(sandbox_name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--hosts", type=host_counts, default=[1, 4, 10], help="host counts (default 1,4,10)")
    parser.add_argument("--keep", action="store_true", help="leave the sandboxes running")
    arguments = parser.parse_args()
    os.chdir(REPOSITORY)
    start_line = machine_line("at the start")
    results = {}
    with tempfile.TemporaryDirectory(prefix="phoenix-scale-") as directory:
        os.environ["PHOENIX_STATE_DIR"] = str(Path(directory) / "state")  # its throwaway secrets go with it
        for count in arguments.hosts:
            results[count] = bench_count(count, Path(directory), arguments.keep)
    print(start_line)
    print(machine_line("at the end"))
    print("hosts   cold wall  cold CPU/host   no-op wall  no-op CPU/host")
    for count, row in results.items():
        cold, noop = row["cold"], row["no-op"]
        first = f"{cold.seconds:8.1f} s  {cold.cpu_seconds / count:10.2f} s"
        print(f"{count:5d}  {first}  {noop.seconds:9.1f} s  {noop.cpu_seconds / count:10.2f} s")
    smallest, largest = min(results), max(results)
    if largest != smallest:
        ratio = results[largest]["no-op"].seconds / results[smallest]["no-op"].seconds
        print(f"no-op of {largest} hosts / {smallest}: {ratio:.2f}x the wall time (goal: <= 2)")


if __name__ == "__main__":
    main()
