"""A drill's real RPO of an archived database: the source's newest commit at drill start against the restored copy."""

from __future__ import annotations

import pytest

from phoenix import archive_rpo

RECOVERED = {
    "backup": "20261121T020000",
    "backup_end": "2026-11-21T02:00:30+00:00",
    "target": "the newest point the archive holds",
    "newest_transaction": "2026-11-21 11:59:58.5+00",
}


@pytest.mark.parametrize(
    "source_newest,rpo",
    [
        ("2026-11-21T11:59:58.500000+00:00", 0),  # the copy holds the source's newest commit
        ("2026-11-21T11:59:40+00:00", 0),  # and more: commits after the drill started came back too
        ("2026-11-21T12:00:41.4+00:00", 43),  # the last 43 s of commits did not reach the copy
        ("2026-11-21T13:00:41.4+01:00", 43),  # the same moment in another zone
    ],
)
def test_the_rpo_is_how_much_later_the_sources_newest_commit_was_than_the_restored_copys(source_newest, rpo):
    assert archive_rpo.rpo_seconds({"newest_commit": source_newest, "error": ""}, RECOVERED) == rpo


def test_a_copy_with_no_transaction_after_its_base_backup_reaches_the_base_backups_end():
    recovered = {**RECOVERED, "newest_transaction": ""}
    assert archive_rpo.rpo_seconds({"newest_commit": "2026-11-21T02:00:00+00:00"}, recovered) == 0
    assert archive_rpo.rpo_seconds({"newest_commit": "2026-11-21T02:01:00+00:00"}, recovered) == 30


def test_an_unknown_newest_commit_gives_an_unknown_rpo_and_says_why():
    source = archive_rpo.parse_newest_commit(
        "db1", 1, "", "ERROR:  could not get commit timestamp data\nHINT:  Make sure ... track_commit_timestamp\n"
    )
    entry = archive_rpo.archive_entry("db1", RECOVERED, source)
    assert entry["age_seconds"] is None
    assert entry["archive"]["unknown_because"] == (
        "db1 keeps no commit times (track_commit_timestamp is off: converge it with deploy.py)"
    )
    assert archive_rpo.parse_newest_commit("db1", 0, "\n", "")["error"] == (
        "db1 names no commit since track_commit_timestamp was turned on"
    )
    assert archive_rpo.parse_newest_commit("db1", 255, "", "ssh: connect to host db1 port 22: Connection refused\n")[
        "error"
    ] == ("db1 did not say its newest commit: ssh: connect to host db1 port 22: Connection refused")


def test_a_known_newest_commit_is_kept_with_its_zone():
    source = archive_rpo.parse_newest_commit("db1", 0, "2026-11-21 12:00:41.4+01\n", "")
    assert source == {"newest_commit": "2026-11-21T12:00:41.400000+01:00", "error": ""}
    entry = archive_rpo.archive_entry("db1", RECOVERED, source)
    assert entry["job"] == "archive" and entry["snapshot_time"] == "2026-11-21T11:59:58.500000+00:00"
    assert entry["age_seconds"] == 0 and entry["archive"]["source_newest_commit"] == source["newest_commit"]
