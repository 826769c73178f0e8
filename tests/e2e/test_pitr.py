"""Continuous archiving and point-in-time recovery: db1 is archived by vault1's Barman (pulled over a TLS
replication connection; db1 holds no credential for the vault).

A writer (the user's app) inserts a row with its own timestamp every second for two minutes while users
upload files to web2 (whose database is db1); db1's and web2's containers are then removed at once without
warning, the whole site lost, and restore.py brings db1 back from the archive and web2's uploads from its
newest files run. No check, no WAL switch, no backup is run between the writes and the kill: archive_timeout
and the stream ship the WAL, the files job's watch the uploads. Replaces db1's and web2's containers (like
test_recovery.py replaces web1's).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from phoenix import runbook, sandbox
from phoenix.commands import make_restore_point_command, restore_point_name
from phoenix.container_shell import enter_argv
from tests.e2e.conftest import SANDBOX_NAME, container, from_runbook, live_host, run_phoenix, run_pyinfra
from tests.e2e.helpers import post_json, request, sh, upload

REPORT = "/tmp/phoenix-e2e-restore-db1.json"
WEB2_REPORT = "/tmp/phoenix-e2e-restore-web2.json"
UPLOAD_EVERY_SECONDS = 3
WRITES = 120
PSQL = "runuser -u postgres -- psql -X -tA -d links"
BARMAN = "cd /tmp && runuser -u barman -- barman"


def restore(*data: str, host: str = "db1") -> subprocess.CompletedProcess:
    arguments = [argument for item in data for argument in ("--data", item)]
    return run_pyinfra("--limit", f"@sandbox/{container(host)}", *arguments, "inventories/sandbox.py", "restore.py")


class Uploader(threading.Thread):
    """Web2's users: a record and its upload every few seconds over HTTPS, until stopped or web2 is gone.
    `written` holds (link id, content, the moment its upload was answered 201) of each one."""

    def __init__(self):
        super().__init__(daemon=True)
        self.host, self.written, self.stopping = live_host("web2"), [], threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                note = f"pitr-upload-{uuid.uuid4()}"
                link = post_json(self.host, "/api/links", {"url": f"https://example.org/{note}", "note": note})
                content = f"{note} ".encode() * 512
                upload(self.host, link["id"], content)
            except Exception:  # web2, or db1 behind it, removed mid-request: whatever breaks, the users stop
                return
            self.written.append((link["id"], content, time.time()))
            self.stopping.wait(UPLOAD_EVERY_SECONDS)


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
    uploader = Uploader()
    uploader.start()
    time.sleep(WRITES - 5)  # the kill comes while the writers are still writing
    before_kill = rows()
    subprocess.run(["docker", "rm", "-f", container("db1"), container("web2")], check=True, capture_output=True)
    killed_at = datetime.now().astimezone()
    uploader.stopping.set()
    uploader.join(timeout=60)
    process.wait(timeout=30)
    noticed = run_phoenix("status", "inventories/sandbox.py", "--json", timeout=300)  # the admin's monitoring
    sandbox.up(SANDBOX_NAME, ["db1", "web2"])
    started = time.monotonic()
    result = restore(f"restore_report={REPORT}")
    seconds = time.monotonic() - started
    web2 = restore(f"restore_report={WEB2_REPORT}", host="web2")  # its app needs db1 back first
    return {
        "process": result,
        "seconds": seconds,
        "killed_at": killed_at,
        "before_kill": before_kill,
        "uploads": uploader.written,
        "web2": web2,
        "noticed": noticed,
    }


def test_phoenix_status_names_both_lost_hosts_before_anyone_restores(disaster):
    noticed = disaster["noticed"]
    assert noticed.returncode == 1
    flags = json.loads(noticed.stdout)["flags"]
    for lost in ("db1", "web2"):
        assert any(flag.startswith(f"{lost}: its own backup status could not be read (") for flag in flags), flags
    assert not any(flag.startswith("web1: its own backup status") for flag in flags), flags  # still there


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


def test_the_uploads_come_back_all_but_the_last_minute_without_any_backup_run_by_hand(disaster):
    """The files job's watch backed the uploads up as they came (its nightly schedule never ran): web2 serves
    every upload made before the restored run began, byte for byte, and that run began less than a minute
    before the kill."""
    process = disaster["web2"]
    assert process.returncode == 0, process.stderr[-5000:]
    files = json.loads(open(WEB2_REPORT).read())["restored"]["files"]
    assert files["ok"] and files["trigger"] == "changed", files  # a run of the watch, not the nightly
    run_began = datetime.fromisoformat(files["snapshot_time"]).timestamp()
    killed_at = disaster["killed_at"].timestamp()
    assert killed_at - run_began <= 60, (files["snapshot_time"], disaster["killed_at"])
    before_run = [(link, content) for link, content, answered in disaster["uploads"] if answered < run_began]
    assert len(before_run) >= 5, disaster["uploads"]  # a minute of uploads at least, however slow the machine
    host = live_host("web2")
    for link, content in before_run:
        status, _, served = request(host, "GET", f"/api/links/{link}/file")
        assert status == 200 and served == content, (link, status)


def test_point_in_time_recovery_returns_exactly_the_rows_committed_before_the_target(disaster):
    restored = rows()
    (n, first), (_, second) = restored[30], restored[31]
    target = first + (second - first) / 2  # between two known rows: the first committed before it, the second after
    # the vault's nightly base backup ran since those rows: the recovery goes back to before it, so that base
    # backup is left on the old timeline (the next test's restore must not start from it)
    assert sh("vault1", f"{BARMAN} backup --wait --wait-timeout 300 db1").returncode == 0

    # the runbook's "restore to a moment" (it adds force_restore: db1 holds data again)
    command = from_runbook(runbook.PYINFRA, runbook.restore_to_moment, "db1", target.isoformat(sep=" "))
    process = run_pyinfra(*command, "--data", f"restore_report={REPORT}")

    assert process.returncode == 0, process.stderr[-5000:]
    assert [number for number, _ in rows()] == list(range(1, n + 1))
    assert json.loads(open(REPORT).read())["recovered"]["target"] == target.isoformat(sep=" ")


def test_a_moment_after_the_newest_transaction_restores_everything_up_to_it(disaster):
    """The user asks for a moment shortly after the last write (the database was idle since): PostgreSQL alone
    refuses to promote when the WAL ends before the target; the archive's end is that moment's state. The newest
    base backup lies on the timeline the previous test's recovery left: PostgreSQL cannot start from it."""
    newest_backup = sh("vault1", f"{BARMAN} list-backups --minimal db1").stdout.split()[0]
    assert sh("db1", f"{PSQL} -c 'INSERT INTO pitr_rows VALUES (1001, clock_timestamp())'").returncode == 0
    expected = [n for n, _ in rows()]
    time.sleep(2)  # the moment asked for must lie in the past (restore.py refuses a future one)
    moment = datetime.now(UTC) - timedelta(seconds=1)

    command = from_runbook(runbook.PYINFRA, runbook.restore_to_moment, "db1", moment.isoformat(sep=" "))
    process = run_pyinfra(*command, "--data", f"restore_report={REPORT}")

    assert process.returncode == 0, process.stderr[-5000:]
    assert [n for n, _ in rows()] == expected  # the last write included
    recovered = json.loads(open(REPORT).read())["recovered"]
    assert recovered["target"].endswith("(no transaction in the archive after it: recovered to the archive's end)"), (
        recovered
    )
    assert recovered["backup"] != newest_backup, recovered


