"""Safe upgrades (upgrade.py) of the reference app, release 1.0.0 -> 2.0.0 (a new column with a backfill).

Starts from the inventory's release (1.0.0) on web1 and web2 and leaves web2 on 2.0.0: a file that
runs afterwards and needs 1.0.0 gets it back from the `app_at_inventory_release` fixture.
- web2 (systemd, database on db1) upgrades; meanwhile the scheduled backup fires on db1 by hand
  and the vault applies a retention policy that keeps only the newest run: the second incident.
- web1 (supervisor, its own database) gets a release whose migration fails halfway, then an
  upgrade that is killed mid-way, finished by the next run; then the operator goes back to 1.0.0 and
  the pinned pre-upgrade run on purpose, with the runbook's command.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import datetime

import pytest

from phoenix import runbook
from tests.e2e.conftest import converge, from_runbook, live_host, run_pyinfra, start_pyinfra
from tests.e2e.helpers import post_json, request, sh, vault_pins, vault_runs, worker_pid
from tests.e2e.releases import broken_release

IN_PROGRESS = "/var/lib/phoenix/upgrade/in-progress.json"
LINKS_PSQL = "runuser -u postgres -- psql -X -tA -d links"
HISTORY = "/var/lib/phoenix/upgrade/history.jsonl"
TIMERS = {"web1": ["phoenix-backup-db-links.timer", "phoenix-backup-files.timer", "links-schema-check.timer"]}
AGGRESSIVE_RETENTION = "--keep-within-hours 0 --hourly 0 --daily 1 --weekly 0 --monthly 0 --minimum-verified 1"


def get_json(name: str, path: str) -> dict:
    status, _, body = request(live_host(name), "GET", path)
    assert status == 200, body
    return json.loads(body)


def upgrade_arguments(name: str, version: str, *data: str) -> list[str]:
    """The runbook's upgrade command for host `name` and release `version` (none: app.source), with the
    test's `--data` flags added."""
    pairs = [argument for item in data for argument in ("--data", item)]
    return [*from_runbook(runbook.PYINFRA, runbook.upgrade, name, version), *pairs]


def start_upgrade(name: str, version: str, *data: str) -> subprocess.Popen:
    return start_pyinfra(*upgrade_arguments(name, version, *data))


def in_progress(name: str) -> dict:
    result = sh(name, f"cat {IN_PROGRESS} 2>/dev/null")
    return json.loads(result.stdout) if result.stdout.strip() else {}


def wait_for_upgrade(name: str, process: subprocess.Popen, ready, seconds: int = 300) -> dict:
    """Polls the host's in-progress record until `ready(record)`; returns it. Fails if the upgrade ends first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        record = in_progress(name)
        if record and ready(record):
            return record
        if process.poll() is not None:
            pytest.fail(f"upgrade.py ended before the moment the test waits for:\n{process.stdout.read()[-3000:]}")
        time.sleep(0.1)
    process.kill()
    pytest.fail("upgrade.py did not reach the moment the test waits for")


DB1_STATUS = "/var/lib/phoenix/backup/status/db-links.json"


def history(name: str) -> list[dict]:
    return [json.loads(line) for line in sh(name, f"cat {HISTORY}").stdout.splitlines()]


def timer_states(name: str, units: list[str]) -> list[str]:
    return sh(name, f"systemctl is-active {' '.join(units)}").stdout.split()


@pytest.fixture(scope="module")
def web2_upgrade(app_at_inventory_release):
    """web2 upgraded to 2.0.0; while it runs, db1's scheduled backup fires, and afterwards the
    vault checks db1's repository and keeps only its newest verified run (plus pins)."""
    saved = [
        post_json(
            live_host("web2"), "/api/links", {"url": f"https://Host{i}.Example.NET:8443/page?q={i}", "note": f"n{i}"}
        )
        for i in range(3)
    ]
    older = sh("db1", "phoenix-backup run db-links --trigger manual")  # one unpinned run older than the pin
    assert older.returncode == 0, older.stderr
    worker_before = worker_pid("web2")
    process = start_upgrade("web2", "2.0.0", "reason=release 2.0.0 (e2e)")
    record = wait_for_upgrade("web2", process, lambda record: record.get("pinned_runs"))
    fired = sh("db1", "systemctl start phoenix-backup-db-links.service")  # the nightly job, fired by hand
    fired_started = json.loads(sh("db1", f"cat {DB1_STATUS}").stdout)["started"]
    output, _ = process.communicate(timeout=900)
    # the job began while the upgrade ran, by both records' clocks; whether it also ended first is the machine's speed
    upgrade_finished = datetime.fromisoformat(history("web2")[-1]["finished"])  # whole seconds
    fired_during_upgrade = datetime.fromisoformat(fired_started).replace(microsecond=0) <= upgrade_finished
    runs_before = [run for run in vault_runs("db1") if run["job"] == "db-links"]
    check = sh("vault1", "phoenix-vault check --client db1")
    retain = sh("vault1", f"phoenix-vault retain --client db1 {AGGRESSIVE_RETENTION}")
    return {
        "saved": saved,
        "worker_before": worker_before,
        "record": record,
        "process": process,
        "output": output,
        "fired": fired,
        "fired_during_upgrade": fired_during_upgrade,
        "runs_before": runs_before,
        "check": check,
        "retain": retain,
    }


