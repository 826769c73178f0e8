"""Every command line Phoenix sends to a server, exactly as the server receives it (phoenix/commands.py)."""

from __future__ import annotations

import os
import subprocess

import pytest

from phoenix.commands import (
    BACKGROUND_INSTALL_UNIT,
    BACKUP_STATUS_COMMAND,
    make_all_at_once_command,
    make_background_install_command,
    make_background_install_wait_command,
    make_backup_run_command,
    make_marker_write_command,
    make_postgres_settings_apply_command,
    make_restore_db_command,
    make_restore_files_command,
    make_service_restart_command,
    make_vault_pin_arguments,
)


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
    assert BACKUP_STATUS_COMMAND == "phoenix-backup status"


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


def test_the_background_install_hands_apt_get_to_a_transient_unit_and_returns(tmp_path):
    calls = tmp_path / "calls"
    env = _with_stub(tmp_path, "systemd-run", f'echo "$@" >> {calls}')
    _with_stub(tmp_path, "systemctl", f'echo "systemctl $@" >> {calls}')

    line = make_background_install_command(["nginx", "libpq5", "python3-venv"])
    subprocess.run(["bash", "-c", line], env=env, check=True, timeout=10)

    reset, run = calls.read_text().splitlines()
    assert reset == f"systemctl reset-failed {BACKGROUND_INSTALL_UNIT}"  # a failed earlier one would block the name
    assert run == (
        f"--quiet --collect --unit={BACKGROUND_INSTALL_UNIT} --setenv=DEBIAN_FRONTEND=noninteractive apt-get install"
        " -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 nginx libpq5 python3-venv"
    )


def test_waiting_for_the_background_install_ends_when_its_unit_does_and_gives_up_at_the_timeout(tmp_path):
    # active for the first three questions, then gone
    env = _with_stub(
        tmp_path,
        "systemctl",
        f'n=$(cat {tmp_path}/n 2>/dev/null || echo 0); echo $((n + 1)) > {tmp_path}/n; [ "$n" -lt 3 ]',
    )
    _with_stub(tmp_path, "sleep", "exit 0")

    ended = subprocess.run(["bash", "-c", make_background_install_wait_command()], env=env, timeout=10)

    assert ended.returncode == 0 and (tmp_path / "n").read_text().strip() == "4"
    still = _with_stub(tmp_path, "systemctl", "exit 0")  # active forever
    stuck = subprocess.run(
        ["bash", "-c", make_background_install_wait_command(timeout_seconds=2)],
        env=still,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert stuck.returncode == 1
    assert f"the background package install ({BACKGROUND_INSTALL_UNIT}) is still running after 2 s" in stuck.stderr


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
