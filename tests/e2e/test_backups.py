"""Off-site backups in the sandbox: web1, web2 and db1 back up to vault1; faults injected for real.

Runs after the two converges. The fault tests leave every service running again when they end.
"""

from __future__ import annotations

import json
import re
import shlex

import pytest

from phoenix.remote.restore import DATABASE_STEPS, FILES_STEPS
from phoenix.remote.restore_progress import STOP_AT_STEP_VARIABLE
from tests.e2e.conftest import container, converge, run_phoenix, run_pyinfra
from tests.e2e.helpers import (
    HOLD_TABLE_LOCK,
    LOCK_IS_HELD,
    complete,
    poll_output,
    release_table_lock,
    restic_as_client,
    runs,
    sh,
    start,
    vault_pins,
    wait_for,
)

PING_LOG = "/var/log/phoenix-test-pings.log"
# A stand-in for healthchecks.io on vault1: records "METHOD PATH body" per request.
PING_RECEIVER = f"""
import http.server
class Handler(http.server.BaseHTTPRequestHandler):
    def record(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode(errors="replace")
        with open("{PING_LOG}", "a") as log:
            log.write(f"{{self.command}} {{self.path}} {{body[:200]!r}}\\n")
        self.send_response(200)
        self.end_headers()
    do_GET = do_POST = record
http.server.ThreadingHTTPServer(("", 8099), Handler).serve_forever()
"""


@pytest.fixture(scope="module")
def pings(converged):
    """Starts the ping receiver on vault1; returns a function reading what it received."""
    sh("vault1", f"rm -f {PING_LOG}; systemctl stop phoenix-test-pings 2>/dev/null; true")
    started = sh("vault1", f"systemd-run --unit phoenix-test-pings python3 -c {shlex.quote(PING_RECEIVER)}")
    assert started.returncode == 0, started.stderr
    wait_for("vault1", "curl -fs -o /dev/null http://127.0.0.1:8099/ready")
    yield lambda: sh("vault1", f"cat {PING_LOG}").stdout.splitlines()
    sh("vault1", "systemctl stop phoenix-test-pings")


@pytest.fixture
def postgres_running_afterwards():
    yield
    sh("web1", "systemctl start postgresql@15-main")


def test_every_job_has_an_enabled_timer_with_its_schedule(converged):
    # the files job's watch where it has data paths (the uploads), not on db1, whose files job holds /etc alone
    expected = {
        "web1": ["db-links", "files", "files-watch"],
        "web2": ["files", "files-watch"],
        "db1": ["db-links", "files"],
    }
    for host, jobs in expected.items():
        listed = sh(host, "systemctl list-timers --all --no-legend 'phoenix-backup-*'").stdout
        assert sorted(line.split()[-2].removeprefix("phoenix-backup-").removesuffix(".timer")
                      for line in listed.splitlines() if line.strip()) == jobs, listed  # fmt: skip
        for job in jobs:
            assert sh(host, f"systemctl is-enabled phoenix-backup-{job}.timer").stdout.strip() == "enabled"
    calendar = sh("web1", "systemctl show -p TimersCalendar --value phoenix-backup-db-links.timer").stdout
    assert "*-*-* 02:15:00" in calendar
    for task in ("check", "retain"):
        assert sh("vault1", f"systemctl is-enabled phoenix-vault-{task}.timer").stdout.strip() == "enabled"


FILES_TIMER = "phoenix-backup-files.timer"
BAD_SCHEDULE = "/etc/systemd/system/phoenix-backup-files.timer.d/schedule.conf"


def next_run(host: str, timer: str) -> str:
    return sh(host, f"systemctl show -p NextElapseUSecRealtime --value {timer}").stdout.strip()


