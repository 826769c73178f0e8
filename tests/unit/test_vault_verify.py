"""The vault's frequent verify (`phoenix-vault check --new`): new runs are checked minutes after
they land, a bad one is marked failed, and the weekly check tries it again."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime

import pytest

from phoenix.remote import vault
from phoenix.remote.runs import Run


def a_run(run_id: str, hour: int, complete: bool = True) -> Run:
    return Run(
        id=run_id, host="web1", job="db-links", kind="db", trigger="scheduled",
        time=datetime(2026, 11, 20, hour, tzinfo=UTC), pin_tag="",
        data={"id": f"{run_id}-data"}, manifest={"id": f"{run_id}-manifest"} if complete else None,
    )  # fmt: skip


RUNS = [a_run("r1", 1), a_run("r2", 2), a_run("r3", 3, complete=False), a_run("r4", 4)]
BAD = {"r2": "checksum mismatch: stored 10 bytes, manifest says 12"}


@pytest.fixture
def the_vault(tmp_path, monkeypatch, vault_config):
    path = vault_config("web1")
    (tmp_path / "repos").mkdir()  # status reports the free space where the repositories are
    the_vault = vault.Vault(path)
    the_vault.checked, the_vault.bad = [], dict(BAD)  # what verify_run was asked, what it finds bad
    monkeypatch.setattr(vault.Vault, "runs", lambda self, client, lock=True: RUNS)
    monkeypatch.setattr(
        vault, "verify_run", lambda restic, run: the_vault.checked.append(run.id) or the_vault.bad.get(run.id, "")
    )
    return the_vault


def listed_runs(the_vault, capsys) -> dict[str, dict]:
    capsys.readouterr()
    assert vault.main_with(the_vault, ["runs", "--client", "web1"]) == 0
    return {run["run"]: run for run in json.loads(capsys.readouterr().out)["runs"]}


def test_check_new_verifies_new_complete_runs_and_marks_a_bad_one_failed(the_vault, capsys):
    assert vault.main_with(the_vault, ["check", "--new"]) == 1  # a run failed: the timer's unit says so

    runs = listed_runs(the_vault, capsys)
    assert the_vault.checked == ["r1", "r2", "r4"]  # the incomplete r3 is never verified
    assert [runs[run]["verified"] for run in ("r1", "r2", "r3", "r4")] == [True, False, False, True]
    assert runs["r2"]["failed"] == BAD["r2"] and runs["r4"]["failed"] == ""
    assert the_vault.state("web1")["checks"] == []  # the weekly check's record stays the weekly check's


def test_check_new_checks_each_run_once_and_leaves_failed_ones_to_the_weekly_check(the_vault, monkeypatch):
    vault.main_with(the_vault, ["check", "--new"])
    the_vault.checked.clear()

    assert vault.main_with(the_vault, ["check", "--new"]) == 0
    assert the_vault.checked == []

    the_vault.bad.clear()  # the weekly check finds r2 good this time (it was a read error, say)
    monkeypatch.setattr(vault.Restic, "run", lambda self, *arguments, **options: None)
    monkeypatch.setattr(vault, "_checked", lambda restic, subset: subprocess.CompletedProcess([], 0, "", ""))
    assert vault.main_with(the_vault, ["check"]) == 0
    assert the_vault.checked == ["r2"]
    assert "r2" in the_vault.state("web1")["verified"] and the_vault.state("web1")["failed"] == {}


def test_check_new_skips_its_pass_while_a_check_or_retention_runs(the_vault, capsys):
    with the_vault.lock("work"):
        assert vault.main_with(the_vault, ["check", "--new"]) == 0
    assert the_vault.checked == []
    assert "this pass is skipped" in capsys.readouterr().out


def test_a_hold_set_while_a_pass_verifies_is_kept(the_vault, monkeypatch):
    def verify_while_upgrade_py_holds(restic, run):
        if run.id == "r1":
            vault.main_with(the_vault, ["hold", "--client", "web1", "--reason", "upgrade of web1"])
        return ""

    monkeypatch.setattr(vault, "verify_run", verify_while_upgrade_py_holds)

    vault.main_with(the_vault, ["check", "--new"])

    state = the_vault.state("web1")
    assert state["hold"]["reason"] == "upgrade of web1" and set(state["verified"]) == {"r1", "r2", "r4"}


def test_status_gives_each_job_the_time_its_unverified_runs_wait_since_and_its_newest_bad_run(the_vault, capsys):
    the_vault.bad = {"r4": "manifest names another snapshot"}
    vault.main_with(the_vault, ["check", "--new"])
    capsys.readouterr()

    assert vault.main_with(the_vault, ["status"]) == 0

    job = json.loads(capsys.readouterr().out)["clients"]["web1"]["jobs"]["db-links"]
    assert (job["latest"]["run"], job["latest_verified"]["run"]) == ("r4", "r2")
    assert job["unverified_since"] == RUNS[3].time.isoformat()
    assert job["latest_failed"]["run"] == "r4" and job["latest_failed"]["problem"] == "manifest names another snapshot"
