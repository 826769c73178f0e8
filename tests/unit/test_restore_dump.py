"""restore-db's dump: restored by restic into a root-only file, fed to pg_restore, checked, then removed; streamed
when there is no room for the file."""

from __future__ import annotations

import hashlib
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from phoenix.remote import restore
from phoenix.remote.common import JobError
from phoenix.remote.runs import Run

DUMP = os.urandom(3 * 1024 * 1024 + 17)  # several of file_digest's chunks and a piece


class FakeRestic:
    """restic restore writing the run's dump under --target, as restic does."""

    def __init__(self):
        self.calls: list[tuple] = []

    def run(self, *arguments: str):
        self.calls.append(arguments)
        target = Path(arguments[arguments.index("--target") + 1])
        path = target / arguments[arguments.index("--include") + 1].lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(DUMP)


def a_run() -> Run:
    when = datetime(2026, 11, 30, tzinfo=UTC)
    return Run(id="r1", host="web1", job="db-links", kind="db", trigger="manual", pin_tag="", time=when,
               data={"id": "snap1", "paths": ["/links.dump"]})  # fmt: skip


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A fake pg_restore on PATH (it copies its stdin to pg_restore.in, or fails when told) and a scratch
    directory under tmp_path."""
    bin_directory = tmp_path / "bin"
    bin_directory.mkdir()
    stub = bin_directory / "pg_restore"
    stub.write_text(
        "#!/bin/sh\n"
        f'[ -e {tmp_path}/fail ] && {{ echo "pg_restore: error: could not execute query" >&2; exit 1; }}\n'
        f"cat > {tmp_path}/pg_restore.in\n"
    )
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_directory}:{os.environ['PATH']}")
    monkeypatch.setattr(restore, "POSTGRES", [])
    monkeypatch.setattr(restore, "SCRATCH_DIRECTORY", tmp_path / "scratch")
    return tmp_path


def test_the_dump_reaches_pg_restore_whole_its_checksum_is_returned_and_the_file_is_removed(host):
    restic = FakeRestic()

    checksum, size = restore.restore_dump(SimpleNamespace(restic=restic), a_run(), "links", ["--clean"], len(DUMP))

    assert (host / "pg_restore.in").read_bytes() == DUMP
    assert (checksum, size) == (hashlib.sha256(DUMP).hexdigest(), len(DUMP))
    assert restic.calls[0][:2] == ("restore", "snap1")
    assert stat.S_IMODE((host / "scratch").stat().st_mode) == 0o700  # the dump holds every row: root only
    assert list((host / "scratch").iterdir()) == []


def test_a_failing_pg_restore_is_an_error_naming_it_and_the_file_is_removed(host):
    (host / "fail").touch()

    with pytest.raises(JobError, match="pg_restore exit 1 .*could not execute query"):
        restore.restore_dump(SimpleNamespace(restic=FakeRestic()), a_run(), "links", [], len(DUMP))

    assert list((host / "scratch").iterdir()) == []


def test_without_room_for_the_file_the_dump_is_streamed(host, monkeypatch):
    streamed = []
    monkeypatch.setattr(restore.shutil, "disk_usage", lambda path: SimpleNamespace(free=len(DUMP)))
    monkeypatch.setattr(restore, "stream_restore", lambda *arguments: streamed.append(arguments) or ("sum", 1))
    restic = FakeRestic()

    assert restore.restore_dump(SimpleNamespace(restic=restic), a_run(), "links", [], len(DUMP)) == ("sum", 1)
    assert len(streamed) == 1 and restic.calls == []
