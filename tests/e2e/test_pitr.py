"""Continuous archiving and point-in-time recovery: db1 is archived by vault1's Barman (pulled over a TLS
replication connection; db1 holds no credential for the vault).

A writer (the user's app) inserts a row with its own timestamp every second for two minutes; db1's
container is then removed without warning, and restore.py brings it back from the archive. No check,
no WAL switch, no backup is run between the writes and the kill: archive_timeout and the stream ship
the WAL. Replaces db1's container (like test_recovery.py replaces web1's).
"""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest

from phoenix import runbook, sandbox
from phoenix.container_shell import enter_argv
from tests.e2e.conftest import SANDBOX_NAME, container, from_runbook, run_pyinfra
from tests.e2e.helpers import sh

REPORT = "/tmp/phoenix-e2e-restore-db1.json"
WRITES = 120
PSQL = "runuser -u postgres -- psql -X -tA -d links"
BARMAN = "cd /tmp && runuser -u barman -- barman"


def restore(*data: str) -> subprocess.CompletedProcess:
    arguments = [argument for item in data for argument in ("--data", item)]
    return run_pyinfra("--limit", f"@sandbox/{container('db1')}", *arguments, "inventories/sandbox.py", "restore.py")


def rows() -> list[tuple[int, datetime]]:
    """The writer's rows on db1 as they are now: (number, the writer's own timestamp), in order."""
    result = sh("db1", f"{PSQL} -F ' ' -c 'SELECT n, extract(epoch FROM written_at) FROM pitr_rows ORDER BY n'")
    assert result.returncode == 0, result.stderr
    pairs = (line.split() for line in result.stdout.split("\n") if line.strip())
    return [(int(n), datetime.fromtimestamp(float(epoch), UTC)) for n, epoch in pairs]


def archive_files() -> dict[str, str]:
    """Every base backup and archived WAL file of db1 on the vault, with its sha256."""
    result = sh(
        "vault1", "cd /var/lib/barman/db1 && find base wals -type f ! -name xlog.db -print0 | xargs -0 sha256sum"
    )
    assert result.returncode == 0, result.stderr
    return {path: digest for digest, path in (line.split() for line in result.stdout.splitlines())}


@pytest.fixture(scope="module")
def disaster(converged):
    """Writes a row a second for two minutes on db1, removes db1's container, restores it; returns the facts.
    db1 may be lost before its first nightly run: its files job holds /etc alone, which the blueprint rebuilds."""
    table = "CREATE TABLE pitr_rows (n integer PRIMARY KEY, written_at timestamptz NOT NULL)"
    assert sh("db1", f"{PSQL} -c 'DROP TABLE IF EXISTS pitr_rows' -c '{table}'").returncode == 0
    writer = (
        f'for n in $(seq 1 {WRITES}); do {PSQL} -c "INSERT INTO pitr_rows VALUES ($n, clock_timestamp())";'
        " sleep 1; done"
    )
    process = subprocess.Popen(enter_argv(container("db1"), ["bash", "-c", writer]), stdout=subprocess.DEVNULL)
    time.sleep(WRITES - 5)  # the kill comes while the writer is still writing
    before_kill = rows()
    subprocess.run(["docker", "rm", "-f", container("db1")], check=True, capture_output=True)
    killed_at = datetime.now().astimezone()
    process.wait(timeout=30)
    sandbox.up(SANDBOX_NAME, ["db1"])
    started = time.monotonic()
    result = restore(f"restore_report={REPORT}")
    return {
        "process": result,
        "seconds": time.monotonic() - started,
        "killed_at": killed_at,
        "before_kill": before_kill,
    }


def test_restore_brings_back_all_but_the_last_minute_after_an_unannounced_kill(disaster):
    process = disaster["process"]
    assert process.returncode == 0, process.stderr[-5000:]
    restored = rows()
    assert restored, "no row came back"
    numbers = [n for n, _ in restored]
    assert numbers == list(range(1, len(numbers) + 1))  # a prefix of what was written, nothing in between lost
    newest = restored[-1][1]
    # the writer's own clock: at most the last 60 s before the kill are missing
    assert newest >= disaster["killed_at"] - timedelta(seconds=60), (newest, disaster["killed_at"])
    assert len(restored) >= len(disaster["before_kill"]) - 60
    report = json.loads(open(REPORT).read())["recovered"]
    assert report["target"] == "the newest point the archive holds"
    assert report["newest_transaction"], report
    assert "recovered from the vault's archive" in process.stderr and "newest transaction restored:" in process.stderr


def test_point_in_time_recovery_returns_exactly_the_rows_committed_before_the_target(disaster):
    restored = rows()
    (n, first), (_, second) = restored[30], restored[31]
    target = first + (second - first) / 2  # between two known rows: the first committed before it, the second after

    # the runbook's "restore to a moment" (it adds force_restore: db1 holds data again)
    command = from_runbook(runbook.PYINFRA, runbook.restore_to_moment, "db1", target.isoformat(sep=" "))
    process = run_pyinfra(*command, "--data", f"restore_report={REPORT}")

    assert process.returncode == 0, process.stderr[-5000:]
    assert [number for number, _ in rows()] == list(range(1, n + 1))
    assert json.loads(open(REPORT).read())["recovered"]["target"] == target.isoformat(sep=" ")


