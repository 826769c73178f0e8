"""The runbook's by-hand recovery, run as `phoenix runbook` prints it, against the sandbox: stock restic on
the vault dumps the newest backup of db1's database, pg_restore loads it on db1 (into a scratch database,
beside the live one), and the record written before the backup is there; stock restic on the vault
restores web1's newest files run (into a scratch directory), and it holds what web1 holds, the file a
user uploaded before the backup included; stock Barman on the vault recovers db1's archived PostgreSQL,
over db1's data directory, to a moment between two rows (the first is there, the second is not), then to
the newest point the vault holds (a row written on the recovered server's new timeline is there too), and
web2 serves its record all along. This is the path an operator takes when Phoenix itself is unavailable,
and the one most likely to rot. (The runbook's Phoenix commands are run by the tests of what they do:
test_recovery, test_upgrade, test_drill, test_pins.)
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import uuid

from phoenix import backup_plan, runbook
from phoenix.inventory import load_environment
from tests.e2e.conftest import REPOSITORY, container, live_host, printed_runbook
from tests.e2e.helpers import post_json, request, sh, upload

SCRATCH = "runbook_check"
DUMP = "/root/runbook-links.dump"
FILES_TARGET = "/root/runbook-restore-web1"
ROWS = "runbook_archive_rows"
DATA_ARCHIVE = "/root/db1-data.tar"  # where the runbook packs db1's recovered data directory, on both hosts
PSQL = "runuser -u postgres -- psql -X -q -tA -d links"


def checksums(host: str, directory: str) -> dict[str, str]:
    """Every file under `directory` on a sandbox host: {path relative to it: sha256}."""
    listed = sh(host, f"cd {directory} && find . -type f -print0 | sort -z | xargs -0 -r sha256sum")
    assert listed.returncode == 0, listed.stderr
    return {path: digest for digest, path in (line.split(maxsplit=1) for line in listed.stdout.splitlines())}


def test_the_runbooks_by_hand_database_restore_brings_the_backed_up_record_back(converged):
    note = f"runbook-{uuid.uuid4()}"
    post_json(live_host("web2"), "/api/links", {"url": "https://example.org/runbook", "note": note})  # on db1
    assert sh("db1", "phoenix-backup run db-links --trigger scheduled").returncode == 0

    environment = load_environment(REPOSITORY / "inventories" / "sandbox.yml")
    steps = runbook.manual_database_restore(environment, "db1", "links", target=SCRATCH, dump=DUMP)
    as_printed = runbook.manual_database_restore(environment, "db1", "links")
    assert all(f"        {step.command}\n" in printed_runbook() for step in as_printed)  # what the operator reads
    try:
        for step in steps[:2]:
            assert step.host == "vault1"
            done = sh("vault1", step.command)
            assert done.returncode == 0, (step.command, done.stderr[-2000:])
        # the runbook's "copy the dump from vault1 to db1 (scp)"
        copy = f"docker exec {container('vault1')} cat {DUMP} | docker exec -i {container('db1')} sh -c 'cat > {DUMP}'"
        assert subprocess.run(copy, shell=True, timeout=120).returncode == 0
        for step in steps[2:]:
            assert step.host == "db1"
            done = sh("db1", step.command)
            assert done.returncode == 0, (step.command, done.stderr[-2000:])
        query = f"SELECT count(*) FROM links WHERE note = '{note}'"
        found = sh("db1", f'runuser -u postgres -- psql -d {SCRATCH} -tAc "{query}"')
        assert found.stdout.strip() == "1", found.stderr
    finally:
        sh("db1", f"runuser -u postgres -- dropdb --if-exists {SCRATCH}; rm -f {DUMP}")
        sh("vault1", f"rm -f {DUMP}")


def test_the_runbooks_by_hand_files_restore_brings_web1s_uploads_back(converged):
    web1 = live_host("web1")
    link = post_json(web1, "/api/links", {"url": "https://example.org/runbook-files", "note": "runbook files"})
    content = uuid.uuid4().bytes * 1024
    upload(web1, link["id"], content)
    assert sh("web1", "phoenix-backup run files --trigger scheduled").returncode == 0

    environment = load_environment(REPOSITORY / "inventories" / "sandbox.yml")
    hosts = environment.hosts
    jobs = backup_plan.jobs(hosts["web1"], backup_plan.databases_served("web1", hosts))
    (paths,) = [backup_plan.restorable_paths(job) for job in jobs if job["kind"] == "files"]
    as_printed = runbook.manual_files_restore(environment, "web1", paths)
    assert all(f"        {step.command}\n" in printed_runbook() for step in as_printed)  # what the operator reads
    try:
        for step in runbook.manual_files_restore(environment, "web1", paths, target=FILES_TARGET):
            assert step.host == "vault1"
            done = sh("vault1", step.command)
            assert done.returncode == 0, (step.command, done.stderr[-2000:])
        for path in paths:  # what the operator would copy back to web1 is what web1 holds
            restored = checksums("vault1", f"{FILES_TARGET}{path}")
            assert restored and restored == checksums("web1", path), path
        uploaded = sh("vault1", f"sha256sum < {FILES_TARGET}/var/lib/links/uploads/{link['id']}/report.bin")
        assert uploaded.stdout.split()[0] == hashlib.sha256(content).hexdigest()
    finally:
        sh("vault1", f"rm -rf {FILES_TARGET}")


def write_row(number: int) -> str:
    """Inserts row `number` into db1's links database (its own commit, stamped with db1's clock); returns db1's
    WAL position after it."""
    insert = f"INSERT INTO {ROWS} VALUES ({number}, clock_timestamp())"
    written = sh("db1", f"{PSQL} -c '{insert}' -c 'SELECT pg_current_wal_lsn()'")
    assert written.returncode == 0, written.stderr
    return written.stdout.split()[-1]


def rows() -> list[int]:
    listed = sh("db1", f"{PSQL} -c 'SELECT n FROM {ROWS} ORDER BY n'")
    assert listed.returncode == 0, listed.stderr
    return [int(number) for number in listed.stdout.split()]


def wait_until_streamed(position: str, seconds: int = 180) -> None:
    """Polls db1 until the vault's Barman has received its WAL up to `position` (pg_receivewal reports what it
    wrote every 10 s; after a restart of the stream, barman cron starts it again within a minute)."""
    query = f"SELECT write_lsn >= '{position}' FROM pg_stat_replication WHERE application_name = 'barman_receive_wal'"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if sh("db1", f'runuser -u postgres -- psql -X -tA -c "{query}"').stdout.strip() == "t":
            return
        time.sleep(2)
    raise AssertionError(f"vault1's Barman did not receive db1's WAL up to {position} within {seconds} s")


def run_by_hand(steps: list[runbook.Step]) -> None:
    """Runs the steps in order, each on its host as root, as the operator would; between the last step on the vault
    and the first on db1, copies the packed data directory over, as the runbook says (scp)."""
    for number, step in enumerate(steps):
        if number and step.host == "db1" and steps[number - 1].host == "vault1":
            assert f"copy {DATA_ARCHIVE} from vault1 to db1 (scp)" in steps[number - 1].why
            copy = (
                f"docker exec {container('vault1')} cat {DATA_ARCHIVE}"
                f" | docker exec -i {container('db1')} sh -c 'cat > {DATA_ARCHIVE}'"
            )
            assert subprocess.run(copy, shell=True, timeout=300).returncode == 0
        for _ in range(3):
            done = sh(step.host, step.command, timeout=600)
            if "Process is still running" not in done.stdout:  # else the runbook says: run this line again
                break
        assert done.returncode == 0, (step.command, done.stdout[-2000:], done.stderr[-2000:])


def test_the_runbooks_by_hand_archive_recovery_goes_back_to_a_moment_then_to_the_newest_point(converged):
    environment = load_environment(REPOSITORY / "inventories" / "sandbox.yml")
    as_printed = runbook.manual_archive_restore(environment, "db1", runbook.ARCHIVE_MOMENT)
    newest = runbook.manual_archive_restore(environment, "db1")
    # what the operator reads: the recovery to a moment, and its other way, to the newest point
    assert all(f"        {step.command}\n" in printed_runbook() for step in as_printed + newest)
    note = f"runbook-archive-{uuid.uuid4()}"
    link = post_json(live_host("web2"), "/api/links", {"url": "https://example.org/archive", "note": note})  # on db1
    table = f"CREATE TABLE {ROWS} (n integer PRIMARY KEY, written_at timestamptz NOT NULL)"
    assert sh("db1", f"{PSQL} -c 'DROP TABLE IF EXISTS {ROWS}' -c '{table}'").returncode == 0
    write_row(1)
    moment = sh("db1", f"{PSQL} -c 'SELECT clock_timestamp()'").stdout.strip()  # after row 1's commit, before row 2's
    wait_until_streamed(write_row(2))

    def web2_serves_the_record() -> bool:
        status, _, body = request(live_host("web2"), "GET", f"/api/links/{link['id']}")
        return status == 200 and json.loads(body)["note"] == note

    try:
        run_by_hand(runbook.manual_archive_restore(environment, "db1", moment))
        assert rows() == [1]
        assert web2_serves_the_record()

        wait_until_streamed(write_row(3))  # the vault streams the recovered server's new timeline
        run_by_hand(newest)
        assert rows() == [1, 3]
        assert web2_serves_the_record()
        post_json(live_host("web2"), "/api/links", {"url": "https://example.org/after", "note": "after"})
    finally:
        sh("db1", f"{PSQL} -c 'DROP TABLE IF EXISTS {ROWS}' && rm -rf /var/lib/postgresql/15/main.before-recovery-*")
        sh("db1", f"rm -f {DATA_ARCHIVE}")
        sh("vault1", f"rm -rf {DATA_ARCHIVE} /var/lib/barman/recover/db1")
