"""Every command line Phoenix sends to a server, exactly as the server receives it (phoenix/commands.py)."""

from __future__ import annotations

import os
import stat
import subprocess
import time

import pytest

from phoenix.commands import (
    BACKGROUND_RESTORE_UNIT,
    REFUSED_STATUS,
    make_all_at_once_command,
    make_background_restore_command,
    make_background_restore_wait_command,
    make_backup_run_command,
    make_holding_backup_lock_command,
    make_marker_write_command,
    make_postgres_settings_apply_command,
    make_private_file_write_command,
    make_remote_shell_argv,
    make_restore_db_command,
    make_restore_files_command,
    make_service_restart_command,
    make_vault_pin_arguments,
    split_run_records,
)
from phoenix.remote.backup import HostLock
from phoenix.remote.common import JobError


def test_backup_run_lines_name_the_trigger_and_quote_the_pin():
    assert make_backup_run_command() == "phoenix-backup run all"
    assert make_backup_run_command("scheduled") == "phoenix-backup run all --trigger scheduled"
    assert make_backup_run_command("manual", "  ") == "phoenix-backup run all --trigger manual"
    assert (
        make_backup_run_command("pre-upgrade", "before 2.0 (2026-11-30T07:00:00Z)")
        == "phoenix-backup run all --trigger pre-upgrade --pin 'before 2.0 (2026-11-30T07:00:00Z)'"
    )
    assert make_backup_run_command("manual", "it's; rm -rf /") == (
        "phoenix-backup run all --trigger manual --pin 'it'\"'\"'s; rm -rf /'"
    )
    assert (
        make_backup_run_command("manual", "x", records=True)
        == "phoenix-backup run all --trigger manual --pin x --records"
    )


def test_a_runs_records_are_its_last_line_and_a_run_that_stopped_early_has_none():
    output = '[files] done: snapshot 3e64c922\n\n{"files": {"result": "ok", "run": "r2"}}\n'
    assert split_run_records(output) == (["[files] done: snapshot 3e64c922"], {"files": {"result": "ok", "run": "r2"}})
    assert split_run_records("[files] checking the repository\n") == (["[files] checking the repository"], {})
    assert split_run_records("{ torn\n") == (["{ torn"], {})
    assert split_run_records("") == ([], {})


def test_restore_db_line_forces_only_when_asked():
    assert make_restore_db_command("db-links", "run-1", force=False) == "phoenix-backup restore-db db-links --run run-1"
    assert make_restore_db_command("db-links", "a1b2c3", force=True) == (
        "phoenix-backup restore-db db-links --run a1b2c3 --force"
    )


def test_restore_files_line_quotes_each_path_and_names_the_owner_when_given():
    assert make_restore_files_command("run-9", ["/var/lib/links/uploads", "/srv/my files"]) == (
        "phoenix-backup restore-files --run run-9 --paths /var/lib/links/uploads '/srv/my files'"
    )
    assert make_restore_files_command("run-9", ["/var/lib/links/uploads"], "links") == (
        "phoenix-backup restore-files --run run-9 --paths /var/lib/links/uploads --owner links"
    )


def test_marker_write_keeps_the_value_whole_and_sets_the_mode_unless_told_not_to():
    assert make_marker_write_command("/srv/links/.installed", "abc123") == (
        "printf '%s\\n' abc123 > /srv/links/.installed && chmod 0644 /srv/links/.installed"
    )
    assert make_marker_write_command("/srv/links/.migrated", "sha v2 'quoted'", mode=None) == (
        "printf '%s\\n' 'sha v2 '\"'\"'quoted'\"'\"'' > /srv/links/.migrated"
    )


def test_a_private_file_is_written_whole_through_a_temporary_file_and_is_owner_only(tmp_path):
    path = tmp_path / "state" / "in-progress.json"
    text = '{"to": "2.0.0", "note": "it\'s $(rm -rf /)"}'

    subprocess.run(["sh", "-c", make_private_file_write_command(str(path), text)], check=True, timeout=10)

    assert path.read_text() == text and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [entry.name for entry in path.parent.iterdir()] == ["in-progress.json"]
    assert f"> {path}.tmp && mv -f {path}.tmp {path}" in make_private_file_write_command(str(path), text)


def test_vault_pin_arguments_name_the_client_only_when_known():
    assert make_vault_pin_arguments("r1", "before 2.0", "ann@laptop") == [
        "pin", "r1", "--reason", "before 2.0", "--by", "ann@laptop",
    ]  # fmt: skip
    assert make_vault_pin_arguments("r1", "why", "upgrade.py (web1)", client="db1") == [
        "pin", "r1", "--client", "db1", "--reason", "why", "--by", "upgrade.py (web1)",
    ]  # fmt: skip