def test_a_timer_left_without_a_next_run_fails_the_deploy_clearly_and_the_corrected_deploy_restarts_it(
    app_at_inventory_release,
):
    web1 = ("--limit", f"@sandbox/{container('web1')}")
    # a schedule systemd rejects, loaded (as a failed deploy leaves it): the timer is active (elapsed), no next run
    sh("web1", f"mkdir -p {BAD_SCHEDULE.rsplit('/', 1)[0]} && printf '[Timer]\\nOnCalendar=\\nOnCalendar=every night"
               f" at 2\\n' > {BAD_SCHEDULE} && systemctl daemon-reload; systemctl restart {FILES_TIMER}")  # fmt: skip
    try:
        assert next_run("web1", FILES_TIMER) == ""

        failed = run_pyinfra(*web1, "inventories/sandbox.py", "deploy.py")

        assert failed.returncode != 0
        said = failed.stderr
        assert f"{FILES_TIMER} has no next run (it is active (elapsed)): what it starts would silently stop" in said
        assert f"{BAD_SCHEDULE}: OnCalendar=every night at 2 is not a calendar expression systemd accepts" in said
    finally:
        # the correction: the schedule is right again on disk and reloaded, yet the timer stays elapsed until restarted
        sh("web1", f"rm -r {BAD_SCHEDULE.rsplit('/', 1)[0]} && systemctl daemon-reload")
    assert next_run("web1", FILES_TIMER) == ""

    corrected, _ = converge(*web1)

    assert next_run("web1", FILES_TIMER) != ""
    restarted = [op["name"] for op in corrected["results"]["operations"] if op["success"]]
    assert restarted == [f"Backups | {FILES_TIMER} running, with a next run"], restarted
    again, _ = converge(*web1)
    assert again["results"]["totals"]["success"] == 0


def test_vault_serves_append_only_over_tls_with_a_login_per_client(converged):
    command_line = sh("vault1", "cat /proc/$(systemctl show -p MainPID --value phoenix-vault)/cmdline | tr '\\0' ' '")
    assert "serve restic --append-only --private-repos" in command_line.stdout
    url = "https://vault1:8443"
    curl = "curl -s -o /dev/null -w '%{http_code}' --cacert /etc/phoenix/vault.crt"
    credentials = '$(python3 -c \'import json,urllib.parse as u; print(u.urlsplit(json.load(open("/etc/phoenix/backup.json"))["repository"][5:]).password)\')'  # noqa: E501
    assert sh("web1", f"{curl} -u web1:wrong {url}/web1/config").stdout == "401"
    assert sh("web1", f"{curl} -u web1:{credentials} {url}/web1/config").stdout == "200"
    assert sh("web1", f"{curl} -u web1:{credentials} {url}/web2/config").stdout == "403"
    # without the vault's own certificate, TLS is refused
    assert sh("web1", f"curl -s -o /dev/null {url}/web1/config").returncode == 60


def test_a_manual_backup_makes_complete_runs_pings_and_a_status_file(converged, pings):
    result = sh("web1", "phoenix-backup run all --trigger manual")

    assert result.returncode == 0, result.stdout + result.stderr
    for job in ("db-links", "files"):
        latest = complete("web1", job)[-1]
        assert latest["trigger"] == "manual"
        status = json.loads(sh("web1", f"cat /var/lib/phoenix/backup/status/{job}.json").stdout)
        assert status["result"] == "ok" and status["run"] == latest["run"]
    received = pings()
    assert any(line.startswith("GET /ping/web1-db/start ") for line in received), received
    assert any(line.startswith("GET /ping/web1-db ") for line in received), received
    assert any(line.startswith("GET /ping/web1-files ") for line in received), received


