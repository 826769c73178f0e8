"""Pins live on the vault: a pin= tag a server writes into its own snapshot pins nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from phoenix.remote import vault
from phoenix.remote.runs import run_tags

JOB = {"name": "files", "kind": "files"}


def snapshot(snapshot_id: str, hour: int, run: str, part: str, pin: str = "") -> dict:
    return {
        "id": snapshot_id,
        "time": f"2026-11-20T{hour:02d}:00:00Z",
        "hostname": "web1",
        "tags": run_tags("web1", JOB, "scheduled", run, part, pin),
    }


class FakeRestic:
    """The client's repository as `restic snapshots --json` lists it."""

    def __init__(self, listing: list[dict]):
        self.listing = listing
        self.commands: list[tuple] = []

    def json(self, *arguments):
        assert arguments[0] == "snapshots"
        return self.listing

    def run(self, *arguments, check=True, input=None):
        self.commands.append(arguments)


@pytest.fixture
def web1_vault(tmp_path, monkeypatch, vault_config):
    vault_config("web1")
    (tmp_path / "repos" / "web1").mkdir(parents=True)  # as the vault role and init leave them
    repository = FakeRestic(
        [
            snapshot("a1", 1, "r-old", "data"), snapshot("a2", 1, "r-old", "manifest"),
            snapshot("b1", 2, "r-mid", "data"), snapshot("b2", 2, "r-mid", "manifest"),
            snapshot("c1", 3, "r-new", "data"), snapshot("c2", 3, "r-new", "manifest"),
        ]
    )  # fmt: skip
    monkeypatch.setattr(vault.Vault, "restic", lambda self, client, lock=True: repository)
    monkeypatch.setattr(vault, "now", lambda: datetime(2026, 11, 20, 12, tzinfo=UTC))
    the_vault = vault.Vault(tmp_path / "vault.json")
    the_vault.save_pins("web1", {})  # as `phoenix-vault init` leaves a new repository
    the_vault.repository_listing = repository
    return the_vault


def server_tags_its_own_snapshot(the_vault, run: str, reason: str) -> None:
    """What `restic tag --add pin=...` through the append-only server leaves: a tagged copy."""
    listing = the_vault.repository_listing.listing
    original = next(entry for entry in listing if f"run={run}" in entry["tags"] and "part=data" in entry["tags"])
    copy = {**original, "id": original["id"] + "-copy", "original": original["id"]}
    copy["tags"] = [*original["tags"], f"pin={reason}"]
    listing.append(copy)


def answer(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_a_pin_tag_written_by_the_server_is_not_listed_not_kept_and_shown_as_ignored(web1_vault, capsys):
    server_tags_its_own_snapshot(web1_vault, "r-old", "attacker")

    assert vault.main_with(web1_vault, ["pins"]) == 0
    assert answer(capsys)["pins"] == []
    assert vault.main_with(web1_vault, ["status"]) == 0
    client = answer(capsys)["clients"]["web1"]
    assert client["jobs"]["files"]["pins"] == []
    assert [(entry["run"], entry["tag"]) for entry in client["ignored_pin_tags"]] == [("r-old", "attacker")]

    state = web1_vault.state("web1")
    state["verified"] = {run_id: "2026-11-20T04:00:00+00:00" for run_id in ("r-old", "r-mid", "r-new")}
    web1_vault.save_state("web1", state)
    assert vault.main_with(web1_vault, ["retain", "--dry-run"]) == 0
    log = (web1_vault.data_dir / "log" / "retention.log").read_text()
    assert "r-old files 2026-11-20T01:00:00+00:00: would forget" in log


def test_a_pin_asked_by_the_control_machine_is_recorded_listed_kept_and_released_with_who_and_why(web1_vault, capsys):
    assert vault.main_with(web1_vault, ["pin", "r-old", "--reason", "before 2.0", "--by", "ana@laptop"]) == 0
    assert answer(capsys) == {"client": "web1", "run": "r-old", "pin": "before 2.0", "by": "ana@laptop"}

    assert vault.main_with(web1_vault, ["pins"]) == 0
    assert [(pin["run"], pin["pin"]) for pin in answer(capsys)["pins"]] == [("r-old", "before 2.0")]
    state = web1_vault.state("web1")
    state["verified"] = {run_id: "2026-11-20T04:00:00+00:00" for run_id in ("r-old", "r-mid", "r-new")}
    web1_vault.save_state("web1", state)
    assert vault.main_with(web1_vault, ["retain", "--dry-run"]) == 0
    log = (web1_vault.data_dir / "log" / "retention.log").read_text()
    assert "r-old files 2026-11-20T01:00:00+00:00: keep (pinned: before 2.0)" in log
    assert "pinned web1/files run r-old ('before 2.0') by ana@laptop" in log

    assert vault.main_with(web1_vault, ["unpin", "r-old", "--reason", "2.0 is fine", "--by", "ana@laptop"]) == 0
    capsys.readouterr()
    assert vault.main_with(web1_vault, ["pins"]) == 0
    assert answer(capsys)["pins"] == []


def test_pinning_names_a_run_the_vault_has(web1_vault, capsys):
    assert vault.main_with(web1_vault, ["pin", "r-gone", "--reason", "x"]) == 1
    assert "pin: no run matches 'r-gone'" in capsys.readouterr().err
    assert vault.main_with(web1_vault, ["pin", "r-old", "--reason", " "]) == 1
    assert "--reason is required" in capsys.readouterr().err


def test_a_vault_without_a_pin_record_adopts_the_tags_once_and_never_again(web1_vault, capsys):
    web1_vault.pins_path("web1").unlink()  # state written before pins moved to the vault
    server_tags_its_own_snapshot(web1_vault, "r-old", "before 2.0")
    assert vault.main_with(web1_vault, ["pins"]) == 0
    assert [(pin["run"], pin["pin"]) for pin in answer(capsys)["pins"]] == [("r-old", "before 2.0")]

    server_tags_its_own_snapshot(web1_vault, "r-mid", "attacker")
    assert vault.main_with(web1_vault, ["pins"]) == 0
    assert [pin["run"] for pin in answer(capsys)["pins"]] == ["r-old"]
