"""The vault's check moves an object restic cannot read out of the way and checks the rest."""

from __future__ import annotations

import json
import subprocess

import pytest

from phoenix.remote import vault
from phoenix.remote.runs import run_tags

GARBAGE = "0" * 64
# restic 0.14's words, as `restic check` prints them for garbage POSTed to snapshots/000...0
UNREADABLE = "could not load snapshot [null]: load <snapshot/0000000000>: invalid data returned\n"
FATAL = "error: load <snapshot/0000000000>: invalid data returned\nFatal: repository contains errors\n"


def snapshot(snapshot_id: str, run: str, part: str) -> dict:
    tags = run_tags("web1", {"name": "files", "kind": "files"}, "scheduled", run, part, "")
    return {"id": snapshot_id, "time": "2026-11-20T01:00:00Z", "hostname": "web1", "tags": tags}


class CheckingRestic:
    """A repository whose `restic check` fails while the garbage snapshot file is in it."""

    def __init__(self, listing, repository):
        self.listing = listing
        self.repository = repository
        self.commands: list[tuple] = []

    def json(self, *arguments):
        return self.listing

    def run(self, *arguments, check=True, input=None):
        self.commands.append(arguments)
        if arguments[0] != "check":
            return subprocess.CompletedProcess(arguments, 0, "", "")
        if (self.repository / "snapshots" / GARBAGE).exists():
            return subprocess.CompletedProcess(arguments, 1, "check snapshots, trees and blobs\n", UNREADABLE + FATAL)
        return subprocess.CompletedProcess(arguments, 0, "no errors were found\n", "")


@pytest.fixture
def vault_with_garbage(monkeypatch, vault_config):
    the_vault = vault.Vault(vault_config("web1"))
    snapshots = the_vault.repository("web1") / "snapshots"
    snapshots.mkdir(parents=True)
    (snapshots / GARBAGE).write_bytes(b"garbage a client POSTed")
    (snapshots / ("ab" * 32)).write_bytes(b"a real snapshot")
    repository = CheckingRestic(
        [snapshot("a1", "r-1", "data"), snapshot("a2", "r-1", "manifest")], the_vault.repository("web1")
    )
    monkeypatch.setattr(vault.Vault, "restic", lambda self, client, lock=True: repository)
    monkeypatch.setattr(vault, "verify_run", lambda restic, run: "")
    the_vault.save_pins("web1", {})
    return the_vault


def test_a_garbage_snapshot_is_quarantined_logged_and_the_rest_still_verified(vault_with_garbage, capsys):
    assert vault.main_with(vault_with_garbage, ["check", "--client", "web1"]) == 0

    snapshots = vault_with_garbage.repository("web1") / "snapshots"
    assert sorted(path.name for path in snapshots.iterdir()) == ["ab" * 32]
    (moved,) = (vault_with_garbage.data_dir / "quarantine" / "web1").iterdir()
    assert moved.name.endswith(f"-snapshots-{GARBAGE}") and moved.read_bytes() == b"garbage a client POSTed"
    state = vault_with_garbage.state("web1")
    assert state["checks"][0]["ok"] and "r-1" in state["verified"]
    assert state["checks"][0]["quarantined"][0]["object"] == f"snapshots/{GARBAGE}"
    log = (vault_with_garbage.data_dir / "log" / "retention.log").read_text()
    assert f"[web1] QUARANTINED snapshots/{GARBAGE}: restic cannot read it (" in log
    assert "invalid data returned" in log and str(moved) in log

    capsys.readouterr()
    assert vault.main_with(vault_with_garbage, ["status"]) == 0
    listed = json.loads(capsys.readouterr().out)["clients"]["web1"]["quarantined"]
    assert [(entry["object"], entry["path"]) for entry in listed] == [(f"snapshots/{GARBAGE}", str(moved))]


def test_the_next_check_passes_and_a_reviewed_object_leaves_the_status(vault_with_garbage, capsys):
    vault.main_with(vault_with_garbage, ["check", "--client", "web1"])
    assert vault.main_with(vault_with_garbage, ["check", "--client", "web1"]) == 0
    for moved in (vault_with_garbage.data_dir / "quarantine" / "web1").iterdir():
        moved.unlink()  # the admin looked at it and deleted it
    capsys.readouterr()
    vault.main_with(vault_with_garbage, ["status"])
    assert json.loads(capsys.readouterr().out)["clients"]["web1"]["quarantined"] == []


def test_damage_restic_names_no_object_for_stays_a_failed_check(vault_with_garbage, monkeypatch):
    damaged = subprocess.CompletedProcess(("check",), 1, "", "Pack ID does not match, want 4f2d, got 9a1c\n")
    restic = vault_with_garbage.restic("web1")
    monkeypatch.setattr(restic, "run", lambda *arguments, check=True, input=None: damaged)

    assert vault.main_with(vault_with_garbage, ["check", "--client", "web1"]) == 1
    assert not vault_with_garbage.state("web1")["checks"][0]["ok"]
    assert not (vault_with_garbage.data_dir / "quarantine").exists()


def test_phoenix_status_flags_a_quarantined_object_and_lists_an_ignored_pin_tag():
    from phoenix import status

    entry = {
        "object": f"snapshots/{GARBAGE}",
        "problem": "load <snapshot/0000000000>: invalid data returned",
        "time": "2026-11-30T06:03:46+00:00",
        "path": f"/var/lib/phoenix-vault/quarantine/web1/20261130T060346Z-snapshots-{GARBAGE}",
    }
    assert status.quarantine_flag("web1", entry) == (
        f"web1: QUARANTINED snapshots/{GARBAGE} at 2026-11-30 06:03: the check could not read it"
        " (load <snapshot/0000000000>: invalid data returned); the rest was checked. It is kept on the vault as"
        f" /var/lib/phoenix-vault/quarantine/web1/20261130T060346Z-snapshots-{GARBAGE}: delete it there once reviewed"
    )
    report = {"clients": {"web1": {"ignored_pin_tags": [{"job": "files", "run": "r-1", "tag": "attacker"}]}}}
    assert status.ignored_pin_lines(report) == [
        "web1/files run r-1: pin tag 'attacker' written by the server itself is ignored"
        " (not a pin: pins are made from the control machine, `phoenix pin`)"
    ]
