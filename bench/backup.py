"""The nightly database job against a bare pg_dump, and what a second night adds to the vault.

    .venv/bin/python bench/backup.py [--size-mib 1024] [--keep]

Starts its own sandbox (web1 with PostgreSQL, vault1), converges it, fills a table with about
--size-mib of rows, then measures on web1:
  - `pg_dump -Fc DB > /dev/null` (the bare dump, pg_dump's default compression), and with -Z0;
  - the nightly job (`systemctl start phoenix-backup-db-links`: lock, pg_dump -Z0 streamed
    through sha256 into restic over TLS to the vault, row counts, manifest);
  - after 1% of the rows changed, the job again: bytes it added to the repository (the vault's
    repository size before and after, so after restic's compression and deduplication), once
    for the newest 1% of rows (edits cluster on recent data) and once for 1% spread evenly.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from phoenix import sandbox, sandbox_state  # noqa: E402

INVENTORY = "bench/inventories/backup.py"
SANDBOX = "backup-bench"
BATCH_ROWS = 500_000


def on(host: str, command: str) -> str:
    """Runs a shell command as root on a sandbox host; returns its stdout, exits on failure."""
    result = subprocess.run(
        ["docker", "exec", sandbox_state.container_name(SANDBOX, host), "bash", "-c", command],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.exit(f"{host}: `{command}` failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result.stdout


def run_pyinfra(*arguments: str) -> float:
    """Runs pyinfra on this bench's sandbox; returns its seconds, exits on failure. Its output goes to
    /tmp/phoenix-bench-<sandbox>-<script>.log, each line stamped with the seconds since pyinfra started."""
    script = Path(arguments[-1]).stem
    log_path = Path(f"/tmp/phoenix-bench-{SANDBOX}-{script}.log")
    started = time.monotonic()
    with (
        subprocess.Popen(
            [str(REPOSITORY / ".venv" / "bin" / "pyinfra"), "-y", *arguments],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, PHOENIX_SANDBOX=SANDBOX, PYTHONUNBUFFERED="1"),  # lines stamped as they come
        ) as process,
        log_path.open("w") as log,
    ):
        for line in process.stdout:
            log.write(f"{time.monotonic() - started:7.2f} {line}")
    if process.returncode != 0:
        tail = log_path.read_text()[-3000:]
        sys.exit(f"pyinfra {' '.join(arguments)} failed (whole output: {log_path}):\n{tail}")
    return time.monotonic() - started


def timed(host: str, command: str) -> float:
    started = time.monotonic()
    on(host, command)
    return time.monotonic() - started


def sql(statement: str) -> str:
    return on("web1", f"runuser -u postgres -- psql -X -q -tA -d links -c {json.dumps(statement)}").strip()


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def fill(size_mib: int) -> tuple[int, int]:
    """Fills table bench_rows until the database is about size_mib MiB; returns (rows, database bytes)."""
    sql("DROP TABLE IF EXISTS bench_rows; CREATE TABLE bench_rows (id bigint PRIMARY KEY, amount int, payload text)")
    rows, size = 0, 0
    while size < size_mib * 1024 * 1024:
        sql(
            "INSERT INTO bench_rows SELECT g, (random() * 100000)::int,"
            " md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text)"
            f" FROM generate_series({rows + 1}, {rows + BATCH_ROWS}) g"
        )
        rows += BATCH_ROWS
        size = int(sql("SELECT pg_database_size('links')"))
        say(f"{rows:,} rows, {size / 1024 / 1024:,.0f} MiB")
    sql("VACUUM ANALYZE bench_rows")
    return rows, int(sql("SELECT pg_database_size('links')"))


def repository_bytes() -> int:
    return int(on("vault1", "du -sb /var/lib/phoenix-vault/repos/web1 | cut -f1"))


def nightly_job() -> tuple[float, dict]:
    seconds = timed("web1", "systemctl start phoenix-backup-db-links.service")
    status = json.loads(on("web1", "cat /var/lib/phoenix/backup/status/db-links.json"))
    if status["result"] != "ok":
        sys.exit(f"the job failed: {status}")
    return seconds, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--size-mib", type=int, default=1024, help="database size to generate (default 1024)")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running")
    arguments = parser.parse_args()
    os.chdir(REPOSITORY)
    sandbox.down(SANDBOX)
    sandbox.up(SANDBOX, ["web1", "vault1"])
    try:
        say("converging web1 and vault1")
        run_pyinfra(INVENTORY, "deploy.py")
        say(f"generating about {arguments.size_mib} MiB of rows")
        rows, database_bytes = fill(arguments.size_mib)
        say("bare pg_dump")
        bare = timed("web1", "runuser -u postgres -- pg_dump -Fc links > /dev/null")
        bare_uncompressed = timed("web1", "runuser -u postgres -- pg_dump -Fc -Z0 links > /dev/null")
        say("first nightly job")
        empty = repository_bytes()
        first_seconds, first = nightly_job()
        after_first = repository_bytes()
        changed = rows // 100
        sql(f"UPDATE bench_rows SET amount = amount + 1, payload = md5(payload) WHERE id > {rows - changed}")
        say("second nightly job, after the newest 1% of the rows changed")
        second_seconds, _ = nightly_job()
        after_second = repository_bytes()
        sql("UPDATE bench_rows SET amount = amount + 1, payload = md5(payload) WHERE id % 100 = 0")
        say("third nightly job, after 1% of the rows changed, spread evenly")
        third_seconds, _ = nightly_job()
        after_third = repository_bytes()
    finally:
        if not arguments.keep:
            sandbox.down(SANDBOX)
    mib = 1024 * 1024
    stream = first["bytes_processed"]
    print(
        f"database: {rows:,} rows, {database_bytes / mib:,.0f} MiB (pg_database_size);"
        f" dump stream {stream / mib:,.0f} MiB"
    )
    print(f"bare pg_dump -Fc > /dev/null:        {bare:7.1f} s")
    print(f"bare pg_dump -Fc -Z0 > /dev/null:    {bare_uncompressed:7.1f} s")
    print(
        f"nightly job, first run:             {first_seconds:7.1f} s = {first_seconds / bare:.2f} x the bare dump;"
        f" repository +{(after_first - empty) / mib:,.1f} MiB ({(after_first - empty) / stream:.0%} of the stream)"
    )
    print(
        f"after the newest 1% of rows changed: {second_seconds:7.1f} s;"
        f" repository +{(after_second - after_first) / mib:,.1f} MiB"
        f" ({(after_second - after_first) / stream:.1%} of the stream)"
    )
    print(
        f"after 1% of rows changed, spread:    {third_seconds:7.1f} s;"
        f" repository +{(after_third - after_second) / mib:,.1f} MiB"
        f" ({(after_third - after_second) / stream:.1%} of the stream)"
    )


if __name__ == "__main__":
    main()