def test_a_restore_point_made_before_the_newest_base_backup_is_reached_exactly(disaster):
    """upgrade.py names the moment an upgrade begins (a restore point, named by the same builders); the database
    is written to after it and the vault's nightly base backup runs; then the user goes back to that point.
    Recovery replays forward only: it starts from a base backup made before the point, not the newest one."""
    name = restore_point_name("web1", datetime.now(UTC).isoformat(timespec="seconds"))  # as upgrade.py names it
    assert sh("db1", make_restore_point_command(name)).returncode == 0
    expected = [n for n, _ in rows()]
    assert sh("db1", f"{PSQL} -c 'INSERT INTO pitr_rows VALUES (2001, clock_timestamp())'").returncode == 0
    assert sh("vault1", f"{BARMAN} backup --wait --wait-timeout 300 db1").returncode == 0  # the nightly's
    newest_backup = sh("vault1", f"{BARMAN} list-backups --minimal db1").stdout.split()[0]

    process = restore(f"restore_point={name}", "force_restore=yes", f"restore_report={REPORT}")

    assert process.returncode == 0, process.stderr[-5000:]
    assert [n for n, _ in rows()] == expected  # every row up to the point, not the one written after it
    recovered = json.loads(open(REPORT).read())["recovered"]
    assert recovered["target"] == f"restore point {name!r}" and recovered["backup"] != newest_backup, recovered


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