def test_a_moment_after_the_newest_transaction_restores_everything_up_to_it(disaster):
    """The user asks for a moment shortly after the last write (the database was idle since): PostgreSQL alone
    refuses to promote when the WAL ends before the target; the archive's end is that moment's state."""
    assert sh("db1", f"{PSQL} -c 'INSERT INTO pitr_rows VALUES (1001, clock_timestamp())'").returncode == 0
    expected = [n for n, _ in rows()]
    time.sleep(2)  # the moment asked for must lie in the past (restore.py refuses a future one)
    moment = datetime.now(UTC) - timedelta(seconds=1)

    command = from_runbook(runbook.PYINFRA, runbook.restore_to_moment, "db1", moment.isoformat(sep=" "))
    process = run_pyinfra(*command, "--data", f"restore_report={REPORT}")

    assert process.returncode == 0, process.stderr[-5000:]
    assert [n for n, _ in rows()] == expected  # the last write included
    target = json.loads(open(REPORT).read())["recovered"]["target"]
    assert target.endswith("(no transaction in the archive after it: recovered to the archive's end)"), target


def test_a_target_outside_the_window_is_refused_before_any_host_is_touched(disaster):
    marker = sh("db1", "stat -c %Y /var/lib/postgresql/15/main/PG_VERSION").stdout

    process = restore("at=2020-01-01 00:00")

    assert process.returncode == 2
    assert "restore.py stopped before changing anything on db1" in process.stderr
    assert "outside db1's point-in-time window: the archive reaches back to" in process.stderr
    assert sh("db1", "stat -c %Y /var/lib/postgresql/15/main/PG_VERSION").stdout == marker


def test_the_database_server_cannot_destroy_its_history(disaster):
    history = archive_files()
    assert any(path.startswith("base/") for path in history) and any(path.startswith("wals/") for path in history)
    # everything db1 holds that names the vault: its restic login (append-only), nothing for Barman
    login = json.loads(sh("db1", "cat /etc/phoenix/backup.json").stdout)["repository"]
    rest = login.split("rest:", 1)[1].rstrip("/")
    attacks = [
        # its restic login against the archive's files, through the vault's only open service
        f"curl -sk -o /dev/null -w '%{{http_code}}' -X DELETE '{rest}/../../barman/db1/wals/xlog.db'",
        f"curl -sk -o /dev/null -w '%{{http_code}}' -X DELETE '{rest}/%2e%2e/barman/db1/base'",
        # a shell on the vault: no key, no password
        "timeout 20 ssh -o BatchMode=yes -o StrictHostKeyChecking=no barman@vault1 rm -rf /var/lib/barman/db1",
        "timeout 20 ssh -o BatchMode=yes -o StrictHostKeyChecking=no root@vault1 rm -rf /var/lib/barman/db1",
        # its own superuser: cut the stream and drop the slot (future WAL only; the archive is not its to touch)
        'runuser -u postgres -- psql -X -tA -c "SELECT pg_terminate_backend(pid) FROM pg_stat_replication"'
        " -c \"SELECT pg_drop_replication_slot('phoenix_barman')\"",
    ]
    for attack in attacks:
        result = sh("db1", attack, timeout=60)
        assert not result.stdout.strip().startswith("2"), (attack, result.stdout)  # no 2xx answer

    assert sh("db1", "ls /root/.ssh/id_* /var/lib/postgresql/.ssh 2>/dev/null").stdout == ""
    after = archive_files()
    assert {path: after.get(path) for path in history} == history  # every file still there, unchanged
    # the cut stream comes back by itself: the vault's minutely barman cron makes the slot again and streams on
    check = ""
    for _ in range(36):  # three cron minutes at most
        check = sh("vault1", f"{BARMAN} check db1").stdout
        if "replication slot: OK" in check and "receive-wal running: OK" in check:
            break
        time.sleep(5)
    assert "replication slot: OK" in check and "receive-wal running: OK" in check, check


def test_a_pinned_base_backup_survives_the_most_aggressive_expiry(disaster):
    # a newer base backup, so that minimum_redundancy alone would not keep the oldest
    assert sh("vault1", f"{BARMAN} backup --wait --wait-timeout 300 db1").returncode == 0
    oldest = sh("vault1", f"{BARMAN} list-backups --minimal db1").stdout.split()[-1]
    assert sh("vault1", f"{BARMAN} keep --target full db1 {oldest}").returncode == 0

    deleted = sh("vault1", f"{BARMAN} delete db1 {oldest}")
    sh("vault1", f"{BARMAN} cron")

    assert oldest in sh("vault1", f"{BARMAN} list-backups --minimal db1").stdout.split(), deleted.stdout
    assert "keep" in (deleted.stdout + deleted.stderr).lower()