def test_upgrade_1_to_2_migrates_and_serves_the_data_with_the_pre_upgrade_backup_pinned(web2_upgrade):
    assert web2_upgrade["process"].returncode == 0, web2_upgrade["output"][-4000:]
    assert "UPGRADED links 1.0.0 -> 2.0.0" in web2_upgrade["output"]
    health = get_json("web2", "/health")
    assert (health["version"], health["schema_version"]) == ("2.0.0", "0002")
    for i, link in enumerate(web2_upgrade["saved"]):
        served = get_json("web2", f"/api/links/{link['id']}")
        assert (served["note"], served["domain"]) == (f"n{i}", f"host{i}.example.net")  # backfilled by 0002
    new = post_json(live_host("web2"), "/api/links", {"url": "http://After.Upgrade.test/", "note": "2.0.0"})
    assert new["domain"] == "after.upgrade.test"
    last = history("web2")[-1]
    assert last["outcome"] == "upgraded" and set(last["pinned_runs"]) == {"web2/files", "db1/db-links", "db1/files"}
    assert vault_pins("db1")[last["pinned_runs"]["db1/db-links"]].startswith("release 2.0.0 (e2e)")
    assert last["pinned_runs"]["web2/files"] in vault_pins("web2")
    assert timer_states("web2", ["phoenix-backup-files.timer", "links-schema-check.timer"]) == ["active"] * 2
    # the declared worker (systemd) was stopped with the app and runs again, a new process on the new release
    assert worker_pid("web2") != web2_upgrade["worker_before"]


def test_the_incident_a_scheduled_backup_and_retention_during_the_upgrade_keep_the_pinned_snapshot(web2_upgrade):
    assert web2_upgrade["fired"].returncode == 0, web2_upgrade["fired"].stderr
    assert web2_upgrade["fired_during_upgrade"]
    assert web2_upgrade["check"].returncode == 0, web2_upgrade["check"].stderr
    assert web2_upgrade["retain"].returncode == 0, web2_upgrade["retain"].stderr
    pinned = web2_upgrade["record"]["pinned_runs"]["db1/db-links"]
    after = [run for run in vault_runs("db1") if run["job"] == "db-links"]
    # retention really ran: unpinned older runs went, the fired run (newest) stayed ...
    assert len(after) < len(web2_upgrade["runs_before"])
    assert (
        after[-1]["trigger"] == "scheduled" and after[-1]["time"] > next(r for r in after if r["run"] == pinned)["time"]
    )
    # ... and the pre-upgrade run, older than it, is still there and restores
    assert pinned in [run["run"] for run in after]
    restored = sh("db1", f"phoenix-backup verify-restore db-links --run {pinned}")
    assert restored.returncode == 0, restored.stderr


@pytest.fixture(scope="module")
def web1_links(app_at_inventory_release):
    for i in range(2):
        post_json(live_host("web1"), "/api/links", {"url": f"https://Web1-{i}.example.org/", "note": f"kept {i}"})
    return get_json("web1", "/api/links")["links"]


