"""The vault's history for the dashboard: each job's backup sizes and store times, and the shared drill history."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest

from phoenix.remote import vault
from phoenix.remote.runs import run_tags

JOB = {"name": "files", "kind": "files"}


def snapshot(snapshot_id: str, time: str, run: str, part: str) -> dict:
    tags = run_tags("web1", JOB, "scheduled", run, part, "")
    return {"id": snapshot_id, "time": time, "hostname": "web1", "tags": tags}


class ManifestRestic:
    """A repository of three runs (the middle one never got its manifest) whose manifests name their sizes."""

    listing = [
        snapshot("a1", "2026-11-20T01:00:00Z", "r-old", "data"),
        snapshot("a2", "2026-11-20T01:00:42.5Z", "r-old", "manifest"),
        snapshot("b1", "2026-11-20T02:00:00Z", "r-cut", "data"),
        snapshot("c1", "2026-11-20T03:00:00Z", "r-new", "data"),
        snapshot("c2", "2026-11-20T03:01:30Z", "r-new", "manifest"),
    ]

    def __init__(self):
        self.dumps: list[str] = []

    def json(self, *arguments):
        return self.listing

    def run(self, *arguments, check=True, input=None):
        assert arguments[0] == "dump"
        self.dumps.append(arguments[1])
        return type("Result", (), {"stdout": json.dumps({"bytes": {"a2": 1000, "c2": 3000}[arguments[1]]})})


@pytest.fixture
def web1_vault(tmp_path, monkeypatch, vault_config):
    repository = ManifestRestic()
    monkeypatch.setattr(vault.Vault, "restic", lambda self, client, lock=True: repository)
    monkeypatch.setattr(vault, "now", lambda: datetime(2026, 11, 20, 12, tzinfo=UTC))
    the_vault = vault.Vault(vault_config("web1"))
    the_vault.save_pins("web1", {})
    the_vault.repository_listing = repository
    return the_vault


def test_backups_lists_complete_runs_with_size_and_store_time_reading_each_manifest_once(web1_vault, capsys):
    assert vault.main_with(web1_vault, ["backups"]) == 0
    found = json.loads(capsys.readouterr().out)["backups"]
    assert [(entry["run"], entry["bytes"], entry["seconds"]) for entry in found] == [
        ("r-old", 1000, 42.5),
        ("r-new", 3000, 90.0),
    ]  # the run without a manifest never counts
    assert vault.main_with(web1_vault, ["backups"]) == 0
    assert json.loads(capsys.readouterr().out)["backups"] == found
    assert web1_vault.repository_listing.dumps == ["a2", "c2"]  # the second time from the vault's own record


def test_backups_keeps_each_jobs_newest_runs(web1_vault, capsys):
    assert vault.main_with(web1_vault, ["backups", "--per-job", "1"]) == 0
    assert [entry["run"] for entry in json.loads(capsys.readouterr().out)["backups"]] == ["r-new"]


def record(**changes) -> str:
    drill = {"environment": "shop", "started": "2026-11-20T10:00:00+00:00", "passed": True, "steps": {"verify": 3.0}}
    return json.dumps({**drill, "checks": [{"host": "web1", "name": "health", "ok": True, "detail": ""}], **changes})


def test_drills_are_appended_and_read_back_oldest_first(web1_vault, monkeypatch, capsys):
    for started in ("2026-11-19T10:00:00+00:00", "2026-11-20T10:00:00+00:00"):
        monkeypatch.setattr("sys.stdin", io.StringIO(record(started=started)))
        assert vault.main_with(web1_vault, ["drill-record"]) == 0
    capsys.readouterr()
    assert vault.main_with(web1_vault, ["drills"]) == 0
    drills = json.loads(capsys.readouterr().out)["drills"]
    assert [drill["started"] for drill in drills] == ["2026-11-19T10:00:00+00:00", "2026-11-20T10:00:00+00:00"]
    assert drills[0]["checks"][0]["name"] == "health" and drills[0]["recorded"] == "2026-11-20T12:00:00+00:00"


@pytest.mark.parametrize(
    "sent,message",
    [
        ("not json", "drill-record: stdin is not JSON"),
        ("[1]", "drill-record: a drill record is a JSON object"),
        (record(passed="yes"), "drill-record: a drill record needs 'passed' (bool)"),
        (record(started="last week"), "drill-record: 'started' is not an ISO 8601 time: 'last week'"),
    ],
)
def test_a_bad_drill_record_is_refused_and_nothing_is_appended(web1_vault, monkeypatch, capsys, sent, message):
    monkeypatch.setattr("sys.stdin", io.StringIO(sent))
    assert vault.main_with(web1_vault, ["drill-record"]) == 1
    assert message in capsys.readouterr().err
    assert not vault.drills_path(web1_vault).exists()
