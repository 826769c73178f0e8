"""`phoenix status`: the gap between a job's latest and latest verified run, and runs the vault found bad."""

from __future__ import annotations

import json

import pytest

from phoenix import backup_plan
from phoenix import status as status_verb
from phoenix.errors import PhoenixError
from phoenix.inventory import load_environment
from phoenix.status import evaluate, render

NOW = "2026-11-20T14:00:00+00:00"


@pytest.fixture
def shop(write_inventory, monkeypatch):
    monkeypatch.setattr(status_verb, "host_report", lambda environment: {})  # these tests are about the vault's word
    return load_environment(write_inventory())


def job_entry(latest: str, verified: str | None, unverified_since: str | None, failed: dict | None = None) -> dict:
    return {
        "kind": "db",
        "latest": {"run": "r-latest", "time": latest, "trigger": "scheduled"},
        "latest_verified": verified and {"run": "r-verified", "time": verified, "trigger": "scheduled"},
        "latest_failed": failed,
        "unverified_since": unverified_since,
        "pins": [],
        "incomplete": 0,
    }


def vault_report(shop, **db1_job: dict) -> dict:
    """A `phoenix-vault status` answer: every job fresh and verified, db1's database job as given."""
    check = {"time": "2026-11-15T04:00:00+00:00", "ok": True, "problems": {}}
    fresh = job_entry("2026-11-20T13:00:00+00:00", "2026-11-20T13:00:00+00:00", None)
    clients = {}
    for name, host in shop.hosts.items():
        if backup_plan.uses_vault(host):
            jobs = backup_plan.jobs(host, backup_plan.databases_served(name, shop.hosts))
            clients[name] = {"jobs": {job["name"]: dict(fresh) for job in jobs}, "last_check": check}
    database_job = next(job for job in clients["db1"]["jobs"] if job != "files")
    clients["db1"]["jobs"][database_job] = job_entry(**db1_job)
    return {"now": NOW, "clients": clients}


def db1_row(shop, report: dict):
    rows, _ = evaluate(shop, report)
    return next(row for row in rows if row.host == "db1" and row.job != "files")


def test_a_run_waiting_minutes_for_the_vaults_verify_shows_its_gap_and_is_no_problem(shop):
    report = vault_report(
        shop, latest="2026-11-20T13:50:00+00:00", verified="2026-11-19T13:50:00+00:00",
        unverified_since="2026-11-20T13:50:00+00:00",
    )  # fmt: skip

    row = db1_row(shop, report)

    assert row.flags == []
    line = next(line for line in render(*evaluate(shop, report), report).splitlines() if line.startswith("db1"))
    assert " 10m " in line  # the gap column: the latest run has waited 10 minutes


def test_a_gap_beyond_the_vaults_verify_alert_hours_is_flagged(shop):
    report = vault_report(
        shop, latest="2026-11-20T13:00:00+00:00", verified="2026-11-19T02:00:00+00:00",
        unverified_since="2026-11-20T10:30:00+00:00",
    )  # fmt: skip

    row = db1_row(shop, report)

    assert row.flags == ["not verified for 3.5h (vault.verify_alert_hours: 3): is the vault's verify timer running?"]


def test_a_run_the_vault_found_bad_is_flagged_with_its_problem(shop):
    failed = {"run": "r9", "time": "2026-11-20T13:30:00+00:00", "trigger": "scheduled", "problem": "checksum mismatch"}
    report = vault_report(
        shop, latest="2026-11-20T13:30:00+00:00", verified="2026-11-20T02:00:00+00:00",
        unverified_since="2026-11-20T13:30:00+00:00", failed=failed,
    )  # fmt: skip

    row = db1_row(shop, report)

    assert row.flags == ["run r9 (2026-11-20 13:30) failed the vault's check: checksum mismatch"]


def drill_record(started: str, passed: bool) -> dict:
    return {
        "environment": "shop", "started": started, "passed": passed, "rto_seconds": 60.0, "rpo_seconds": 3600.0,
        "steps": {"verify": 3.0}, "checks": [], "report": "elsewhere/shop.json", "failed_checks": int(not passed),
    }  # fmt: skip


def test_status_shows_the_last_drill_a_colleague_recorded_on_the_vault(shop, monkeypatch, tmp_path):
    report = vault_report(
        shop, latest="2026-11-20T13:00:00+00:00", verified="2026-11-20T13:00:00+00:00", unverified_since=None
    )
    monkeypatch.setattr(status_verb, "vault_report", lambda environment: report)
    monkeypatch.setattr(status_verb, "archive_report", lambda environment: [])
    shared = [drill_record("2026-11-19T04:00:00+00:00", False)]  # run on another control machine
    monkeypatch.setattr(status_verb, "vault_drills", lambda environment: shared)

    gathered = status_verb.gather(shop, str(tmp_path / "no-local-history"))

    assert gathered.drill_line.startswith("last drill: 2026-11-19 04:00 (34.0h ago) FAILED")
    assert gathered.drill_flags == ["the last drill FAILED (elsewhere/shop.json)"] and gathered.failing


def test_status_falls_back_to_this_machines_drills_when_the_vault_has_no_shared_history(shop, monkeypatch, tmp_path):
    report = vault_report(
        shop, latest="2026-11-20T13:00:00+00:00", verified="2026-11-20T13:00:00+00:00", unverified_since=None
    )
    monkeypatch.setattr(status_verb, "vault_report", lambda environment: report)
    monkeypatch.setattr(status_verb, "archive_report", lambda environment: [])

    def old_vault(environment):
        raise PhoenixError("vault1: `phoenix-vault drills` failed: invalid choice: 'drills'")

    monkeypatch.setattr(status_verb, "vault_drills", old_vault)
    (tmp_path / "history.jsonl").write_text(json.dumps(drill_record("2026-11-20T04:00:00+00:00", True)) + "\n")

    gathered = status_verb.gather(shop, str(tmp_path))

    assert " passed, RTO 60s" in gathered.drill_line
    assert gathered.vault_flags == [
        "the vault's drill history could not be read (vault1: `phoenix-vault drills` failed: invalid choice:"
        " 'drills'); showing this machine's only"
    ]


def test_a_lagging_archive_is_gathered_with_its_line_and_flag_and_fails_the_status(shop, monkeypatch, tmp_path):
    report = vault_report(
        shop, latest="2026-11-20T13:00:00+00:00", verified="2026-11-20T13:00:00+00:00", unverified_since=None
    )
    monkeypatch.setattr(status_verb, "vault_report", lambda environment: report)
    monkeypatch.setattr(
        status_verb, "vault_drills", lambda environment: [drill_record("2026-11-20T04:00:00+00:00", True)]
    )
    lagging = {
        "server": "db1", "received_seconds_ago": 900, "newest": "00000001000000000000001A",
        "current": "00000001000000000000001C", "caught_up": False, "failed_checks": [],
    }  # fmt: skip
    monkeypatch.setattr(status_verb, "archive_report", lambda environment: [lagging])

    gathered = status_verb.gather(shop, str(tmp_path))

    assert gathered.archive == [lagging]
    assert gathered.archive_flags == [
        "archive of db1: archive lag 15m: the newest WAL reached the vault 15m ago and the server has written since"
        " (vault.pitr.max_lag_minutes: 5)"
    ]
    assert gathered.archive_flags[0] in gathered.flags and gathered.failing