def test_a_migration_failing_halfway_rolls_back_to_release_1_with_every_record_and_the_pin(web1_links, tmp_path):
    assert get_json("web1", "/health")["version"] == "1.0.0"
    process = run_pyinfra(*upgrade_arguments("web1", "", f"source={broken_release(tmp_path)}"))
    output = process.stdout + process.stderr
    assert process.returncode != 0, output[-4000:]
    assert "ROLLED BACK to 1.0.0" in output and "deliberately broken halfway" in output
    health = get_json("web1", "/health")
    assert (health["version"], health["schema_version"]) == ("1.0.0", "0001")
    assert get_json("web1", "/api/links")["links"] == web1_links  # every note as it was, not half-migrated
    last = history("web1")[-1]
    assert (last["outcome"], last["to"], last["rolled_back_to"]) == ("rolled back", "2.1.0", "1.0.0")
    pins = vault_pins("web1")
    assert last["pinned_runs"]["web1/db-links"] in pins and last["pinned_runs"]["web1/files"] in pins
    assert timer_states("web1", TIMERS["web1"]) == ["active"] * 3
    assert sh("web1", f"test -e {IN_PROGRESS}").returncode == 1
    worker_pid("web1")  # the declared worker (supervisor) runs again after the rollback and its data restore


def test_a_killed_upgrade_is_finished_by_the_next_run_and_its_data_restores_from_the_pin(web1_links):
    process = start_upgrade("web1", "2.0.0")
    killed = wait_for_upgrade("web1", process, lambda record: record["phase"] == "upgrading")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    # what the killed run left on the host ends by itself (the kill does not reach it: commands run in a session of
    # their own, as over SSH; one that writes to the dead pyinfra stops there)
    sh("web1", "for i in $(seq 120); do pgrep -f 'alembic|pip install' >/dev/null || exit 0; sleep 0.5; done")
    assert timer_states("web1", TIMERS["web1"]) == ["inactive"] * 3  # paused, and nobody resumed them

    rerun = run_pyinfra(*upgrade_arguments("web1", "2.0.0"))
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-4000:]
    assert timer_states("web1", TIMERS["web1"]) == ["active"] * 3
    outcomes = [record["outcome"] for record in history("web1")[-2:]]
    assert outcomes == ["rolled back after an interruption", "upgraded"]
    pinned = killed["pinned_runs"]["web1/db-links"]
    assert pinned in vault_pins("web1")
    restored = sh("web1", f"phoenix-backup verify-restore db-links --run {pinned}")
    assert restored.returncode == 0, restored.stderr
    served = {link["id"]: link for link in get_json("web1", "/api/links")["links"]}
    for link in web1_links:
        assert served[link["id"]]["note"] == link["note"]
    assert get_json("web1", "/health")["version"] == "2.0.0"
    worker_pid("web1")


def test_going_back_on_purpose_brings_the_pinned_run_back_under_the_older_release(web1_links):
    """After the upgrade above, the operator goes back as the runbook says: app.source still names 1.0.0 (the
    sandbox's), and the runbook's command restores the run upgrade.py pinned under it."""
    assert get_json("web1", "/health")["version"] == "2.0.0"
    after_upgrade = post_json(live_host("web1"), "/api/links", {"url": "https://After.example.org/", "note": "2.0.0"})
    # a table only the newer release has, as its migration would make it (2.0.0 itself only adds a column)
    newer = sh("web1", f"{LINKS_PSQL} -c 'CREATE TABLE link_tags (link_id integer, tag text)'"
                       " -c \"INSERT INTO link_tags VALUES (1, 'made by 2.x')\"")  # fmt: skip
    assert newer.returncode == 0, newer.stderr
    pinned = history("web1")[-1]["pinned_runs"]["web1/db-links"]

    process = run_pyinfra(*from_runbook(runbook.PYINFRA, runbook.downgrade, "web1", pinned))

    assert process.returncode == 0, (process.stdout + process.stderr)[-4000:]
    health = get_json("web1", "/health")
    assert (health["version"], health["schema_version"]) == ("1.0.0", "0001")
    served = get_json("web1", "/api/links")["links"]
    assert [(link["id"], link["note"]) for link in served] == [(link["id"], link["note"]) for link in web1_links]
    assert after_upgrade["id"] not in [link["id"] for link in served]  # written after the pinned run: gone with it
    assert sh("web1", f"{LINKS_PSQL} -c \"SELECT to_regclass('link_tags')\"").stdout.strip() == ""  # gone too
    worker_pid("web1")
    assert pinned in vault_pins("web1")  # going back releases nothing
    # the next deploy (app.source = the release now running) has nothing to refuse and nothing to change
    results, _ = converge("--limit", "web1")
    assert [op["name"] for op in results["results"]["operations"] if op["success"]] == []