def _with_stub(tmp_path, name: str, script: str) -> dict[str, str]:
    """Returns an environment whose PATH finds `name` as the given shell script first."""
    stub = tmp_path / name
    stub.write_text("#!/bin/sh\n" + script)
    stub.chmod(0o755)
    return {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}


# systemd as far as the background restore uses it: systemd-run starts the line and keeps its exit status, systemctl
# shows the unit running until then, then exited (RemainAfterExit) or failed
FAKE_SYSTEMD_RUN = """printf '%s\\n' "$@" > {state}/arguments
while [ "$1" != /bin/sh ]; do shift; done
( /bin/sh "$2"; echo $? > {state}/status ) > /dev/null 2>&1 &
"""
FAKE_SYSTEMCTL = """[ "$1" = show ] || exit 0
status=$(cat {state}/status 2>/dev/null)
case "$4:$status" in
  SubState:) echo running;; SubState:0) echo exited;; SubState:*) echo failed;;
  Result:0) echo success;; Result:*) echo exit-code;;
  ActiveState:0) echo active;; ActiveState:*) echo failed;;
esac
"""


def _fake_systemd(tmp_path) -> dict[str, str]:
    _with_stub(tmp_path, "systemd-run", FAKE_SYSTEMD_RUN.format(state=tmp_path))
    return _with_stub(tmp_path, "systemctl", FAKE_SYSTEMCTL.format(state=tmp_path))


def test_the_background_restore_returns_at_once_and_its_wait_ends_after_it_with_what_it_printed(tmp_path):
    env, log, done = _fake_systemd(tmp_path), tmp_path / "restore" / "background.log", tmp_path / "done"
    line = f"echo '[db-links] restoring'; sleep 1; echo '[db-links] restored' >&2; touch {done}"

    subprocess.run(["bash", "-c", make_background_restore_command(line, str(log))], env=env, check=True, timeout=10)
    assert not done.exists()  # started, not waited for
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    waited = subprocess.run(["bash", "-c", make_background_restore_wait_command(str(log))], env=env,
                            capture_output=True, text=True, timeout=30)  # fmt: skip

    assert waited.returncode == 0 and done.exists()
    assert "[db-links] restoring\n[db-links] restored" in waited.stderr


def test_the_background_restore_gives_systemd_run_a_root_only_script_not_the_line(tmp_path):
    env, log = _fake_systemd(tmp_path), tmp_path / "restore" / "background.log"
    line = "echo one; echo two"

    subprocess.run(["bash", "-c", make_background_restore_command(line, str(log))], env=env, check=True, timeout=10)

    arguments = (tmp_path / "arguments").read_text().splitlines()
    assert not [argument for argument in arguments if ";" in argument]  # systemd 252 warns of `\;` at each reload
    script = log.parent / "background.sh"
    assert arguments[-2:] == ["/bin/sh", str(script)]
    assert stat.S_IMODE(script.stat().st_mode) == 0o600
    assert line in script.read_text()


def test_a_failed_background_restore_fails_its_wait_with_what_it_printed(tmp_path):
    env, log = _fake_systemd(tmp_path), tmp_path / "background.log"
    line = "echo 'run r1 of db-links DOES NOT match its manifest' >&2; exit 1"

    subprocess.run(["bash", "-c", make_background_restore_command(line, str(log))], env=env, check=True, timeout=10)
    waited = subprocess.run(["bash", "-c", make_background_restore_wait_command(str(log))], env=env,
                            capture_output=True, text=True, timeout=30)  # fmt: skip

    assert waited.returncode == 1
    assert "DOES NOT match its manifest" in waited.stderr
    assert f"the data restore ({BACKGROUND_RESTORE_UNIT}) did not succeed: exit-code, failed" in waited.stderr


def test_a_data_restore_holds_the_backup_lock_so_a_scheduled_backup_waits_for_it(tmp_path):
    lock, started, release = tmp_path / "lock" / "phoenix-backup.lock", tmp_path / "started", tmp_path / "release"
    line = f"touch {started}; while [ ! -e {release} ]; do sleep 0.1; done"
    restore = subprocess.Popen(["sh", "-c", make_holding_backup_lock_command(line, 5, str(lock))])
    try:
        for _ in range(100):
            if started.exists() or restore.poll() is not None:
                break
            time.sleep(0.1)
        assert started.exists()
        backup = HostLock(lock, "db-links (scheduled)")
        with pytest.raises(JobError, match=r"holds .* after 0s \(restore\.py's data restore, pid [0-9]+, since 20"):
            backup.acquire(0)  # what a backup timer firing during the restore meets
        backup.release()
    finally:
        release.touch()
        assert restore.wait(timeout=10) == 0
    backup = HostLock(lock, "db-links (scheduled)")
    backup.acquire(0)  # the restore's end releases it
    backup.release()


