"""`phoenix drill` end to end: fresh records and an upload are backed up, a record more is written on
each site after the backups, then the drill restores web1, web2 and db1 into throwaway hosts from
vault1 as restore.py would (their PostgreSQL from the Barman archive, the files from the newest
runs) and checks them. Nothing here runs the vault's check: the drill takes the newest complete
runs, whether the vault's verify has reached them yet.

Needs only the converged sandbox on the inventory's release (the release the drill installs).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from phoenix import runbook, sandbox
from phoenix.inventory import load_environment
from phoenix.vault_client import ask_vault
from tests.e2e.conftest import REPOSITORY, SANDBOX_NAME, drill_sandbox, from_runbook, live_host, run_phoenix
from tests.e2e.helpers import post_json, sh, upload

DRILL_SANDBOX = drill_sandbox()  # drill-sandbox-<this checkout>


def phoenix(*arguments: str, drill_dir: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    return run_phoenix(*arguments, timeout=timeout, PHOENIX_DRILL_DIR=str(drill_dir))


@pytest.fixture(scope="module")
def drill(app_at_inventory_release, tmp_path_factory):
    """Writes records and an upload, backs up every host, runs the drill; returns what it saw."""
    written = {
        "web1": post_json(
            live_host("web1"), "/api/links", {"url": "https://example.org/drill1", "note": f"drill-{uuid.uuid4()}"}
        ),
        "web2": post_json(
            live_host("web2"), "/api/links", {"url": "https://example.org/drill2", "note": f"drill-{uuid.uuid4()}"}
        ),
    }
    upload(live_host("web1"), written["web1"]["id"], uuid.uuid4().bytes * 512)
    backup_started = datetime.now(UTC)
    for host in ("web1", "web2", "db1"):
        assert sh(host, "phoenix-backup run all --trigger scheduled").returncode == 0
    backed_up = datetime.now(UTC)
    # written after the nightly backups, as the last writes before a disaster are: only the archive holds them
    late = {
        host: post_json(live_host(host), "/api/links", {"url": f"https://example.org/{host}-late", "note": "late"})
        for host in ("web1", "web2")
    }

    drill_dir = tmp_path_factory.mktemp("drills")
    started = time.time()
    process = phoenix(*from_runbook(runbook.PHOENIX, runbook.drill), drill_dir=drill_dir)
    reports = sorted(drill_dir.glob("sandbox-*.json"))
    assert reports, f"no drill report:\n{process.stderr[-4000:]}"
    wall_seconds = reports[-1].stat().st_mtime - started  # until the report was written (then come the pages)
    return {
        "process": process,
        "report": json.loads(reports[-1].read_text()),
        "markdown": reports[-1].with_suffix(".md").read_text(),
        "written": written,
        "late": late,
        "backup_started": backup_started,
        "backed_up": backed_up,
        "wall_seconds": wall_seconds,
        "drill_dir": drill_dir,
    }


def checks_named(report: dict, host: str, name: str) -> list[dict]:
    return [check for check in report["checks"] if check["host"] == host and check["name"] == name]


def test_the_drill_passes_every_check_and_removes_its_hosts(drill):
    assert drill["process"].returncode == 0, drill["process"].stderr[-4000:]
    report = drill["report"]
    failed = [check for check in report["checks"] if not check["ok"]]
    assert report["passed"] and not failed, failed
    assert sorted(report["hosts"]) == ["db1", "web1", "web2"]
    assert sandbox.labelled("container", DRILL_SANDBOX) == []
    assert "# Drill of sandbox: PASSED" in drill["markdown"]


def test_the_drill_recovers_the_archive_and_serves_the_record_written_after_the_backups(drill):
    report = drill["report"]
    assert report["from"] == "archive" and report["archive_not_drilled"] == []
    for host in ("web1", "web2"):
        (served,) = checks_named(report, host, "a known record is served over HTTPS")
        assert served["ok"] and served["detail"] == f"GET /api/links/{drill['late'][host]['id']}: HTTP 200"
    for host in ("web1", "db1"):
        (recovered,) = checks_named(report, host, "PostgreSQL recovered from the vault's archive and accepts writes")
        assert recovered["ok"], recovered
        assert checks_named(report, host, "db-links: row counts equal the manifest") == []  # no dump restored
    (files,) = checks_named(report, "web1", "restored files are in place")
    assert files["ok"] and not files["detail"].startswith("0 files")  # the upload came back


def test_the_drill_restored_each_jobs_newest_complete_run_the_one_this_backup_made(drill):
    environment = load_environment(REPOSITORY / "inventories" / "sandbox.yml")
    environment.sandbox_name = SANDBOX_NAME
    started = datetime.fromisoformat(drill["report"]["started"])
    restored = {(entry["host"], entry["job"]): entry["run"] for entry in drill["report"]["data"]}
    assert set(restored) == {("web1", "archive"), ("web1", "files"), ("web2", "files"), ("db1", "archive")}
    for (host, job), run in restored.items():
        if job == "archive":
            continue
        runs = ask_vault(environment, "runs", "--client", host)["runs"]
        complete = [entry for entry in runs if entry["job"] == job and entry["complete"]]
        newest = [entry for entry in complete if datetime.fromisoformat(entry["time"]) <= started][-1]
        assert run == newest["run"], (host, job)
        assert datetime.fromisoformat(newest["time"]) >= drill["backup_started"], (host, job)  # not an older one


def test_the_reported_rpo_and_rto_are_true(drill):
    report = drill["report"]
    started = datetime.fromisoformat(report["started"])
    # every restored files run was taken between the test's backup start and end, so its age at drill time is
    # bounded; nothing changed in the sources' files since (the late writes are records), so those runs lost
    # nothing, and the archive lost nothing committed before the drill: the RPO is 0, however old the runs
    files = [entry for entry in report["data"] if entry["job"] == "files"]
    assert {entry["host"] for entry in files} == {"web1", "web2"}
    for entry in files:
        assert (started - drill["backed_up"]).total_seconds() - 2 <= entry["run_age_seconds"], entry
        assert entry["run_age_seconds"] <= (started - drill["backup_started"]).total_seconds() + 2, entry
        assert entry["age_seconds"] == 0, entry
        assert entry["age_because"] == "the source's files had not changed since this run began", entry
    assert report["rpo_seconds"] == 0
    archive = {entry["host"]: entry for entry in report["data"] if entry["job"] == "archive"}
    for host, database_host in (("web1", "web1"), ("web2", "db1")):
        written = datetime.fromisoformat(drill["late"][host]["created_at"])
        entry = archive[database_host]
        # the source's newest commit at drill start is at least the late write; the restored copy reaches it
        assert datetime.fromisoformat(entry["archive"]["source_newest_commit"]) >= written, entry
        assert datetime.fromisoformat(entry["snapshot_time"]) >= written and entry["age_seconds"] == 0, entry
    steps = report["steps"]
    assert {"create hosts", "prepare", "provision", "restore data", "start the app", "verify"} <= set(steps)
    assert all(seconds >= 0 for seconds in steps.values()) and steps["provision"] > 0 and steps["verify"] > 0
    assert abs(report["rto_seconds"] - sum(steps.values())) < 0.5
    assert report["rto_seconds"] <= drill["wall_seconds"]
    # the RTO is the time from the drill's first step to the end of its checks, as its own progress lines stamp
    # them: nothing before the hosts' removal is left out of it, whatever the pings, the teardown and the report take
    assert (
        abs(report["rto_seconds"] - progress_seconds(drill["process"].stderr, "drill of ", "removing the drill's")) < 1
    )


def progress_seconds(stderr: str, first: str, last: str) -> float:
    """Given phoenix's progress lines (`[phoenix   12.3s] message`), returns the seconds from the line beginning
    with `first` to the one beginning with `last`."""
    stamps = {}
    for line in stderr.splitlines():
        match = re.match(r"\[phoenix\s+([0-9.]+)s\] (.*)", line)
        if match:
            for prefix in (first, last):
                if match.group(2).startswith(prefix):
                    stamps.setdefault(prefix, float(match.group(1)))
    return stamps[last] - stamps[first]


def test_history_and_status_show_the_last_drill(drill):
    history = phoenix("drill", "--history", drill_dir=drill["drill_dir"])
    assert history.returncode == 0
    line = history.stdout.splitlines()[-1]
    assert line.startswith(drill["report"]["started"][:19]) and " passed " in line

    status = phoenix(
        *from_runbook(runbook.PHOENIX, runbook.status), "--json", drill_dir=drill["drill_dir"], timeout=120
    )
    document = json.loads(status.stdout)
    assert status.returncode == 0, document["flags"]
    assert document["drill"].startswith(f"last drill: {drill['report']['started'][:16].replace('T', ' ')}")
    assert " passed, RTO " in document["drill"]


def test_a_host_without_backups_is_refused_before_any_container_starts(drill):
    process = phoenix(*from_runbook(runbook.PHOENIX, runbook.drill), "--host", "vault1", drill_dir=drill["drill_dir"])
    assert process.returncode == 2
    assert "--host vault1: it has no backups on sandbox's vault to restore" in process.stderr
    assert sandbox.labelled("container", DRILL_SANDBOX) == []


def test_the_drill_is_shared_on_the_vault_and_the_dashboard_shows_it(drill, tmp_path):
    started = drill["report"]["started"]
    # a colleague's machine: no local history at all, the same last drill from the vault
    status = phoenix(
        *from_runbook(runbook.PHOENIX, runbook.status), "--json", drill_dir=tmp_path / "elsewhere", timeout=120
    )
    assert json.loads(status.stdout)["drill"].startswith(f"last drill: {started[:16].replace('T', ' ')}")

    page = tmp_path / "dashboard.html"
    report = phoenix(
        *from_runbook(runbook.PHOENIX, runbook.report), "--output", str(page), drill_dir=tmp_path / "elsewhere"
    )
    assert report.returncode == 0, report.stdout + report.stderr[-3000:]
    text = page.read_text()
    assert '<div id="drill" class="ok">' in text and '<span class="badge">PASSED</span>' in text
    for host, job in (("web1", "db-links"), ("web1", "files"), ("web2", "files"), ("db1", "db-links")):
        assert f'<tr class="ok" data-host="{host}" data-job="{job}">' in text, (host, job)
    assert 'id="rto-total"' in text and 'id="size-web1-db-links"' in text  # sizes read from the real vault
    (drill_page,) = drill["drill_dir"].glob("sandbox-*.html")
    assert '<span class="badge">PASSED</span>' in drill_page.read_text()
