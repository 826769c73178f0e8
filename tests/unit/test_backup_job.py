"""phoenix-backup's host-side pieces: the one-at-a-time lock, the pings, opening the repository (scripted restic)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from phoenix.remote.backup import HostLock, check_repository
from phoenix.remote.backup_host import ping
from phoenix.remote.common import JobError

HOLD_LOCK = """
import fcntl, sys, time
handle = open(sys.argv[1], "a+")
fcntl.flock(handle, fcntl.LOCK_EX)
handle.write("files (scheduled), pid 4242, since 02:45\\n"); handle.flush()
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def hold(path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_backup_waits_for_the_first_then_runs(tmp_path, capsys):
    holder = hold(tmp_path / "backup.lock", 1.0)
    lock = HostLock(tmp_path / "backup.lock", "db-links (manual)")

    started = time.monotonic()
    lock.acquire(wait_seconds=30)
    waited = time.monotonic() - started
    lock.release()
    holder.wait()

    assert waited >= 0.5
    assert "waiting for the backup lock, held by files (scheduled), pid 4242" in capsys.readouterr().out


def test_a_backup_gives_up_after_the_wait_and_says_who_holds_the_lock(tmp_path):
    holder = hold(tmp_path / "backup.lock", 30)
    try:
        with pytest.raises(JobError, match=r"another backup still holds .* after 1s \(files \(scheduled\), pid 4242"):
            HostLock(tmp_path / "backup.lock", "db-links (manual)").acquire(wait_seconds=1)
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_releases_the_lock_at_once(tmp_path):
    holder = hold(tmp_path / "backup.lock", 30)
    holder.kill()
    holder.wait()

    lock = HostLock(tmp_path / "backup.lock", "db-links (manual)")
    lock.acquire(wait_seconds=0)
    lock.release()


def test_pings_follow_the_healthchecks_convention_and_failure_carries_the_error(receiver):
    url, received = receiver

    ping(url, "start")
    ping(url, "success")
    ping(url, "failure", "pg_dump of links failed (exit 1)")

    assert received == [
        ("GET", "/ping/abc/start", ""),
        ("GET", "/ping/abc", ""),
        ("POST", "/ping/abc/fail", "pg_dump of links failed (exit 1)"),
    ]


def test_an_unreachable_ping_url_only_warns(capsys):
    ping("http://127.0.0.1:9/ping/abc", "success", timeout=1)

    assert "warning: ping success to http://127.0.0.1:9/ping/abc failed" in capsys.readouterr().err


class ScriptedRestic:
    """A restic whose commands answer as scripted ({command: (exit status, stderr)}, 0 otherwise); records them."""

    def __init__(self, answers: dict[str, tuple[int, str]]):
        self.repository, self.cacert, self.answers, self.commands = "/srv/restic/db1", "", answers, []

    def run(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess:
        command = " ".join(arguments)
        self.commands.append(command)
        status, stderr = self.answers.get(command, (0, ""))
        return subprocess.CompletedProcess(["restic", *arguments], status, "", stderr)


def test_a_backup_opens_a_healthy_repository_once_before_it_backs_up(capsys):
    restic = ScriptedRestic({})
    check_repository(restic)
    assert restic.commands == ["unlock"]  # each restic command derives the key again: no `cat config` as well
    assert capsys.readouterr().err == ""


def test_a_repository_that_cannot_be_opened_fails_the_job_naming_it():
    wrong = (1, "Fatal: wrong password or no key found")
    restic = ScriptedRestic({"unlock": wrong, "cat config": wrong})
    with pytest.raises(JobError) as failed:
        check_repository(restic)
    assert str(failed.value) == "cannot open the repository /srv/restic/db1: Fatal: wrong password or no key found"


def test_a_failed_unlock_of_a_repository_that_opens_is_a_warning_and_the_backup_goes_on(capsys):
    restic = ScriptedRestic({"unlock": (1, "Fatal: unable to remove lock: 403 Forbidden")})
    check_repository(restic)
    assert restic.commands == ["unlock", "cat config"]
    assert "restic unlock failed: Fatal: unable to remove lock: 403 Forbidden" in capsys.readouterr().err
