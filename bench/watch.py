"""What one look of the files job's watch costs: the fingerprint of a data tree of --files files.

    .venv/bin/python bench/watch.py [--files 100000] [--per-directory 100] [--looks 5]

Writes --files empty files (--per-directory to a directory) into a temporary directory, then takes
phoenix/remote/file_changes.py's fingerprint --looks times, as the watch does every
backup.files.watch_seconds; prints each look's wall and CPU seconds, the median, what that is per
100 000 entries and the share of one core it takes at each interval the schema offers, with the
machine's core count and load. Runs here, on the control machine's Python; a server with a slower
disk or a cold cache pays more on its first look (the kernel caches the tree's inodes after that).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import machine_line  # noqa: E402
from phoenix.remote.file_changes import fingerprint  # noqa: E402

WATCH_INTERVALS = (10, 30, 60, 300)  # some of backup.files.watch_seconds's choices


def make_tree(root: Path, files: int, per_directory: int) -> int:
    """Writes the files; returns how many entries the tree holds (directories included)."""
    entries = 1
    for index in range(files):
        directory = root / f"d{index // per_directory:06d}"
        if index % per_directory == 0:
            directory.mkdir()
            entries += 1
        (directory / f"upload-{index:07d}.jpg").touch()
        entries += 1
    return entries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--per-directory", type=int, default=100)
    parser.add_argument("--looks", type=int, default=5)
    arguments = parser.parse_args()
    if arguments.files < 1 or arguments.per_directory < 1 or arguments.looks < 1:
        parser.error("--files, --per-directory and --looks must be at least 1")
    print(machine_line("at the start"), flush=True)
    with tempfile.TemporaryDirectory(prefix="phoenix-watch-bench-") as scratch:
        entries = make_tree(Path(scratch), arguments.files, arguments.per_directory)
        print(f"tree: {arguments.files} files in {entries - arguments.files - 1} directories", flush=True)
        cpu_seconds = []
        for look in range(1, arguments.looks + 1):
            began, began_cpu = time.monotonic(), time.process_time()
            fingerprint([scratch])
            wall, cpu = time.monotonic() - began, time.process_time() - began_cpu
            cpu_seconds.append(cpu)
            print(f"look {look}: {wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)
    median = statistics.median(cpu_seconds)
    print(f"median: {median:.2f} s CPU a look, {median / entries * 100_000:.2f} s per 100 000 entries")
    shares = ", ".join(f"{seconds} s: {median / seconds:.1%}" for seconds in WATCH_INTERVALS)
    print(f"share of one core at watch_seconds {shares}")
    print(machine_line("at the end"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
