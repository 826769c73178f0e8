"""Continuous archiving with Barman: which hosts, the files the vault and database roles write."""

from __future__ import annotations

import subprocess
from types import SimpleNamespace

import pytest

from phoenix import archive_plan
from phoenix.commands import make_barman_keep_command, make_first_base_backup_command
from phoenix.inventory import load_environment, pyinfra_hosts
from phoenix.secrets import Secrets, required_secret_keys
from roles.firewall import open_ports


@pytest.fixture
def hosts(write_inventory) -> dict[str, dict]:
    return {name.split("/")[-1]: data for name, data in pyinfra_hosts(load_environment(write_inventory()), SECRETS)}


SECRETS = Secrets({"replication_passwords": {"db1": "pa:ss\\word"}}, "test secrets")


def test_the_vault_archives_the_database_host_and_the_database_host_admits_only_the_vault(hosts):
    assert hosts["vault1"]["archive_servers"] == [{"name": "db1", "address": "10.0.0.3", "version": 15}]
    assert hosts["db1"]["archive_vault_address"] == "198.51.100.30"
    assert hosts["web1"]["archive_vault_address"] == "" and hosts["web1"]["archive_servers"] == []
    assert open_ports(SimpleNamespace(**hosts["db1"]))["database"] == ["10.0.0.2", "198.51.100.30"]


def test_archiving_off_or_an_outside_repository_leaves_the_host_out(write_inventory, shop_inventory_text):
    text = shop_inventory_text.replace(
        "    roles: [postgres]\n", "    roles: [postgres]\n    postgres: {archive: false}\n"
    )
    hosts = {
        name.split("/")[-1]: data for name, data in pyinfra_hosts(load_environment(write_inventory(text)), SECRETS)
    }

    assert hosts["vault1"]["archive_servers"] == []
    assert hosts["db1"]["archive_vault_address"] == ""
    assert open_ports(SimpleNamespace(**hosts["db1"]))["database"] == ["10.0.0.2"]


def test_each_archived_host_needs_a_replication_password(write_inventory):
    assert "replication_passwords.db1" in required_secret_keys(load_environment(write_inventory()))


def test_barman_server_config_pulls_over_tls_with_the_window_as_retention():
    vault = {"pitr": {"window_days": 7, "minimum_redundancy": 1, "base_backup_max_age_days": 2}}

    text = archive_plan.server_config("db1", "10.0.0.3", vault, 15)

    lines = text.splitlines()
    assert lines[1] == "[db1]"
    assert "backup_method = postgres" in lines and "streaming_archiver = on" in lines
    assert "conninfo = host=10.0.0.3 port=5432 user=phoenix_archive dbname=postgres sslmode=require" in lines
    assert "retention_policy = RECOVERY WINDOW OF 7 DAYS" in lines
    assert "minimum_redundancy = 1" in lines
    assert "path_prefix = /usr/lib/postgresql/15/bin" in lines


def test_pgpass_escapes_the_password_and_covers_both_connections():
    text = archive_plan.pgpass([{"name": "db1", "address": "10.0.0.3"}], SECRETS)

    assert text.splitlines() == [
        "10.0.0.3:5432:postgres:phoenix_archive:pa\\:ss\\\\word",
        "10.0.0.3:5432:replication:phoenix_archive:pa\\:ss\\\\word",
    ]


def test_the_archive_role_gets_replication_and_backup_rights_only():
    sql = archive_plan.grants_sql()

    assert sql.startswith('ALTER ROLE "phoenix_archive" REPLICATION')
    assert "SUPERUSER" not in sql and "pg_write" not in sql and "CREATEROLE" not in sql
    assert "pg_create_restore_point(text)" in sql
    assert "pg_switch_wal()" in archive_plan.rights_check_command()


# Fakes of what the first base backup runs on the vault, in a directory of their own: each start of
# `barman cron` moves the archiver one step (nothing yet, then a segment being compressed into wals/ as a
# .tmp file, then the segment archived and listed in xlog.db, as Barman 3.4 does it); `barman backup`
# refuses, as the real one does, while xlog.db is empty.
FAKE_VAULT = {
    "systemctl": """#!/bin/sh
step=$(cat "$FAKE/cron-runs" 2>/dev/null || echo 0); step=$((step + 1)); echo $step > "$FAKE/cron-runs"
wals="$FAKE/home/db1/wals/0000000100000000"; mkdir -p "$wals"
[ $step = 2 ] && : > "$wals/000000010000000000000001.tmp"
[ $step = 3 ] && mv "$wals/000000010000000000000001.tmp" "$wals/000000010000000000000001" \
  && echo 000000010000000000000001 >> "$FAKE/home/db1/wals/xlog.db"
exit 0
""",
    "runuser": '#!/bin/sh\nshift 3; exec "$@"\n',  # runuser -u barman -- COMMAND...
    "psql": '#!/bin/sh\necho psql >> "$FAKE/calls"\n',
    "sleep": "#!/bin/sh\n",
    "barman": """#!/bin/sh
echo "barman $*" >> "$FAKE/calls"
case "$1" in
  backup) [ -s "$FAKE/home/db1/wals/xlog.db" ] || { echo "WAL archive: FAILED" >&2; exit 1; }
          [ -z "$FAIL_BACKUP" ] || exit 1 ;;
  check) echo "Server db1: replication slot: FAILED (slot 'barman' not active)" ;;
esac
""",
}


def run_first_base_backup(tmp_path, tries: int = 5, **environment) -> subprocess.CompletedProcess:
    fakes = tmp_path / "bin"
    fakes.mkdir()
    for name, script in FAKE_VAULT.items():
        (fakes / name).write_text(script)
        (fakes / name).chmod(0o755)
    line = make_first_base_backup_command("db1", archive_plan.conninfo("10.0.0.3"), str(tmp_path / "home"), tries=tries)
    return subprocess.run(
        ["sh", "-c", line],
        env={"PATH": f"{fakes}:/usr/bin:/bin", "FAKE": str(tmp_path), **environment},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_first_base_backup_waits_for_a_segment_listed_in_the_archive_not_one_being_compressed(tmp_path):
    finished = run_first_base_backup(tmp_path)

    assert finished.returncode == 0, finished.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == ["psql", "psql", "barman backup --wait --wait-timeout 300 db1"]  # two switches, then the backup
    assert (tmp_path / "cron-runs").read_text().strip() == "3"


def test_a_refused_first_base_backup_says_what_barman_check_finds(tmp_path):
    finished = run_first_base_backup(tmp_path, FAIL_BACKUP="yes")

    assert finished.returncode == 1
    assert "barman backup db1 failed; barman check db1 says:" in finished.stderr
    assert "replication slot: FAILED (slot 'barman' not active)" in finished.stderr


def test_a_stream_that_never_delivers_stops_the_first_base_backup_with_its_reason(tmp_path):
    finished = run_first_base_backup(tmp_path, tries=1)  # one switch: the segment is still being compressed

    assert finished.returncode == 1
    assert finished.stderr.strip() == "no WAL from db1 reached the archive"
    assert "barman backup" not in (tmp_path / "calls").read_text()


def test_a_pin_keeps_the_newest_base_backup_with_its_wal():
    assert make_barman_keep_command("db1") == (
        "cd /tmp && runuser -u barman -- barman keep --target full db1 latest"
        " && runuser -u barman -- barman list-backups --minimal db1 | head -1"
    )