def test_backup_py_backs_up_every_data_host_and_pins_its_snapshots(converged):
    process = run_pyinfra("inventories/sandbox.py", "backup.py", "--data", "pin=before the 2.0 upgrade")

    assert process.returncode == 0, process.stderr[-3000:]
    for host, jobs in {"web1": ["db-links", "files"], "web2": ["files"], "db1": ["db-links", "files"]}.items():
        for job in jobs:
            latest = complete(host, job)[-1]
            assert vault_pins(host)[latest["run"]] == "before the 2.0 upgrade", (host, job, latest)


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("backup_trigger=whenever", "--data backup_trigger='whenever': expected one of scheduled, manual, pre-upgrade"),
        ("pinn=before the 2.0 upgrade", "--data pinn: unknown flag for backup.py; did you mean 'pin'?"),
    ],
)
def test_backup_py_rejects_a_bad_flag_before_touching_a_host(converged, argument, message):
    before = len(runs("web2"))
    process = run_pyinfra("inventories/sandbox.py", "backup.py", "--data", argument)

    assert process.returncode == 2
    assert message in process.stderr and "Connecting to hosts" not in process.stderr
    assert len(runs("web2")) == before


def test_database_stopped_mid_dump_fails_pings_failure_and_keeps_no_snapshot(
    converged, pings, postgres_running_afterwards
):
    before = runs("web1", "db-links")
    holder = start("web1", HOLD_TABLE_LOCK)  # pg_dump waits on this lock: the backup is mid-stream
    try:
        wait_for("web1", LOCK_IS_HELD)
        backup = start("web1", "phoenix-backup run db-links --trigger scheduled")
        wait_for("web1", "pgrep -x pg_dump && pgrep -x restic")
        assert sh("web1", "systemctl stop postgresql@15-main").returncode == 0
        output, _ = backup.communicate(timeout=120)
    finally:
        release_table_lock()
        holder.wait(timeout=30)

    assert backup.returncode == 1, output
    assert "pg_dump of links failed" in output and "no snapshot kept" in output
    status = json.loads(sh("web1", "cat /var/lib/phoenix/backup/status/db-links.json").stdout)
    assert status["result"] == "failed" and "pg_dump" in status["error"]
    assert any(line.startswith("POST /ping/web1-db/fail ") and "pg_dump" in line for line in pings())
    assert runs("web1", "db-links") == before  # not even an incomplete snapshot


def test_unreachable_vault_fails_cleanly_and_the_next_run_succeeds(converged):
    assert sh("vault1", "systemctl stop phoenix-vault").returncode == 0
    try:
        failed = sh("web2", "phoenix-backup run files --trigger scheduled")
    finally:
        sh("vault1", "systemctl start phoenix-vault")

    assert failed.returncode == 1
    assert "vault unreachable: https://vault1:8443/web2/ (" in failed.stdout
    status = json.loads(sh("web2", "cat /var/lib/phoenix/backup/status/files.json").stdout)
    assert status["result"] == "failed"
    wait_for("web2", "curl -s -o /dev/null --cacert /etc/phoenix/vault.crt https://vault1:8443/")
    succeeded = sh("web2", "phoenix-backup run files --trigger scheduled")
    assert succeeded.returncode == 0, succeeded.stdout + succeeded.stderr
    assert json.loads(sh("web2", "cat /var/lib/phoenix/backup/status/files.json").stdout)["result"] == "ok"
    check = sh("vault1", "phoenix-vault check --client web2")
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_clients_credentials_cannot_forget_or_delete(converged):
    target = complete("web1", "files")[-1]
    snapshot = target["snapshots"][0]
    curl = "curl -s -o /dev/null -w '%{http_code}' --cacert /etc/phoenix/vault.crt -X DELETE"
    login = 'web1:$(python3 -c \'import json,urllib.parse as u; print(u.urlsplit(json.load(open("/etc/phoenix/backup.json"))["repository"][5:]).password)\')'  # noqa: E501

    forget = sh("web1", restic_as_client("web1", f"forget {snapshot}"), timeout=240)
    deleted = sh("web1", f"{curl} -u {login} https://vault1:8443/web1/snapshots/{snapshot}")

    assert forget.returncode != 0
    assert deleted.stdout == "403"
    assert target["run"] in [run["run"] for run in complete("web1", "files")]
    assert sh("vault1", f"ls /var/lib/phoenix-vault/repos/web1/snapshots/{snapshot}").returncode == 0