def test_a_data_restore_waits_for_a_running_backup_and_gives_up_naming_it(tmp_path):
    lock, restored = tmp_path / "phoenix-backup.lock", tmp_path / "restored"
    backup = HostLock(lock, "db-links (scheduled)")
    backup.acquire(0)
    try:
        refused = subprocess.run(["sh", "-c", make_holding_backup_lock_command(f"touch {restored}", 1, str(lock))],
                                 capture_output=True, text=True, timeout=30)  # fmt: skip
    finally:
        backup.release()
    assert refused.returncode == REFUSED_STATUS and not restored.exists()
    assert "waiting for the backup lock, held by db-links (scheduled), pid" in refused.stderr
    assert f"a backup still holds {lock} after 1s (db-links (scheduled), pid" in refused.stderr

    backup.acquire(0)
    waiting = subprocess.Popen(["sh", "-c", make_holding_backup_lock_command(f"touch {restored}", 30, str(lock))])
    time.sleep(0.5)
    assert not restored.exists()  # still waiting for the backup
    backup.release()
    assert waiting.wait(timeout=30) == 0 and restored.exists()


def test_no_part_of_a_restore_runs_without_the_backup_lock(tmp_path):
    (tmp_path / "not-a-directory").write_text("")
    lock, first, second = tmp_path / "not-a-directory" / "phoenix-backup.lock", tmp_path / "first", tmp_path / "second"
    line = f"touch {first}; touch {second}"  # several commands: none of them may run
    refused = subprocess.run(["sh", "-c", make_holding_backup_lock_command(line, 1, str(lock))],
                             capture_output=True, text=True, timeout=30)  # fmt: skip
    assert refused.returncode == REFUSED_STATUS
    assert not first.exists() and not second.exists()
    assert f"could not take the backup lock {lock}: nothing was restored" in refused.stderr


@pytest.mark.parametrize(
    ("cannot_apply", "action"),
    [("0", "reload"), ("1", "restart"), ("", "restart")],  # "": PostgreSQL did not answer
)
def test_postgres_settings_are_reloaded_unless_postgresql_says_one_needs_a_restart(tmp_path, cannot_apply, action):
    calls = tmp_path / "calls"
    env = _with_stub(tmp_path, "runuser", f'echo "$@" >> {calls}; printf "%s" "{cannot_apply}"')
    _with_stub(tmp_path, "systemctl", f'echo "systemctl $@" >> {calls}')

    line = make_postgres_settings_apply_command("postgresql@15-main")
    subprocess.run(["bash", "-c", line], env=env, check=True, timeout=10)

    query, applied = calls.read_text().splitlines()
    assert "pg_file_settings WHERE error IS NOT NULL" in query
    assert applied == f"systemctl {action} postgresql@15-main"


def test_independent_lines_run_at_the_same_time_and_any_failure_fails_the_whole(tmp_path):
    flag = tmp_path / "second-started"
    # the first line waits for the second: run one after the other, the first would give up after 10 s
    waits = f"for i in $(seq 100); do [ -e {flag} ] && exit 0; sleep 0.1; done; exit 1"
    both = make_all_at_once_command([waits, f"touch {flag}"])

    assert subprocess.run(["sh", "-c", both], timeout=30).returncode == 0
    assert subprocess.run(["sh", "-c", make_all_at_once_command(["true", "exit 3", "true"])]).returncode == 1
    assert make_all_at_once_command(["phoenix-backup run all"]) == "phoenix-backup run all"


def test_a_service_restart_enables_the_unit_and_restarts_it():
    assert make_service_restart_command("links-worker") == (
        "systemctl enable --quiet links-worker && systemctl restart links-worker"
    )


def test_a_line_sent_over_ssh_reaches_the_remote_shell_whole():
    line = "printf one; printf ' two' && printf ' three'"
    # ssh joins its arguments into one string for the remote shell: `sh -c` stands in for that shell
    over_ssh = make_remote_shell_argv(["sh", "-c"], line, ssh=True)
    by_docker = make_remote_shell_argv([], line, ssh=False)

    assert subprocess.run(over_ssh, capture_output=True, text=True).stdout == "one two three"
    assert subprocess.run(by_docker, capture_output=True, text=True).stdout == "one two three"
