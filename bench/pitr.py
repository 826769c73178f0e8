"""What continuous archiving costs and gives: RPO after unannounced kills, pgbench TPS with and without
the WAL stream, and restore time of a generated database, physical (Barman) against the dump (pg_restore).

    PHOENIX_SANDBOX=NAME .venv/bin/python bench/pitr.py [--kills 3] [--scale 20] [--seconds 30] [--pairs 3]
        [--parts rpo,tps,restore] [--commit-timestamp-pairs 3] [--uploads 10]

Runs against a converged sandbox of inventories/sandbox.py (`phoenix sandbox up NAME` and a deploy, or an
e2e sandbox kept with PHOENIX_E2E_KEEP=1); it replaces db1's container and its data. Prints:
  - RPO: a writer inserts a row with its own timestamp every 0.2 s; after a random 20-60 s db1's
    container is removed without warning and restore.py brings it back from the archive; the RPO is
    the last row the writer saw committed minus the newest row restored (median and max over --kills);
  - TPS: `pgbench -T --seconds -c 4` on db1 with Barman streaming the WAL and with the stream cut
    (walsender terminated, the vault's barman cron timer stopped), alternated --pairs times so that
    the machine's drift falls on both sides, each run with the stream started once the stream has
    caught up with the WAL written while it was cut; each pair's TPS and the median ratio;
  - restore time: pgbench's tables at --scale (scale 68 is about 1 GiB) restored by restore.py from
    a fresh base backup (physical) and from a fresh dump (`--data snapshot=RUN`, pg_restore), the
    tables vacuumed first (WAL written after a base backup is replayed on top of it, which this leaves
    out): the whole run and its "restore data" step, as restore.py reports it;
  - uploads (a part of its own, not run by default): --uploads files written into web2's uploads directory at
    random moments 5-40 s apart, each followed until web2's files job has a successful run that began after it
    (its watch, every backup.files.watch_seconds): how long an upload waits before it is safe on the vault,
    median and max, i.e. what a loss at the worst moment would cost of the uploads;
  - commit-timestamps (a part of its own, not run by default): what track_commit_timestamp (on where the vault
    archives, for the drill's real RPO) costs: pgbench TPS with it on and off, the stream on, in
    --commit-timestamp-pairs pairs whose order alternates; each pair and the median ratio;
with the machine's core count and load average, which bound what the figures mean. --parts picks the parts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
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


def restore(*data: str) -> tuple[float, float]:
    """Runs restore.py on db1 with `data`; returns its wall time and its "restore data" step, in seconds."""
    arguments = [argument for item in data for argument in ("--data", item)]
    started = time.monotonic()
    result = subprocess.run(
        [str(REPOSITORY / ".venv/bin/pyinfra"), "-y", "--limit", sandbox_state.pyinfra_host_name(container("db1")),
         *arguments, "inventories/sandbox.py", "restore.py"],
        cwd=REPOSITORY, capture_output=True, text=True, env=dict(os.environ, PHOENIX_SANDBOX=SANDBOX),
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"restore.py failed:\n{result.stderr[-3000:]}")
    step = re.search(r"restore data ([0-9.]+)s", result.stdout + result.stderr)
    if step is None:
        raise SystemExit(f"restore.py printed no 'restore data' step:\n{result.stderr[-2000:]}")
    return time.monotonic() - started, float(step.group(1))


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


def upload_lag() -> float:
    """Writes a file into web2's uploads at a random moment; returns the seconds until a successful files run that
    began after the write had finished (the watch's, or any other) has finished."""
    time.sleep(random.uniform(5, 40))
    path = f"/var/lib/links/uploads/bench-{time.time_ns()}.bin"
    sh("web2", f"head -c 65536 /dev/urandom > {path} && chown links:links {path}")
    written = time.time()
    while True:
        status = json.loads(sh("web2", "cat /var/lib/phoenix/backup/status/files.json 2>/dev/null || echo {}"))
        started = datetime.fromisoformat(status["started"]).timestamp() if status.get("started") else 0.0
        if status.get("result") == "ok" and started >= written:
            return datetime.fromisoformat(status["finished"]).timestamp() - written
        if time.time() - written > 600:
            raise SystemExit(f"web2: no files run backed {path} up within 600 s (status: {status})")
        time.sleep(0.5)


def tps(seconds: int) -> float:
    output = sh("db1", f"runuser -u postgres -- pgbench -T {seconds} -c 4 -j 2 links 2>&1")
    return float(next(line for line in output.splitlines() if line.startswith("tps")).split()[2])


def stream_on() -> None:
    """Starts the vault's barman cron (which starts the WAL stream) and waits until the stream has caught up
    with the WAL written while it was cut: otherwise the next run with the stream pays for that backlog too."""
    sh("vault1", "systemctl start phoenix-barman-cron.timer phoenix-barman-cron.service")
    behind = "SELECT coalesce(max(pg_current_wal_lsn() - flush_lsn), -1) FROM pg_stat_replication"
    for _ in range(180):
        lag = int(sh("db1", f"{PSQL} -c '{behind}'").strip())
        if 0 <= lag < 1_000_000:
            return
        time.sleep(1)
    raise SystemExit("db1: Barman's WAL stream did not catch up within 180 s")


def stream_off() -> None:
    sh("vault1", "systemctl stop phoenix-barman-cron.timer; pkill -u barman -f receive-wal || true", check=False)
    sh("db1", f"{PSQL} -c 'SELECT pg_terminate_backend(pid) FROM pg_stat_replication'")


def tps_ratios(pairs: int, seconds: int) -> list[tuple[float, float]]:
    """Returns `pairs` of (TPS with the stream, TPS without), measured alternately."""
    measured = []
    for _ in range(pairs):
        stream_on()
        with_stream = tps(seconds)
        stream_off()
        measured.append((with_stream, tps(seconds)))
    stream_on()
    return measured


BENCH_SETTINGS = "/etc/postgresql/15/main/conf.d/zz-bench.conf"  # read after phoenix.conf, removed at the end


def restart_db1(settings: str) -> None:
    """Restarts db1's PostgreSQL with `settings` (shell that writes BENCH_SETTINGS, or removes it) and waits for the
    WAL stream, which the restart cut."""
    sh("db1", f"{settings} && systemctl restart postgresql@15-main")
    # pg_receivewal reports a segment flushed once it is complete: the restart leaves one half-written
    sh("db1", f"{PSQL} -c 'SELECT pg_switch_wal()'")
    stream_on()


def commit_timestamp_ratios(pairs: int, seconds: int) -> list[tuple[float, float]]:
    """Returns `pairs` of (TPS with track_commit_timestamp on, TPS with it off), each pair's order the other way
    round from the one before, so that the machine's drift falls on both sides."""
    measured = []
    for pair in range(pairs):
        result = {}
        for setting in ("on", "off") if pair % 2 == 0 else ("off", "on"):
            restart_db1(f"echo 'track_commit_timestamp = {setting}' > {BENCH_SETTINGS}")
            result[setting] = tps(seconds)
        measured.append((result["on"], result["off"]))
    restart_db1(f"rm -f {BENCH_SETTINGS}")
    return measured


PARTS = ("rpo", "tps", "commit-timestamps", "restore", "uploads")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--scale", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--commit-timestamp-pairs", type=int, default=3)
    parser.add_argument("--uploads", type=int, default=10)
    parser.add_argument("--parts", default="rpo,tps,restore", help=f"of {', '.join(PARTS)}")
    options = parser.parse_args()
    parts = set(options.parts.split(","))
    unknown = parts - set(PARTS)
    if unknown:
        parser.error(f"--parts: no part {', '.join(sorted(unknown))} (parts: {', '.join(PARTS)})")
    print(machine_line("at the start"))

    if "uploads" in parts:
        lags = [upload_lag() for _ in range(options.uploads)]
        print(
            f"uploads on the vault after: median {statistics.median(lags):.1f}s, max {max(lags):.1f}s"
            f" ({len(lags)} files written at random moments)"
        )

    if "rpo" in parts:
        rpos = [one_kill() for _ in range(options.kills)]
        print(f"RPO over {len(rpos)} unannounced kills: median {statistics.median(rpos):.1f}s, max {max(rpos):.1f}s")

    if parts & {"tps", "commit-timestamps", "restore"}:
        sh("db1", f"runuser -u postgres -- pgbench -i -q -s {options.scale} links 2>&1")
    if "tps" in parts:
        print_pairs("pgbench TPS with the WAL stream / without", tps_ratios(options.pairs, options.seconds))
    if "commit-timestamps" in parts:
        measured = commit_timestamp_ratios(options.commit_timestamp_pairs, options.seconds)
        print_pairs("pgbench TPS with track_commit_timestamp on / off", measured)
    if "restore" in parts:
        restore_times()
    print(f"{machine_line('at the end')} ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")


