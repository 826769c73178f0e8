"""The vault lists a client's snapshots with restic only when the repository's snapshot files changed: each restic
command pays the repository's key derivation again."""

from __future__ import annotations

import pytest

from phoenix.remote import vault
from phoenix.remote.common import JobError, Restic


@pytest.fixture
def listed(tmp_path, vault_config, monkeypatch):
    """The vault of client web1, whose restic lists one entry per snapshot file; records each listing asked."""
    the_vault = vault.Vault(vault_config("web1"))
    snapshots = the_vault.repository("web1") / "snapshots"
    snapshots.mkdir(parents=True)
    asked = []

    def restic_json(restic, *arguments):
        if not snapshots.is_dir():
            raise JobError("Fatal: unable to open config file: <config/> does not exist")
        asked.append(arguments)
        return [{"id": path.name} for path in sorted(snapshots.iterdir())]

    monkeypatch.setattr(Restic, "json", restic_json)
    return the_vault, snapshots, asked


def test_an_unchanged_repository_is_listed_from_the_last_listing(listed):
    the_vault, snapshots, asked = listed
    (snapshots / "a1").write_text("encrypted")

    first, second = the_vault.snapshot_listing("web1"), the_vault.snapshot_listing("web1", lock=False)

    assert first == second == [{"id": "a1"}]
    assert asked == [("snapshots",)]


def test_a_snapshot_added_or_removed_is_listed_by_restic_again(listed):
    the_vault, snapshots, asked = listed
    (snapshots / "a1").write_text("encrypted")
    the_vault.snapshot_listing("web1")

    (snapshots / "b2").write_text("encrypted")  # a new run
    assert the_vault.snapshot_listing("web1") == [{"id": "a1"}, {"id": "b2"}]
    (snapshots / "a1").unlink()  # forgotten by retention, or rewritten by `restic tag` under a new name
    assert the_vault.snapshot_listing("web1") == [{"id": "b2"}]
    assert len(asked) == 3


def test_a_missing_repository_is_restics_error_and_nothing_is_kept(listed):
    the_vault, snapshots, asked = listed
    snapshots.rmdir()

    with pytest.raises(JobError, match="unable to open config file"):
        the_vault.snapshot_listing("web1")
    assert not (the_vault.data_dir / "state" / "web1.snapshots.json").exists()


def test_the_kept_listing_is_the_vault_users_own(listed):
    the_vault, snapshots, _ = listed
    (snapshots / "a1").write_text("encrypted")
    the_vault.snapshot_listing("web1")

    kept = the_vault.data_dir / "state" / "web1.snapshots.json"
    assert oct(kept.stat().st_mode & 0o777) == "0o640"  # snapshot metadata: hosts, paths, tags
