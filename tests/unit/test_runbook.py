"""`phoenix runbook`: the operator's runbook, generated from the inventory (its by-hand steps run in tests/e2e)."""

from __future__ import annotations

import copy
import dataclasses
import shlex
from datetime import UTC, datetime

import pytest

from phoenix import cli, run_flags, runbook
from phoenix.inventory import load_environment


@pytest.fixture
def shop(write_inventory):
    return load_environment(write_inventory())


def test_the_runbook_names_every_host_what_it_runs_and_where_it_backs_up(shop):
    text = runbook.markdown(shop)
    assert text.startswith("# Runbook: shop\n")
    assert "| web1 | alice@192.0.2.10:22 | nginx, the app under systemd (database links on db1) |" in text
    assert "| db1 | alice@192.0.2.20:22 | PostgreSQL (links) | rest:https://198.51.100.30:8443/db1/ |" in text
    assert "| db1 | db-links | database links (pg_dump -Fc) |" in text
    assert "| web1 | files | /etc, /var/lib/links/uploads |" in text


def test_the_runbook_says_where_the_keys_live_and_how_long_backups_are_kept(shop):
    text = runbook.markdown(shop)
    assert "`inventories/secrets/shop.yml.age`" in text and "age-identity.txt" in text
    assert "`/etc/phoenix-vault/vault.json` holds every client's restic password" in text
    assert "`/etc/phoenix/backup.json` (root, 0600) holds its own restic password" in text
    assert "then 7 daily, 4 weekly, 6 monthly; pins always" in text


def test_the_recovery_commands_are_this_environments(shop):
    text = runbook.markdown(shop)
    for host in ("web1", "db1"):
        assert f"/shop.py restore.py --limit {host} --data ssh_user=root\n" in text
    assert "    .venv/bin/phoenix drill " in text and "/shop.py\n" in text
    going_back = "restore.py --limit HOST --data snapshot=PINNED_RUN --data force_restore=yes"
    going_back += " --data allow_downgrade=yes"
    assert going_back in text and "--reason 'why it may go'" in text
    assert "upgrade.py --limit HOST --data version=VERSION\n" in text


def test_the_runbook_prints_each_command_as_the_function_the_end_to_end_tests_run_builds_it(shop):
    text = runbook.markdown(shop)
    builders = [runbook.restore_to_moment, runbook.restore_run, runbook.upgrade, runbook.downgrade, runbook.drill,
                runbook.status, runbook.report, runbook.pins, runbook.unpin]  # fmt: skip
    for command in [runbook.replace_server(shop, "web1"), *(builder(shop) for builder in builders)]:
        assert f"\n    {runbook.command_line(command)}\n" in text, command
    filled = runbook.unpin(shop, "20261130T120000Z-abcdef", "the change shipped")
    assert shlex.split(runbook.command_line(filled))[-3:] == [
        "20261130T120000Z-abcdef",
        "--reason",
        "the change shipped",
    ]


def test_the_by_hand_database_restore_uses_stock_restic_on_the_vault_and_pg_restore_on_the_host(shop):
    steps = runbook.manual_database_restore(shop, "db1", "links")
    assert [step.host for step in steps] == ["vault1", "vault1", "db1", "db1"]
    assert "RESTIC_REPOSITORY=/var/lib/phoenix-vault/repos/db1" in steps[1].command
    assert steps[1].command.endswith(
        "restic --no-lock --no-cache dump --tag job=db-links,part=data latest /links.dump > /root/links.dump"
    )
    assert "createdb -O links links" in steps[2].command
    assert "pg_restore --clean --if-exists --exit-on-error -d links < /root/links.dump" in steps[3].command
    scratch = runbook.manual_database_restore(shop, "db1", "links", target="scratch", dump="/root/x.dump")
    assert "-d scratch < /root/x.dump" in scratch[3].command