def test_manual_pinned_and_scheduled_backups_at_once_both_land_and_retention_keeps_the_pin(converged):
    before = {run["run"] for run in complete("web1", "db-links")}
    holder = start("web1", HOLD_TABLE_LOCK)  # keeps the manual run busy while the scheduled one queues
    try:
        wait_for("web1", LOCK_IS_HELD)
        manual = start("web1", "phoenix-backup run db-links --trigger manual --pin 'concurrency test'")
        wait_for("web1", "pgrep -x pg_dump")
        scheduled = start("web1", "systemctl start phoenix-backup-db-links.service")
        wait_for("web1", "journalctl -u phoenix-backup-db-links.service | grep -q 'waiting for the backup lock'")
    finally:
        release_table_lock()
        holder.wait(timeout=30)
    manual_output, _ = manual.communicate(timeout=180)
    scheduled.communicate(timeout=180)

    assert manual.returncode == 0, manual_output
    assert scheduled.returncode == 0
    new = [run for run in complete("web1", "db-links") if run["run"] not in before]
    assert [(run["trigger"], run["pin_tag"]) for run in new] == [("manual", "concurrency test"), ("scheduled", "")]
    pinned = run_phoenix("pin", "inventories/sandbox.py", new[0]["run"], "--reason", "concurrency test")
    assert pinned.returncode == 0, pinned.stderr
    # the weekly check, as its timer runs it: every repository checks clean, and runs get verified
    check = sh("vault1", "systemctl start phoenix-vault-check.service")
    assert check.returncode == 0, sh("vault1", "journalctl -u phoenix-vault-check --no-pager | tail -20").stdout
    journal = sh("vault1", "journalctl -u phoenix-vault-check --no-pager").stdout
    assert "[web1] check passed" in journal and "[db1] check passed" in journal

    # the strictest policy: one verified snapshot per day, nothing kept for its age
    strict = "--keep-within-hours 0 --hourly 0 --daily 1 --weekly 0 --monthly 0 --minimum-verified 1"
    retained = sh("vault1", f"phoenix-vault retain --client web1 {strict}")

    assert retained.returncode == 0, retained.stdout + retained.stderr
    assert "would forget" in retained.stdout  # the dry run is logged before anything is removed
    assert retained.stdout.index("would forget") < retained.stdout.index("forgot ")
    remaining = {run["run"]: run for run in complete("web1", "db-links")}
    assert new[0]["run"] in remaining, "the pinned run was forgotten"
    assert new[1]["run"] in remaining, "the newest verified run was forgotten"
    unpinned_before = [run for run in before if run not in vault_pins("web1")]
    assert unpinned_before and not set(unpinned_before) & set(remaining), "retention forgot nothing"
    assert sh("vault1", "grep -c 'would forget' /var/lib/phoenix-vault/log/retention.log").stdout.strip() != "0"
    check = sh("vault1", "phoenix-vault check --client web1")
    assert check.returncode == 0, check.stdout + check.stderr


# On web1: prints the id of the lock its running dump backup holds (restic's lock names the process's
# pid). Only that lock counts: the vault's verify pass (every 5 minutes) takes locks of its own.
LOCK_OF_THE_DUMP_BACKUP = (
    "pid=$(pgrep -f '[r]estic .*--stdin-filename links[.]dump') || exit 1;"  # [r]: not this shell
    f" for id in $({restic_as_client('web1', 'list locks --no-lock')}); do"
    f' {restic_as_client("web1", "cat lock --no-lock $id")} | grep -qx "  .pid.: $pid" && echo $id && exit 0;'
    " done; exit 1"
)


def lock_file(lock: str) -> str:
    return f"/var/lib/phoenix-vault/repos/web1/locks/{lock}"


