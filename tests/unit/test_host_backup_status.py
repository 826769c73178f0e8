"""`phoenix status` asks each backed-up host for its newest runs: a run that failed there (the files watch's
against a full vault, say) is flagged at once in the host's words, cleaned; a host that cannot be asked too."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from phoenix import host_backup_status
from phoenix import status as status_verb
from phoenix.errors import PhoenixError
from phoenix.inventory import load_environment
from phoenix.remote import backup
from phoenix.remote.backup_host import status_path, write_status

FAILED = {
    "job": "files", "result": "failed", "trigger": "changed", "started": "2026-11-20T13:59:01+00:00",
    "finished": "2026-11-20T13:59:04+00:00",
    "error": "vault disk full: the vault refused to store this run's data (HTTP 403 Forbidden on saving data/ab)",
}  # fmt: skip
OK = {"job": "db-shop", "result": "ok", "run": "r1", "finished": "2026-11-20T13:00:00+00:00"}


@pytest.fixture
def shop(write_inventory):
    return load_environment(write_inventory())


@pytest.fixture
def hosts_answering(tmp_path, shop):
    """Returns a function giving `phoenix-backup status` on each host a shell body (run by a real bash, as the
    host's would be), and the environment whose hosts run them."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()

    def answering(bodies: dict[str, str]):
        for name, body in bodies.items():
            script = bin_dir / f"phoenix-backup-{name}"
            script.write_text(f'#!/bin/bash\n[ "$*" = status ] || exit 9\n{body}\n')
            script.chmod(script.stat().st_mode | stat.S_IXUSR)
            (bin_dir / name).mkdir(exist_ok=True)
            link = bin_dir / name / "phoenix-backup"
            link.unlink(missing_ok=True)
            link.symlink_to(script)
        return SimpleNamespace(hosts=shop.hosts, over_ssh=False)

    def remote(environment, name):
        return ["env", f"PATH={bin_dir / name}:/usr/bin:/bin"]

    return answering, remote


def test_a_failed_newest_run_is_flagged_in_the_hosts_words_and_an_ok_one_is_not(hosts_answering):
    answering, remote = hosts_answering
    environment = answering({
        "web1": f"cat <<'JSON'\n{json.dumps({'files': FAILED})}\nJSON",
        "db1": f"cat <<'JSON'\n{json.dumps({'db-shop': OK})}\nJSON",
    })  # fmt: skip

    answers = host_backup_status.ask(environment, remote)

    assert answers == {"web1": {"jobs": {"files": FAILED}}, "db1": {"jobs": {"db-shop": OK}}}
    assert host_backup_status.flags(answers) == [
        "web1/files: its newest run FAILED at 2026-11-20 13:59 (changed): vault disk full: the vault refused to"
        " store this run's data (HTTP 403 Forbidden on saving data/ab)"
    ]


def test_a_host_that_fails_says_nonsense_or_does_not_answer_is_flagged_with_why(hosts_answering, monkeypatch):
    answering, remote = hosts_answering
    monkeypatch.setattr(host_backup_status, "ASK_TIMEOUT_SECONDS", 1)
    environment = answering({"web1": "echo 'phoenix-backup: run it as root' >&2; exit 1", "db1": "sleep 5"})
    answers = host_backup_status.ask(environment, remote)
    assert host_backup_status.flags(answers) == [
        "db1: its own backup status could not be read (no answer within 1s)",
        "web1: its own backup status could not be read (phoenix-backup: run it as root)",
    ]

    def gone(environment, name):  # a sandbox host whose container was removed
        if name == "db1":
            raise PhoenixError("container phx-shop-db1 not found: Error: No such container: phx-shop-db1")
        return remote(environment, name)

    assert host_backup_status.flags(host_backup_status.ask(environment, gone)) == [
        "db1: its own backup status could not be read (container phx-shop-db1 not found: Error: No such container:"
        " phx-shop-db1)",
        "web1: its own backup status could not be read (phoenix-backup: run it as root)",
    ]
    environment = answering({"web1": "echo '<html>proxy error'", "db1": "echo '[1, 2]'"})
    assert host_backup_status.flags(host_backup_status.ask(environment, remote)) == [
        "db1: its own backup status could not be read (its answer is not a record per job)",
        "web1: its own backup status could not be read (its answer is not JSON: '<html>proxy error')",
    ]


def test_a_hostile_hosts_words_reach_the_terminal_printable_and_cut_short():
    hostile = dict(FAILED, error="\x1b]0;owned\x07\x1b[2J" + "x" * 1000, trigger="changed\nOK all good")
    (flag,) = host_backup_status.flags({"web1": {"jobs": {"files": hostile}}})
    assert "\x1b" not in flag and "\n" not in flag and "\x07" not in flag
    assert "(changed OK all good)" in flag
    assert flag.endswith("x...") and len(flag) < 400


def test_a_failed_run_on_a_host_fails_the_status_whose_vault_report_is_clean(shop, monkeypatch, tmp_path):
    clean = {"now": "2026-11-20T14:00:00+00:00", "clients": {}}
    monkeypatch.setattr(status_verb, "vault_report", lambda environment: clean)
    monkeypatch.setattr(status_verb, "evaluate", lambda environment, report: ([], []))
    passed = {
        "environment": "shop", "started": "2026-11-20T04:00:00+00:00", "passed": True, "rto_seconds": 60.0,
        "rpo_seconds": 0.0, "steps": {}, "checks": [], "report": "elsewhere/shop.json", "failed_checks": 0,
    }  # fmt: skip
    monkeypatch.setattr(status_verb, "vault_drills", lambda environment: [passed])
    monkeypatch.setattr(status_verb, "archive_report", lambda environment: [])

    monkeypatch.setattr(status_verb, "host_report", lambda environment: {"db1": {"jobs": {"db-shop": OK}}})
    quiet = status_verb.gather(shop, str(tmp_path))
    monkeypatch.setattr(status_verb, "host_report", lambda environment: {"web1": {"jobs": {"files": FAILED}}})
    failing = status_verb.gather(shop, str(tmp_path))

    assert quiet.host_flags == [] and quiet.hosts == {"db1": {"jobs": {"db-shop": OK}}} and not quiet.failing
    assert failing.host_flags[0].startswith("web1/files: its newest run FAILED at 2026-11-20 13:59 (changed): vault")
    assert failing.host_flags[0] in failing.flags and failing.failing
    assert set(failing.flags) - set(quiet.flags) == set(failing.host_flags)


def test_a_failure_stays_in_sight_while_the_next_run_is_under_way_and_goes_with_a_success(tmp_path):
    config = SimpleNamespace(state_dir=tmp_path)
    read = lambda: json.loads(status_path(config, "files").read_text())  # noqa: E731

    write_status(config, "files", dict(FAILED))
    write_status(config, "files", {"job": "files", "result": "running", "trigger": "changed"})
    assert read()["last_failure"] == {key: FAILED[key] for key in ("finished", "trigger", "error")}
    (flag,) = host_backup_status.flags({"web1": {"jobs": {"files": read()}}})
    assert flag == (
        "web1/files: its last finished run FAILED at 2026-11-20 13:59 (changed): vault disk full: the vault refused"
        " to store this run's data (HTTP 403 Forbidden on saving data/ab); a new run is under way"
    )

    ok = {"job": "files", "result": "ok", "run": "r2", "finished": "x", "snapshot": "s", "trigger": "changed"}
    write_status(config, "files", ok)
    write_status(config, "files", {"job": "files", "result": "running", "trigger": "changed"})
    assert "last_failure" not in read()
    assert host_backup_status.flags({"web1": {"jobs": {"files": read()}}}) == []


def test_the_hosts_are_asked_at_once_so_lost_hosts_cost_one_timeout_not_one_each(hosts_answering, tmp_path):
    answering, remote = hosts_answering
    # each host answers only once the other has been asked too: asked one after the other, the first never would
    waits = {
        name: f"touch {tmp_path}/{name}.asked; for _ in $(seq 200); do [ -e {tmp_path}/{other}.asked ] && break;"
        f" sleep 0.1; done; [ -e {tmp_path}/{other}.asked ] && echo '{{}}'"
        for name, other in (("web1", "db1"), ("db1", "web1"))
    }
    answers = host_backup_status.ask(answering(waits), remote)
    assert answers == {"web1": {"jobs": {}}, "db1": {"jobs": {}}}


def test_a_run_recorded_as_running_that_no_process_runs_is_shown_interrupted_and_flagged(tmp_path):
    config = SimpleNamespace(state_dir=tmp_path, jobs={"db-shop": {}, "files": {}})
    lock = tmp_path / "lock" / "phoenix-backup.lock"
    killed = {"job": "db-shop", "result": "running", "started": "2026-11-20T02:15:07+00:00", "trigger": "scheduled"}
    write_status(config, "db-shop", dict(killed))
    write_status(config, "files", {"job": "files", "result": "running", "trigger": "changed"})

    statuses = backup.read_statuses(config, lock)  # nobody holds the lock: neither run is running

    assert statuses["db-shop"]["result"] == "interrupted" and statuses["files"]["result"] == "interrupted"
    assert json.loads(status_path(config, "db-shop").read_text())["result"] == "running"  # only read, never written
    assert host_backup_status.flags({"db1": {"jobs": {"db-shop": statuses["db-shop"]}}}) == [
        "db1/db-shop: its newest run, begun at 2026-11-20 02:15 (scheduled), was INTERRUPTED: it stopped before it"
        " finished (killed, or the host went down); the next run starts afresh"
    ]


def test_a_run_holding_the_lock_is_still_running(tmp_path):
    config = SimpleNamespace(state_dir=tmp_path, jobs={"files": {}})
    lock_path = tmp_path / "phoenix-backup.lock"
    write_status(config, "files", {"job": "files", "result": "running", "trigger": "changed"})
    holder = backup.HostLock(lock_path, "files (changed)")
    holder.acquire(0)
    try:
        assert backup.read_statuses(config, lock_path)["files"]["result"] == "running"
    finally:
        holder.release()
    assert backup.read_statuses(config, lock_path)["files"]["result"] == "interrupted"


# a run's process as the host's `phoenix-backup` wrapper starts it (exec python3 -m phoenix.remote.backup_job ...)
RUN_PROCESS = [sys.executable, "-c", "import time; time.sleep(60)", "-m", "phoenix.remote.backup_job", "watch", "files"]


def running_process(argv: list[str]) -> subprocess.Popen:
    """Starts argv and returns once it runs it (a run writes its record itself, after its exec)."""
    process = subprocess.Popen(argv)
    for _ in range(500):
        if Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")[0] == argv[0].encode():
            return process
        time.sleep(0.01)
    raise AssertionError(f"{argv} did not start")


def test_a_killed_run_is_shown_interrupted_even_while_another_holds_the_lock(tmp_path):
    """CI's stale-lock test: the files watch took the lock the moment the killed run's went, and held it through
    every `phoenix status`; the killed run's own pid says it is gone."""
    config = SimpleNamespace(state_dir=tmp_path, jobs={"db-shop": {}, "files": {}, "old": {}})
    lock_path = tmp_path / "phoenix-backup.lock"
    started = backup.now().isoformat()
    alive, killed = running_process(RUN_PROCESS), running_process(RUN_PROCESS)
    killed.kill(), killed.wait()
    write_status(config, "files", {"job": "files", "result": "running", "started": started, "pid": alive.pid})
    write_status(config, "db-shop", {"job": "db-shop", "result": "running", "started": started, "pid": killed.pid})
    write_status(config, "old", {"job": "old", "result": "running", "started": "2026-11-20T02:15:07+00:00"})
    holder = backup.HostLock(lock_path, "files (changed)")
    holder.acquire(0)
    try:
        statuses = backup.read_statuses(config, lock_path)
    finally:
        holder.release()
        alive.kill(), alive.wait()

    assert statuses["files"]["result"] == "running"
    assert statuses["db-shop"]["result"] == "interrupted"
    assert statuses["old"]["result"] == "running"  # no pid (an older record): only a free lock tells


def test_a_pid_given_again_to_a_later_process_is_not_the_run(tmp_path):
    later, other = running_process(RUN_PROCESS), running_process(["/bin/sleep", "60"])
    try:
        # the record was written an hour before this process began: after a reboot, its pid is another's
        before = {"result": "running", "started": "2026-11-20T02:15:07+00:00", "pid": later.pid}
        now = {"result": "running", "started": backup.now().isoformat(), "pid": later.pid}
        assert not backup.run_is_alive(before) and backup.run_is_alive(now)
        assert not backup.run_is_alive({**now, "pid": other.pid})  # alive, but not a Phoenix process
    finally:
        for process in (later, other):
            process.kill(), process.wait()
