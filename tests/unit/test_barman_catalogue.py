"""Which of the vault's base backups can recover an archived host's current history (phoenix/barman_catalogue.py)."""

from __future__ import annotations

import gzip
import json
import subprocess

import pytest

from phoenix import barman_catalogue
from phoenix.barman_catalogue import LINEAGE_MARK, Lineage, lsn, parse, parse_history
from phoenix.errors import PhoenixError

# timeline 3's history as PostgreSQL writes it: 1 was left at 0/2D0236A0 (a recovery to a moment), 2 at 0/2E000000
HISTORY_3 = "1\t0/2D0236A0\tbefore 2026-12-03 20:09:58.279682+00\n\n\n2\t0/2E000000\tno recovery target specified\n\n"


def listing(*ids: str) -> str:
    return json.dumps({"db1": [{"backup_id": backup, "status": "DONE"} for backup in ids]})


def test_a_wal_location_is_read_as_postgresql_orders_it():
    assert lsn("0/2D0236A0") == 0x2D0236A0
    assert lsn("1/0") == 1 << 32
    assert lsn("2D/4E620A0") > lsn("1/FFFFFFFF")
    with pytest.raises(ValueError):
        lsn("2D4E620A0")


def test_a_base_backup_lies_on_the_history_only_if_it_ended_before_its_timeline_was_left():
    lineage = parse_history(3, HISTORY_3)

    assert lineage == Lineage(((3, 0x2E000000, None), (2, 0x2D0236A0, 0x2E000000), (1, 0, 0x2D0236A0)))
    assert lineage.holds(1, 0x6000000)  # the first base backup, long before the recovery to a moment
    assert not lineage.holds(1, 0x2D100000)  # timeline 1 after the point the history left it
    assert lineage.holds(2, 0x2D100000)
    assert lineage.holds(3, 0x90000000)  # the newest timeline: anywhere after its start
    assert not lineage.holds(4, 0x1000)  # a timeline the history does not know


def test_a_recovery_to_a_moment_before_its_parent_timeline_began_leaves_that_parent_owning_nothing():
    # timeline 2 began at 0/2E000000 (the disaster's restore); timeline 3 went back to 0/2D0236A0, on timeline 1:
    # PostgreSQL still names 2 its parent, with a switch point before 2's own start
    lineage = parse_history(3, "1\t0/2E000000\tno recovery target specified\n2\t0/2D0236A0\tbefore 2026-12-03\n")

    assert lineage.holds(1, 0x6000000)
    assert not lineage.holds(1, 0x2D100000)  # after the moment gone back to: timeline 3's from there
    assert not lineage.holds(2, 0x2F000000)  # the nightly after the disaster's restore: on the history left
    assert lineage.owner(0x2D100000) == 3


def test_the_backup_taken_after_the_moment_a_recovery_went_back_to_is_marked_off_the_history():
    output = (
        f"{listing('20261203T141347', '20261203T202716', '20261204T013000')}\n{LINEAGE_MARK}\n"
        "backup 20261203T141347 1 0/6000000\n"
        "backup 20261203T202716 1 0/2D2C0000\n"  # the nightly's, on timeline 1 after 0/2D0236A0
        "backup 20261204T013000 3 0/31000000\n"
        f"history 00000003\n{HISTORY_3}"
    )

    backups = parse("db1", "vault1", output)

    assert [backup["on_current_history"] for backup in backups] == [True, False, True]


def test_without_a_history_file_or_a_backup_info_every_backup_counts():
    no_history = f"{listing('a', 'b')}\n{LINEAGE_MARK}\nbackup a 1 0/6000000\n"
    assert [backup["on_current_history"] for backup in parse("db1", "vault1", no_history)] == [True, True]
    no_info = f"{listing('a')}\n{LINEAGE_MARK}\nhistory 00000003\n{HISTORY_3}"
    assert parse("db1", "vault1", no_info)[0]["on_current_history"] is True


def test_an_answer_that_is_not_json_names_the_vault():
    with pytest.raises(PhoenixError, match="vault1: barman list-backups db1 answered no JSON: Traceback"):
        parse("db1", "vault1", f"Traceback (most recent call last)\n{LINEAGE_MARK}\n")


def test_the_catalogue_reads_backup_info_and_the_newest_history_archived_or_streamed(tmp_path, monkeypatch):
    monkeypatch.setattr(barman_catalogue, "BARMAN_HOME", str(tmp_path))
    server = tmp_path / "db1"
    for backup, timeline, end in (("20261203T141347", 1, "0/6000000"), ("20261203T202716", 1, "0/2D2C0000")):
        (server / "base" / backup).mkdir(parents=True)
        (server / "base" / backup / "backup.info").write_text(
            f"backup_label=None\nbegin_xlog=0/5000028\nend_xlog={end}\nstatus=DONE\ntimeline={timeline}\n"
        )
    (server / "wals").mkdir(), (server / "streaming").mkdir()
    (server / "wals" / "00000002.history").write_bytes(gzip.compress(b"1\t0/2D000000\tno recovery target\n"))
    # timeline 3 streamed, not archived yet (Barman's cron moves it within the minute)
    (server / "streaming" / "00000003.history").write_text(HISTORY_3)

    result = subprocess.run(["sh", "-c", barman_catalogue.catalogue_command("db1")], capture_output=True, text=True)

    # no Barman on this machine: its listing is '{}'; the facts come from the files
    assert result.stdout.startswith(f"{{}}\n\n{LINEAGE_MARK}\n"), result.stdout
    facts = result.stdout.split(f"{LINEAGE_MARK}\n", 1)[1]
    assert facts.startswith(
        "backup 20261203T141347 1 0/6000000\nbackup 20261203T202716 1 0/2D2C0000\nhistory 00000003\n"
    )
    assert parse_history(3, facts.split("history 00000003\n", 1)[1]) == parse_history(3, HISTORY_3)

    (server / "streaming" / "00000003.history").unlink()  # archived meanwhile: Barman gzips it
    (server / "wals" / "00000003.history").write_bytes(gzip.compress(HISTORY_3.encode()))
    archived = subprocess.run(["sh", "-c", barman_catalogue.catalogue_command("db1")], capture_output=True, text=True)
    assert parse("db1", "vault1", archived.stdout.replace("{}", listing("20261203T202716"), 1))[0] == {
        "backup_id": "20261203T202716",
        "status": "DONE",
        "on_current_history": False,
    }