def print_pairs(what: str, measured: list[tuple[float, float]]) -> None:
    pairs = ", ".join(f"{first:.0f}/{second:.0f}" for first, second in measured)
    ratio = statistics.median(first / second for first, second in measured)
    print(f"{what}, {len(measured)} alternated pairs: {pairs}; median ratio {ratio:.3f}")


def restore_times() -> None:
    """Prints restore.py's time for db1's database, physical against the dump."""
    size = sh("db1", f"{PSQL} -c \"SELECT pg_size_pretty(pg_database_size('links'))\"").strip()
    # vacuumed first, so that both paths restore the same settled tables: autovacuum after pgbench's updates writes
    # about as much WAL as the tables hold, which the physical path would replay on top of the base backup
    sh("db1", "runuser -u postgres -- vacuumdb --quiet links")
    # an immediate checkpoint: Barman's default spreads it over checkpoint_completion_target (4.5 min)
    sh("vault1", "cd /tmp && runuser -u barman -- barman backup --immediate-checkpoint --wait db1")
    sh("db1", "phoenix-backup run db-links --trigger manual")
    run = json.loads(sh("db1", "phoenix-backup status"))["db-links"]["run"]
    physical, physical_step = restore("force_restore=yes")
    dump, dump_step = restore("force_restore=yes", f"snapshot={run}")
    print(
        f"restore.py of a {size} database: physical {physical:.1f}s (restore data {physical_step:.1f}s),"
        f" pg_restore {dump:.1f}s (restore data {dump_step:.1f}s); physical/dump {physical / dump:.2f} whole,"
        f" {physical_step / dump_step:.2f} restore data"
    )


if __name__ == "__main__":
    main()
