"""The files job's watch: what counts as a change, and when a look runs the job (restic stands off: the run is
recorded, not made; the e2e test_pitr.py makes real ones)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from phoenix.remote import backup, file_changes, restore
from phoenix.remote.file_changes import (
    RESTORED,
    baseline_path,
    fingerprint,
    read_baseline,
    remove_baseline,
    write_baseline,
)
from phoenix.remote.restore_progress import RestoreProgress
from roles.backup import watch_calendar
from roles.upgrade_plan import timer_units


@pytest.fixture
def uploads(tmp_path) -> Path:
    root = tmp_path / "uploads"
    (root / "7").mkdir(parents=True)
    (root / "7" / "report.pdf").write_bytes(b"first")
    (root / "8").mkdir()
    return root


def test_the_same_tree_gives_the_same_fingerprint_and_reading_it_changes_nothing(uploads):
    before = fingerprint([str(uploads)])
    (uploads / "7" / "report.pdf").read_bytes()
    assert fingerprint([str(uploads)]) == before


@pytest.mark.parametrize(
    "change",
    [
        lambda root: (root / "8" / "new.png").write_bytes(b"upload"),
        lambda root: (root / "7" / "report.pdf").write_bytes(b"other"),  # same size, new content
        lambda root: (root / "7" / "report.pdf").unlink(),
        lambda root: (root / "7" / "report.pdf").rename(root / "8" / "report.pdf"),
        lambda root: (root / "7" / "report.pdf").chmod(0o600),
        lambda root: (root / "9" / "deep").mkdir(parents=True),
    ],
    ids=["added", "rewritten", "removed", "moved", "chmod", "new directory"],
)
def test_each_kind_of_change_anywhere_in_the_tree_changes_the_fingerprint(uploads, change):
    os.utime(uploads / "7" / "report.pdf", ns=(1, 1))  # an old file: a rewrite of the same size must show
    before = fingerprint([str(uploads)])
    change(uploads)
    assert fingerprint([str(uploads)]) != before


def test_an_absent_path_is_no_error_and_its_appearance_is_a_change(tmp_path):
    before = fingerprint([str(tmp_path / "absent")])
    assert fingerprint([str(tmp_path / "absent")]) == before
    (tmp_path / "absent").mkdir()
    assert fingerprint([str(tmp_path / "absent")]) != before


def test_a_tree_nested_deeper_than_pythons_recursion_limit_is_fingerprinted_and_its_deepest_change_seen(tmp_path):
    levels = [tmp_path / "uploads"]
    for _ in range(1200):  # an archive unpacked by the app, say (os.makedirs itself would overflow here)
        levels.append(levels[-1] / "a")
    try:
        for level in levels:
            level.mkdir()
        before = fingerprint([str(levels[0])])
        (levels[-1] / "photo.jpg").write_bytes(b"jpeg")
        assert fingerprint([str(levels[0])]) != before
    finally:  # bottom up: pytest's own clean-up (shutil.rmtree) would overflow too
        (levels[-1] / "photo.jpg").unlink(missing_ok=True)
        for level in reversed(levels):
            if level.exists():
                level.rmdir()


def test_the_walk_order_is_depth_first_by_name_so_a_baseline_taken_before_stays_valid(uploads):
    (uploads / "7" / "a").mkdir()
    (uploads / "10").mkdir()
    walked = [path.removeprefix(str(uploads)) for path, _ in file_changes._entries(str(uploads))]
    assert walked == ["", "/10", "/7", "/7/a", "/7/report.pdf", "/8"]


class FakeConfig:
    """What command_watch reads of /etc/phoenix/backup.json."""

    def __init__(self, state_dir: Path, uploads: Path):
        self.host, self.state_dir, self.stand_in = "web1", state_dir, ""
        self.lock_wait_seconds, self.ping_timeout = 5, 1
        self.jobs = {"files": {"name": "files", "kind": "files", "paths": ["/etc", str(uploads)],
                               "watch_paths": [str(uploads)], "ping_url": ""}}  # fmt: skip

    def job(self, name: str) -> dict:
        return self.jobs[name]


@pytest.fixture
def watch(tmp_path, uploads, monkeypatch):
    """Returns (look, runs): `look()` is one tick of the watch timer; `runs` what it started, as (jobs, trigger)."""
    monkeypatch.setattr(backup, "LOCK_PATH", tmp_path / "backup.lock")
    runs = []
    config = FakeConfig(tmp_path / "state", uploads)

    def run_holding_lock(config, names, trigger, pin, before=""):
        runs.append((names, trigger))
        write_baseline(config.state_dir, "files", fingerprint([str(uploads)]), "run")  # as run_job does
        return {"files": {"result": "ok"}}

    monkeypatch.setattr(backup, "run_holding_lock", run_holding_lock)
    monkeypatch.setattr(backup, "has_complete_run", lambda config, job: True)  # a server whose job has backed up
    return (lambda: backup.command_watch(config, argparse.Namespace(job="files"))), runs


def test_a_new_servers_first_look_backs_up_at_once_when_the_repository_holds_no_run_of_the_job(
    watch, monkeypatch, tmp_path
):
    look, runs = watch
    monkeypatch.setattr(backup, "has_complete_run", lambda config, job: False)
    assert look() == 0
    assert runs == [(["files"], "changed")]
    assert look() == 0  # and then as any other server
    assert len(runs) == 1


def test_a_first_look_that_cannot_ask_the_repository_records_nothing_and_tries_again(watch, monkeypatch, tmp_path):
    look, runs = watch

    def unreachable(config, job):
        raise backup.JobError("vault unreachable: https://vault1:8443/web1/ (timed out); nothing was written")

    monkeypatch.setattr(backup, "has_complete_run", unreachable)
    assert look() == 1
    assert runs == [] and read_baseline(tmp_path / "state", "files") == ""


def test_the_first_look_where_the_job_has_runs_records_the_data_and_backs_nothing_up(watch, tmp_path, capsys):
    look, runs = watch
    assert look() == 0
    assert runs == []
    assert read_baseline(tmp_path / "state", "files")
    assert "[files] watching" in capsys.readouterr().out
    assert oct(baseline_path(tmp_path / "state", "files").stat().st_mode & 0o777) == "0o600"


def test_a_look_with_no_change_runs_nothing_and_says_nothing(watch, capsys):
    look, runs = watch
    look()
    capsys.readouterr()
    assert look() == 0
    assert runs == []
    assert capsys.readouterr().out == ""


def test_an_upload_makes_the_next_look_run_the_files_job_once(watch, uploads, capsys):
    look, runs = watch
    look()
    (uploads / "8" / "photo.jpg").write_bytes(b"jpeg")
    assert look() == 0
    assert look() == 0
    assert runs == [(["files"], "changed")]
    assert "changed since the last run began: backing up" in capsys.readouterr().out


def test_a_restore_begun_since_leaves_no_baseline_so_the_half_restored_tree_is_not_backed_up(watch, uploads, tmp_path):
    look, runs = watch
    look()
    remove_baseline(tmp_path / "state", "files")  # what restore-files does before it writes
    (uploads / "7" / "report.pdf").unlink()  # a tree the restore left half done
    assert look() == 0
    assert runs == []


def test_a_failed_run_leaves_the_baseline_so_the_next_look_tries_again(watch, uploads, tmp_path, monkeypatch):
    look, runs = watch
    look()
    attempts = []
    monkeypatch.setattr(
        backup,
        "run_holding_lock",
        lambda config, names, trigger, pin, before: attempts.append(names) or {"files": {"result": "failed"}},
    )
    (uploads / "8" / "photo.jpg").write_bytes(b"jpeg")
    assert look() == 1
    assert look() == 1
    assert attempts == [["files"], ["files"]]


def test_a_files_run_takes_its_baseline_before_it_backs_up(tmp_path, uploads, monkeypatch):
    """What changes while restic reads the tree is newer than the run: the next look backs it up."""
    config = FakeConfig(tmp_path / "state", uploads)
    monkeypatch.setattr(backup, "check_repository", lambda restic: None)
    config.restic = None

    def store_run(config, job, trigger, run_id, pin, deadline):
        (uploads / "8" / "during.png").write_bytes(b"written while restic read")
        return {"snapshot_id": "abcd1234"}, {"files": 2}, "ef567890"

    monkeypatch.setattr(backup, "_store_run", store_run)
    monkeypatch.setattr(backup, "Watchdog", _NoWatchdog)
    before = fingerprint([str(uploads)])

    backup.run_job(config, "files", "scheduled", "", deadline=0)

    assert read_baseline(tmp_path / "state", "files") == before != fingerprint([str(uploads)])


class _NoWatchdog:
    tripped = ""

    def __init__(self, restic):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_a_stand_in_never_watches_into_the_real_hosts_repository(tmp_path, uploads):
    config = FakeConfig(tmp_path / "state", uploads)
    config.stand_in = "web1"
    with pytest.raises(backup.RefusedError, match="stands in for web1"):
        backup.command_watch(config, argparse.Namespace(job="files"))


def watch_choices() -> list[int]:
    schema = yaml.safe_load((Path(__file__).resolve().parents[2] / "phoenix" / "schema.yaml").read_text())
    files = schema["$defs"]["host"]["properties"]["backup"]["properties"]["files"]["properties"]
    return [seconds for seconds in files["watch_seconds"]["enum"] if seconds]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
@pytest.mark.parametrize("seconds", watch_choices())
def test_each_watch_interval_the_schema_offers_elapses_that_often_by_systemds_own_reading(seconds):
    output = subprocess.run(
        ["systemd-analyze", "calendar", "--iterations", "4", watch_calendar(seconds)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    moments = [
        datetime.strptime(line.split(": ", 1)[1].strip(), "%a %Y-%m-%d %H:%M:%S %Z")
        for line in output.splitlines()
        if line.strip().startswith(("Next elapse:", "Iter. #"))
    ]
    gaps = [(later - earlier).total_seconds() for earlier, later in zip(moments, moments[1:], strict=False)]
    assert gaps == [seconds] * 3


def test_an_upgrade_pauses_the_watch_with_the_files_jobs_schedule():
    jobs = [{"name": "files", "kind": "files", "watch_seconds": 30}, {"name": "db-links", "kind": "db"}]
    data = SimpleNamespace(roles=["postgres"], app={}, backup_jobs=jobs)
    assert timer_units(data) == [
        "phoenix-backup-files.timer", "phoenix-backup-files-watch.timer", "phoenix-backup-db-links.timer"
    ]  # fmt: skip


def restore_files(tmp_path, monkeypatch, listed: dict[str, int]) -> list[str]:
    """Runs restore-files with restic standing off (the run's listing is `listed`); returns the baseline restic
    found when it restored."""
    state = tmp_path / "state"
    write_baseline(state, "files", "the tree before the loss", "run 20261203T101500Z-abcdef")
    baseline_when_restic_restored = []

    class Restic:
        def run(self, *arguments, **options):
            if arguments[0] == "restore":
                baseline_when_restic_restored.append(read_baseline(state, "files"))
            return subprocess.CompletedProcess(["restic", *arguments], 0, "", "")

    run = SimpleNamespace(id="20261203T101500Z-abcdef", data={"id": "5f1e"}, time=datetime.now(UTC), job="files")
    run.trigger = "changed"
    monkeypatch.setattr(restore, "list_runs", lambda config, job: [run])
    monkeypatch.setattr(restore, "choose_run", lambda runs, wanted: run)
    monkeypatch.setattr(restore, "_snapshot_files", lambda config, run, paths: listed)
    monkeypatch.setattr(restore, "RestoreProgress", partial(RestoreProgress, directory=tmp_path / "progress"))
    monkeypatch.setattr(restore, "finish", lambda report, began, name: 0 if report["ok"] else 1)
    config = SimpleNamespace(state_dir=state, restic=Restic())
    restore.command_restore_files(config, argparse.Namespace(run=run.id, paths=[str(tmp_path / "up")], owner=""))
    return baseline_when_restic_restored


def test_a_files_restore_removes_the_baseline_before_restic_writes_then_has_the_next_look_back_up(
    tmp_path, uploads, monkeypatch, watch
):
    """A restore broken off half-way leaves no baseline (the watch takes the tree for no data, not news); one that
    matched its run leaves RESTORED, so that the newest run becomes what the host now holds (after a restore to an
    older moment, that moment's data, not the newer data it replaced)."""
    assert restore_files(tmp_path, monkeypatch, listed={}) == [""]
    assert read_baseline(tmp_path / "state", "files") == RESTORED
    look, runs = watch
    assert look() == 0
    assert runs == [(["files"], "changed")]


def test_a_files_restore_that_does_not_match_its_run_leaves_no_baseline(tmp_path, monkeypatch):
    restore_files(tmp_path, monkeypatch, listed={str(tmp_path / "up" / "lost.pdf"): 5})
    assert read_baseline(tmp_path / "state", "files") == ""


def test_a_look_that_backs_up_walks_the_tree_once_and_hands_its_fingerprint_to_the_run(tmp_path, uploads, monkeypatch):
    """A million files cost 10 s a walk: the run begins from the look's fingerprint instead of walking again."""
    monkeypatch.setattr(backup, "LOCK_PATH", tmp_path / "backup.lock")
    monkeypatch.setattr(backup, "ping", lambda *arguments, **options: None)
    config = FakeConfig(tmp_path / "state", uploads)
    write_baseline(config.state_dir, "files", "the tree before the upload", "run 20261203T101500Z-abcdef")
    walks, handed = [], []
    monkeypatch.setattr(backup, "fingerprint", lambda paths: walks.append(paths) or "the tree now")

    def run_job(config, name, trigger, pin, deadline, before):
        handed.append(before)
        return {"result": "ok", "run": "r", "finished": "now", "snapshot": "s", "trigger": trigger}

    monkeypatch.setattr(backup, "run_job", run_job)

    assert backup.command_watch(config, argparse.Namespace(job="files")) == 0

    assert walks == [[str(uploads)]] and handed == ["the tree now"]


def test_a_first_look_only_asks_the_repository_and_leaves_a_killed_jobs_stale_lock_to_the_next_run(
    tmp_path, uploads, monkeypatch
):
    """Clearing stale locks is a run's work (check_repository): the look lists without a lock and unlocks nothing."""
    commands = []

    class Restic:
        repository, cacert = "rest:https://web1:secret@vault1:8443/web1/", ""

        def json(self, *arguments):
            commands.append(arguments)
            return [
                {"id": "d1", "time": "2026-12-03T10:15:00Z", "tags": ["job=files", "run=r1", "part=data"]},
                {"id": "m1", "time": "2026-12-03T10:15:03Z", "tags": ["job=files", "run=r1", "part=manifest"]},
            ]

        def run(self, *arguments, **options):
            commands.append(arguments)
            return subprocess.CompletedProcess(["restic", *arguments], 0, "", "")

    monkeypatch.setattr(backup, "probe", lambda url, cacert: "")
    config = FakeConfig(tmp_path / "state", uploads)
    config.restic = Restic()

    assert backup.has_complete_run(config, "files") is True
    assert commands == [("snapshots", "--host", "web1", "--tag", "job=files", "--no-lock")]