def test_an_archived_database_host_gets_its_by_hand_point_in_time_recovery_with_stock_barman(shop):
    text = runbook.markdown(shop)
    section = text.split("### db1: point-in-time recovery from the Barman archive\n", 1)[1]
    to_moment = runbook.manual_archive_restore(shop, "db1", runbook.ARCHIVE_MOMENT)
    newest = runbook.manual_archive_restore(shop, "db1")
    assert [step.host for step in to_moment] == ["vault1"] * 5 + ["db1"] * 4 + ["vault1"]
    for number, step in enumerate(to_moment, start=1):
        assert f"{number}. on **{step.host}**: {step.why}\n\n        {step.command}\n" in section
    # the newest point: the same steps, another recovery, printed as step 2's other way
    assert [step.command for step in newest if step not in to_moment] == [newest[2].command]
    assert f"   or, for the newest point the vault holds, {newest[2].why}:\n\n        {newest[2].command}\n" in section
    recover = shlex.split(to_moment[2].command)
    assert recover[:4] == ["runuser", "-u", "barman", "--"]
    assert recover[4:] == ["barman", "recover", "--target-tli", "latest", "--target-time", "2026-11-20 18:00:00+00:00",
                           "--target-action", "promote", "db1", "latest", "/var/lib/barman/recover/db1"]  # fmt: skip
    # the streamed WAL is copied aside before Barman reads its archive, and added to pg_wal after the recovery
    assert "/var/lib/barman/db1/streaming/0*" in to_moment[1].command and ".partial" in to_moment[1].command
    assert "/var/lib/barman/recover/db1.streamed/0*" in to_moment[3].command
    assert "/var/lib/barman/recover/db1/pg_wal/" in to_moment[3].command
    assert "mv /var/lib/postgresql/15/main /var/lib/postgresql/15/main.before-recovery-" in to_moment[5].command
    assert to_moment[7].command == "systemctl start postgresql@15-main"
    assert "barman receive-wal --reset db1" in to_moment[9].command
    assert "Stock restic, Barman and PostgreSQL's tools only." in text
    assert "restore.py" in section and "`.partial`" in section


def test_the_by_hand_recovery_takes_the_postgresql_version_and_a_scratch_archive_from_its_caller(shop):
    hosts = copy.deepcopy(shop.hosts)
    hosts["db1"]["postgres"]["version"] = 16
    steps = runbook.manual_archive_restore(dataclasses.replace(shop, hosts=hosts), "db1", archive="/root/x.tar")
    commands = " ".join(step.command for step in steps)
    assert "/var/lib/postgresql/16/main" in commands and "postgresql@16-main" in commands and "/15/" not in commands
    assert "-cf /root/x.tar" in steps[4].command and "-xf /root/x.tar" in steps[6].command


def test_a_database_host_without_archive_gets_no_point_in_time_recovery_section(write_inventory, shop_inventory_text):
    text = shop_inventory_text.replace(
        "    roles: [postgres]\n", "    roles: [postgres]\n    postgres:\n      archive: false\n"
    )
    environment = load_environment(write_inventory(text))
    printed = runbook.markdown(environment)
    assert "### db1: database links" in printed
    assert "point-in-time recovery" not in printed and "barman" not in printed
    assert "Stock restic and PostgreSQL's tools only." in printed


def test_the_html_runbook_is_escaped(shop):
    page = runbook.html_page(runbook.markdown(shop))
    assert "<script" not in page and "&lt;host&gt;" in page


def _runbook_commands(text: str) -> list[list[str]]:
    """Every indented code line of the runbook that runs a Phoenix tool, split as the shell would."""
    lines = [line.strip() for line in text.splitlines() if line.startswith("    .venv/bin/")]
    return [shlex.split(line) for line in lines]


def test_every_pyinfra_command_of_the_runbook_takes_only_flags_its_entry_point_declares(shop):
    commands = [words for words in _runbook_commands(runbook.markdown(shop)) if words[0].endswith("/pyinfra")]
    assert len(commands) >= 5
    for words in commands:
        entry_point = next(word for word in words if word.endswith(".py") and "/" not in word)
        given = [tuple(words[i + 1].split("=", 1)) for i, word in enumerate(words) if word == "--data"]
        run_flags.parse(entry_point, given, now=datetime(2026, 11, 30, tzinfo=UTC))  # raises on a rotten flag


def test_every_phoenix_command_of_the_runbook_is_one_the_cli_accepts(shop):
    commands = [words for words in _runbook_commands(runbook.markdown(shop)) if words[0].endswith("/phoenix")]
    assert {words[1] for words in commands} >= {"drill", "status", "report", "pins", "unpin"}
    for words in commands:
        cli.parser().parse_args(words[1:])  # SystemExit(2) on an unknown verb or argument