def test_a_stale_lock_left_by_a_killed_job_does_not_block_the_next_run(converged):
    holder = start("web1", HOLD_TABLE_LOCK)
    try:
        wait_for("web1", LOCK_IS_HELD)
        assert sh("web1", "systemctl start --no-block phoenix-backup-db-links.service").returncode == 0
        # restic backup runs (after the quick repository check, whose own lock comes and goes) and holds its lock
        lock = poll_output("web1", LOCK_OF_THE_DUMP_BACKUP)
        assert sh("web1", "systemctl kill -s KILL phoenix-backup-db-links.service").returncode == 0
        wait_for("web1", "! pgrep -x restic")
    finally:
        release_table_lock()
        holder.wait(timeout=30)
    assert sh("vault1", f"test -f {lock_file(lock)}").returncode == 0, "the killed job left no lock"
    # the admin's status names the killed run, whoever holds the host's lock now (the files watch may, once free)
    status = run_phoenix("status", "inventories/sandbox.py", timeout=120)
    interrupted = "!! web1/db-links: its newest run, begun at "
    assert interrupted in status.stdout and "was INTERRUPTED: it stopped before it finished" in status.stdout, (
        status.stdout
    )

    result = sh("web1", "phoenix-backup run db-links --trigger scheduled", timeout=120)

    assert result.returncode == 0, result.stdout + result.stderr
    assert sh("vault1", f"test -e {lock_file(lock)}").returncode == 1, "the stale lock is still there"
    check = sh("vault1", "phoenix-vault check --client web1", timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_latest_database_backup_restores_with_the_manifests_row_counts(converged):
    insert = (
        "INSERT INTO links (url, note) SELECT 'https://example.com/' || g, 'row ' || g FROM generate_series(1, 500) g"  # noqa: E501
    )
    assert sh("web1", f'runuser -u postgres -- psql -X -d links -c "{insert}"').returncode == 0
    assert sh("web1", "phoenix-backup run db-links").returncode == 0

    result = sh("web1", "phoenix-backup verify-restore db-links")

    report = json.loads(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert report["ok"] and report["checksum_matches"] and report["mismatched_tables"] == {}
    live = sh("web1", "runuser -u postgres -- psql -XtAc 'SELECT count(*) FROM links' links").stdout.strip()
    assert report["rows"] == report["manifest_rows"] >= int(live) >= 500


PROGRESS_RECORD = "/var/lib/phoenix/restore/{name}.progress.json"
# On the host: exits 0 once the restore recorded step N (argv 2) and stopped itself there (state T).
STOPPED_AT = (
    "python3 -c 'import json, sys; r = json.load(open(sys.argv[1]));"
    ' state = open("/proc/%d/stat" % r["pid"]).read().rsplit(")", 1)[1].split()[0];'
    ' sys.exit(not (r["number"] == int(sys.argv[2]) and state == "T"))\''
)
UPLOADS = "/var/lib/links/uploads"
LIST_UPLOADS = f"find {UPLOADS} -type f -printf '%P %s %u\\n' | sort"
COUNT_LINKS = "runuser -u postgres -- psql -XtAc 'SELECT count(*) FROM links' links"


def kill_at_step(host: str, command: str, name: str, number: int, kill_signal: str) -> str:
    """Runs a restore, kills it with `kill_signal` once it reached step `number`; returns what it printed."""
    record = PROGRESS_RECORD.format(name=name)
    restore = start(host, f"{STOP_AT_STEP_VARIABLE}={number} {command}")
    try:
        wait_for(host, f"{STOPPED_AT} {record} {number}")
        pid = json.loads(sh(host, f"cat {record}").stdout)["pid"]
        sh(host, f"kill -{kill_signal} {pid}; kill -CONT {pid}")
        return restore.communicate(timeout=60)[0]
    finally:
        restore.kill()


def test_a_restore_killed_at_each_step_says_which_and_the_next_run_finishes_it_with_nothing_lost(converged):
    upload = f"{UPLOADS}/before-the-killed-restores.txt"
    assert sh("web1", f"echo uploaded > {upload} && chown links:links {upload}").returncode == 0
    for job in ("db-links", "files"):
        assert sh("web1", f"phoenix-backup run {job}", timeout=180).returncode == 0
    database_run, files_run = complete("web1", "db-links")[-1]["run"], complete("web1", "files")[-1]["run"]
    rows, uploads = sh("web1", COUNT_LINKS).stdout.strip(), sh("web1", LIST_UPLOADS).stdout
    assert int(rows) > 0 and uploads
    # what restore.py finds on a new server: an empty database, no uploads
    blank_database = "runuser -u postgres -- dropdb --force links && runuser -u postgres -- createdb -O links links"
    restores = {
        "db-links": (DATABASE_STEPS, database_run, f"restore-db db-links --run {database_run}", blank_database),
        "files": (FILES_STEPS, files_run, f"restore-files --run {files_run} --paths {UPLOADS} --owner links",
                  f"rm -rf {UPLOADS}/*"),
    }  # fmt: skip
    assert sh("web1", "supervisorctl stop links").returncode == 0
    try:
        for name, (steps, run, arguments, blank) in restores.items():
            command = f"phoenix-backup {arguments}"
            for number, step in enumerate(steps, start=1):
                assert sh("web1", blank).returncode == 0
                kill_signal = "KILL" if number == 2 else "TERM"  # KILL: no handler, only the record tells

                printed = kill_at_step("web1", command, name, number, kill_signal)
                again = sh("web1", command, timeout=300)

                where = f"{step} (step {number} of {len(steps)})"
                if kill_signal == "TERM":
                    assert f"restore of {name} (run {run}) stopped by SIGTERM while running {where}" in printed
                assert again.returncode == 0, again.stdout + again.stderr
                interrupted = f"{name}: the previous restore (run {run}) was interrupted while running {where}"
                assert f"phoenix-backup: {interrupted}; it is being run again" in again.stderr
                report = json.loads(again.stdout)
                assert report["ok"] and report["previous_restore"] == interrupted.split(": ", 1)[1]
                assert sh("web1", f"test -e {PROGRESS_RECORD.format(name=name)}").returncode == 1
    finally:
        sh("web1", "supervisorctl start links")
    assert sh("web1", COUNT_LINKS).stdout.strip() == rows
    assert sh("web1", LIST_UPLOADS).stdout == uploads


def test_phoenix_status_reports_the_true_age_of_each_jobs_latest_backup(converged, tmp_path):
    no_drill_yet = {"PHOENIX_DRILL_DIR": str(tmp_path)}
    process = run_phoenix("status", "inventories/sandbox.py", "--json", timeout=120, **no_drill_yet)

    document = json.loads(process.stdout)
    # the backups are fresh and checked; only the never-run drill is flagged, and that alone fails the status
    assert document["flags"] == ["drill: no drill recorded (run `phoenix drill inventories/sandbox.py`)"]
    assert process.returncode == 1
    report = document["report"]
    latest = report["clients"]["web1"]["jobs"]["db-links"]["latest"]
    assert latest["run"] == complete("web1", "db-links")[-1]["run"]
    # both pins this file made on web1's database runs (backup.py's and `phoenix pin`'s), whatever else pinned
    reasons = {pin["reason"] for pin in report["clients"]["web1"]["jobs"]["db-links"]["pins"]}
    assert {"before the 2.0 upgrade", "concurrency test"} <= reasons, reasons
    human = run_phoenix("status", "inventories/sandbox.py", timeout=120, **no_drill_yet)
    never = "last drill: never\n!! no drill recorded (run `phoenix drill inventories/sandbox.py`)"
    assert human.stdout.rstrip().endswith(never)
    row = next(line for line in human.stdout.splitlines() if line.startswith("web1") and "db-links" in line)
    assert re.search(r"\(\d+[sm] ago\)", row), row  # seconds or minutes old: the age is measured, not assumed
