"""The drill's real RPO of the files: 0 when the source's files were, at drill start, what the restored run holds."""

from __future__ import annotations

import argparse
import json

import pytest

from phoenix import files_rpo
from phoenix.inventory import load_environment
from phoenix.remote import backup
from phoenix.remote.file_changes import fingerprint, write_baseline

UNCHANGED = {"baseline": "run 20261203T101500Z-abcdef", "unchanged": True, "error": ""}


def test_files_as_the_restored_run_found_them_lost_nothing_however_old_the_run():
    assert files_rpo.real_age("20261203T101500Z-abcdef", 7200, UNCHANGED) == (
        0,
        "the source's files had not changed since this run began",
    )


@pytest.mark.parametrize(
    "state",
    [
        {**UNCHANGED, "unchanged": False},  # changed since: what changed is lost
        {**UNCHANGED, "baseline": "run 20261203T113000Z-123456"},  # unchanged since another run than the one restored
        {**UNCHANGED, "baseline": "the watch's first look"},  # data no run holds for sure
        {"baseline": "", "unchanged": False, "error": "web1 did not answer within 60s"},
        None,  # not asked: no watch on that host
    ],
    ids=["changed", "another run", "first look", "no answer", "not asked"],
)
def test_otherwise_the_run_age_stays_the_bound(state):
    assert files_rpo.real_age("20261203T101500Z-abcdef", 7200, state) == (7200, "the run's age at drill time")


def test_an_answer_is_read_and_a_failure_is_named_with_the_hosts_last_words():
    answer = json.dumps({"job": "files", "baseline": "run 20261203T101500Z-abcdef", "unchanged": True})
    assert files_rpo.parse_file_state("web1", 0, answer + "\n", "") == UNCHANGED
    refused = files_rpo.parse_file_state("web1", 2, "", "phoenix-backup: invalid choice: 'watch-state'\n")
    assert refused == {
        "baseline": "",
        "unchanged": False,
        "error": "web1 did not say whether its files changed: phoenix-backup: invalid choice: 'watch-state'",
    }
    assert files_rpo.parse_file_state("web1", 0, "[]", "")["error"].startswith("web1 did not say")


def test_only_hosts_whose_files_job_has_data_paths_and_a_watch_are_asked(write_inventory, shop_inventory_text):
    hosts = load_environment(write_inventory()).hosts
    assert files_rpo.watched_hosts(hosts, ["web1", "db1"]) == ["web1"]  # db1's files job holds /etc alone
    off = shop_inventory_text.replace(
        "roles: [nginx, app]\n", "roles: [nginx, app]\n    backup: {files: {watch_seconds: 0}}\n"
    )
    assert files_rpo.watched_hosts(load_environment(write_inventory(off)).hosts, ["web1", "db1"]) == []


def test_the_host_says_whether_its_files_are_as_its_last_run_found_them(tmp_path, capsys):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "a.pdf").write_bytes(b"a")

    class Config:
        state_dir = tmp_path / "state"
        jobs = {"files": {"name": "files", "kind": "files", "watch_paths": [str(uploads)]}}

        def job(self, name):
            return self.jobs[name]

    write_baseline(Config.state_dir, "files", fingerprint([str(uploads)]), "run 20261203T101500Z-abcdef")
    backup.command_watch_state(Config(), argparse.Namespace(job="files"))
    (uploads / "b.pdf").write_bytes(b"b")
    backup.command_watch_state(Config(), argparse.Namespace(job="files"))

    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first == {"job": "files", "baseline": "run 20261203T101500Z-abcdef", "unchanged": True}
    assert second["unchanged"] is False
