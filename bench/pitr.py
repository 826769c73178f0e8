"""What continuous archiving costs and gives: RPO after unannounced kills, pgbench TPS with and without
the WAL stream, and restore time of a generated database, physical (Barman) against the dump (pg_restore).

    PHOENIX_SANDBOX=NAME .venv/bin/python bench/pitr.py [--kills 3] [--scale 20] [--seconds 30]

Runs against a converged sandbox of inventories/sandbox.py (`phoenix sandbox up NAME` and a deploy, or an
e2e sandbox kept with PHOENIX_E2E_KEEP=1); it replaces db1's container and its data. Prints:
  - RPO: a writer inserts a row with its own timestamp every 0.2 s; after a random 20-60 s db1's
    container is removed without warning and restore.py brings it back from the archive; the RPO is
    the last row the writer saw committed minus the newest row restored (median and max over --kills);
  - TPS: `pgbench -T --seconds -c 4` on db1 with Barman streaming the WAL, then with the stream cut
    (walsender terminated, the vault's barman cron timer stopped), and their ratio;
  - restore time: pgbench's tables at --scale (scale 68 is about 1 GiB) restored by restore.py from
    a fresh base backup (physical) and from a fresh dump (`--data snapshot=RUN`, pg_restore);
with the machine's core count and load average, which bound what the figures mean.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from bench.machine import machine_line  # noqa: E402
from phoenix import sandbox, sandbox_state  # noqa: E402

SANDBOX = os.environ.get("PHOENIX_SANDBOX", "sandbox")
PSQL = "runuser -u postgres -- psql -X -tA -d links"


def container(name: str) -> str:
    return sandbox_state.container_name(SANDBOX, name)


def sh(host: str, command: str, check: bool = True) -> str:
    result = subprocess.run(["docker", "exec", container(host), "bash", "-c", command], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise SystemExit(f"{host}: {command[:80]}: {result.stderr.strip()[-400:]}")
    return result.stdout


def restore(*data: str) -> float:
    arguments = [argument for item in data for argument in ("--data", item)]
    started = time.monotonic()
    result = subprocess.run(
        [str(REPOSITORY / ".venv/bin/pyinfra"), "-y", "--limit", f"@docker/{container('db1')}", *arguments,
         "inventories/sandbox.py", "restore.py"],
        cwd=REPOSITORY, capture_output=True, text=True, env=dict(os.environ, PHOENIX_SANDBOX=SANDBOX),
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"restore.py failed:\n{result.stderr[-3000:]}")
    return time.monotonic() - started


def one_kill() -> float:
    """Writes until an unannounced kill of db1, restores; returns the RPO in seconds."""
    sh("db1", f"{PSQL} -c 'CREATE TABLE IF NOT EXISTS bench_rows (written_at timestamptz NOT NULL)'")
    writer = subprocess.Popen(
        ["docker", "exec", container("db1"), "bash", "-c",
         f"while true; do {PSQL} -c 'INSERT INTO bench_rows VALUES (clock_timestamp()) RETURNING extract(epoch FROM"
         " written_at)' || exit; sleep 0.2; done"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(random.uniform(20, 60))
    subprocess.run(["docker", "rm", "-f", container("db1")], check=True, capture_output=True)
    acknowledged = [float(line) for line in writer.stdout.read().split() if line.replace(".", "").isdigit()]
    writer.wait()
    sandbox.up(SANDBOX, ["db1"])
    restore("force_restore=yes")
    newest = float(sh("db1", f"{PSQL} -c 'SELECT extract(epoch FROM max(written_at)) FROM bench_rows'").strip())
    return max(0.0, acknowledged[-1] - newest)


def tps(seconds: int) -> float:
    output = sh("db1", f"runuser -u postgres -- pgbench -T {seconds} -c 4 -j 2 links 2>&1")
    return float(next(line for line in output.splitlines() if line.startswith("tps")).split()[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--scale", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=30)
    options = parser.parse_args()
    print(machine_line("at the start"))

    rpos = [one_kill() for _ in range(options.kills)]
    print(f"RPO over {len(rpos)} unannounced kills: median {statistics.median(rpos):.1f}s, max {max(rpos):.1f}s")

    sh("db1", f"runuser -u postgres -- pgbench -i -q -s {options.scale} links 2>&1")
    with_stream = tps(options.seconds)
    sh("vault1", "systemctl stop phoenix-barman-cron.timer; pkill -u barman -f receive-wal || true", check=False)
    sh("db1", f"{PSQL} -c 'SELECT pg_terminate_backend(pid) FROM pg_stat_replication'")
    without = tps(options.seconds)
    sh("vault1", "systemctl start phoenix-barman-cron.timer phoenix-barman-cron.service")
    print(
        f"pgbench TPS: {with_stream:.0f} with the WAL stream, {without:.0f} without: ratio {with_stream / without:.3f}"
    )

    size = sh("db1", f"{PSQL} -c \"SELECT pg_size_pretty(pg_database_size('links'))\"").strip()
    sh("vault1", "cd /tmp && runuser -u barman -- barman backup --wait db1")
    sh("db1", "phoenix-backup run db-links --trigger manual")
    run = json.loads(sh("db1", "phoenix-backup status"))["db-links"]["run"]
    physical = restore("force_restore=yes")
    dump = restore("force_restore=yes", f"snapshot={run}")
    print(
        f"restore.py of a {size} database: physical {physical:.0f}s, pg_restore {dump:.0f}s"
        f" (physical/dump {physical / dump:.2f})"
    )
    print(f"{machine_line('at the end')} ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")


if __name__ == "__main__":
    main()
