"""Point-in-time recovery from the vault's Barman archive: the plan, its refusals, the commands, the report."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from phoenix import archive_plan, barman_catalogue, physical_restore, restore_report
from phoenix.commands import BARMAN_CRON_NOW, restore_point_name
from phoenix.errors import PhoenixError
from phoenix.physical_restore import Plan
from phoenix.restore_report import summary

STAGING = physical_restore.staging_directory("db1")

DAY1 = datetime(2026, 11, 23, 1, 30, 40, tzinfo=UTC)
BACKUPS = [
    {"backup_id": "20261123T013000", "status": "DONE", "end_time_timestamp": str(int(DAY1.timestamp()))},
    {"backup_id": "20261124T013000", "status": "FAILED", "end_time_timestamp": str(int(DAY1.timestamp()) + 86400)},
    {"backup_id": "20261125T013000", "status": "DONE", "end_time_timestamp": str(int(DAY1.timestamp()) + 2 * 86400)},
]


def test_no_finished_base_backup_means_the_dump_is_restored():
    assert physical_restore.choose("db1", [], 7) is None
    assert physical_restore.choose("db1", [BACKUPS[1]], 7) is None


def test_the_newest_point_starts_from_the_newest_finished_base_backup():
    plan = physical_restore.choose("db1", BACKUPS, 7)

    assert plan.backup_id == "20261125T013000" and plan.target_time is None
    assert plan.target() == "the newest point the archive holds"


def test_a_target_time_starts_from_the_newest_base_backup_that_ended_before_it():
    paris = timezone(timedelta(hours=1))
    at = datetime(2026, 11, 24, 10, 59, 30, tzinfo=paris)

    plan = physical_restore.choose("db1", BACKUPS, 7, at=at)

    assert plan.backup_id == "20261123T013000" and plan.target_time == at
    assert plan.target() == "2026-11-24 10:59:30+01:00"


def test_a_target_before_the_window_is_refused_in_one_line_naming_the_oldest_point():
    with pytest.raises(PhoenixError) as caught:
        physical_restore.choose("db1", BACKUPS, 7, at=DAY1 - timedelta(seconds=1))

    message = str(caught.value)
    assert "\n" not in message
    assert message == (
        "--data at=2026-11-23 01:30:39+00:00: outside db1's point-in-time window: the archive reaches back"
        " to 2026-11-23 01:30:40 UTC (its oldest base backup; window 7 days), nothing earlier"
    )


def test_two_targets_are_refused():
    with pytest.raises(PhoenixError, match="give one target, not both"):
        physical_restore.choose("db1", BACKUPS, 7, at=DAY1 + timedelta(days=1), restore_point="pre-upgrade")


def test_a_base_backup_a_point_in_time_recovery_has_left_behind_is_never_chosen():
    # a recovery went back to day 2, before day 3's base backup: that one lies on the history left behind
    left_behind = [BACKUPS[0], BACKUPS[1], {**BACKUPS[2], "on_current_history": False}]

    assert physical_restore.choose("db1", left_behind, 7).backup_id == "20261123T013000"
    at = DAY1 + timedelta(days=3)
    assert physical_restore.choose("db1", left_behind, 7, at=at).backup_id == "20261123T013000"


def test_with_every_base_backup_left_behind_restore_stops_and_says_how_to_make_one():
    left_behind = [{**backup, "on_current_history": False} for backup in BACKUPS]

    with pytest.raises(PhoenixError) as caught:
        physical_restore.choose("db1", left_behind, 7)

    assert str(caught.value) == (
        "db1: every base backup in the vault's archive was taken on a timeline a point-in-time recovery has left"
        " since (the newest: 20261125T013000); none can recover db1's current history. Take one on the vault"
        " (barman backup db1), then run again"
    )


def test_a_restore_point_starts_from_a_base_backup_made_before_it():
    # upgrade.py's restore point says when it was made: the newest base backup before it; recovery replays
    # forward only, and day 3's base backup, after the point, would never reach it
    made = restore_point_name("web1", (DAY1 + timedelta(days=1, hours=10)).isoformat(timespec="seconds"))
    plan = physical_restore.choose("db1", BACKUPS, 7, restore_point=made)
    assert plan.backup_id == "20261123T013000" and plan.restore_point == made
    later = restore_point_name("web1", (DAY1 + timedelta(days=2, hours=10)).isoformat(timespec="seconds"))
    assert physical_restore.choose("db1", BACKUPS, 7, restore_point=later).backup_id == "20261125T013000"
    # a name of another making says nothing of when: the oldest base backup is the one sure to lie before it
    assert physical_restore.choose("db1", BACKUPS, 7, restore_point="before-migration").backup_id == "20261123T013000"
    older = restore_point_name("web1", (DAY1 - timedelta(hours=1)).isoformat(timespec="seconds"))
    with pytest.raises(PhoenixError, match=f"--data restore_point={older}: made at 2026-11-23 00:30:40 UTC, before"):
        physical_restore.choose("db1", BACKUPS, 7, restore_point=older)


def test_recovery_to_a_time_promotes_at_the_target_and_ships_the_streamed_segments():
    at = datetime(2026, 11, 24, 10, 59, 30, tzinfo=UTC)
    line = physical_restore.recover_stream_command(Plan("db1", "20261123T013000", DAY1, target_time=at), STAGING)

    assert "runuser -u barman -- barman -q archive-wal db1 >&2" in line
    assert (
        "runuser -u barman -- barman recover --target-tli latest --target-time '2026-11-24 10:59:30+00:00'"
        " --target-action promote"
        " db1 20261123T013000 /var/lib/barman/recover/db1 >&2"
    ) in line
    assert "for segment in /var/lib/barman/db1/streaming/0*" in line and 'basename "$segment" .partial' in line
    assert line.endswith(
        f"tar -C /var/lib/barman/recover/db1 -cf - . | {{ {physical_restore.COMPRESS}; }}"
        f" && {physical_restore.delete_in_background_command('/var/lib/barman/recover/db1')}"
    )


def test_a_segment_barman_cron_archives_while_barman_recovers_still_reaches_pg_wal(tmp_path, monkeypatch):
    """The minutely `barman cron` moves a closed segment from the stream's directory into the archive whenever it
    runs. Copied only after `barman recover` had read the archive's catalogue, a segment moved in between was in
    neither copy: a gap, and when it was a new timeline's first segment PostgreSQL replayed the parent timeline's
    segment of that number instead (CI's restore right after a point-in-time recovery failed so)."""
    monkeypatch.setattr(barman_catalogue, "BARMAN_HOME", str(tmp_path))
    streaming, archive = tmp_path / "db1" / "streaming", tmp_path / "db1" / "wals"
    streaming.mkdir(parents=True), archive.mkdir()
    (streaming / "000000030000000000000007").write_bytes(b"closed, not archived yet")
    (streaming / "000000030000000000000008.partial").write_bytes(b"being streamed")
    staging = tmp_path / "recover" / "db1"
    held = physical_restore.held_wal_directory(str(staging))
    hold = physical_restore.hold_streamed_wal_command("db1", held)
    add = physical_restore.add_held_wal_command(held, str(staging))
    line = physical_restore.recover_stream_command(Plan("db1", "20261123T013000", DAY1), str(staging))
    assert line.index(hold) < line.index("barman recover") < line.index(add)

    assert subprocess.run(["bash", "-c", hold]).returncode == 0
    (streaming / "000000030000000000000007").rename(archive / "000000030000000000000007")  # barman cron, meanwhile
    (staging / "pg_wal").mkdir(parents=True)  # barman recover's copy of the base backup, without that segment
    assert subprocess.run(["bash", "-c", add]).returncode == 0

    pg_wal = staging / "pg_wal"
    assert sorted(path.name for path in pg_wal.iterdir()) == ["000000030000000000000007", "000000030000000000000008"]
    assert (pg_wal / "000000030000000000000007").read_bytes() == b"closed, not archived yet"
    assert not os.path.exists(held)


@pytest.mark.skipif(not shutil.which("zstd"), reason="zstd is not installed on this machine")
@pytest.mark.parametrize("vault_has_zstd", [True, False])
def test_the_stream_arrives_whole_whether_or_not_the_vault_has_zstd(tmp_path, vault_has_zstd):
    source, received = tmp_path / "staging", tmp_path / "received"
    source.mkdir(), received.mkdir()
    (source / "PG_VERSION").write_text("15\n")
    (source / "base.bin").write_bytes(bytes(range(256)) * 4096 + b"\0" * 1_000_000)
    no_zstd = tmp_path / "bin"  # a PATH whose only tools are tar and cat, like a vault deployed before zstd
    no_zstd.mkdir()
    for tool in ("tar", "cat"):
        (no_zstd / tool).symlink_to(shutil.which(tool))
    path = os.environ["PATH"] if vault_has_zstd else str(no_zstd)
    vault = f"tar -C {source} -cf - . | {{ {physical_restore.COMPRESS}; }}"

    sent = subprocess.run(
        [shutil.which("bash"), "-c", vault], capture_output=True, env={"PATH": path}, check=True
    ).stdout
    subprocess.run(["bash", "-c", f"{physical_restore.DECOMPRESS} | tar -x -C {received}"], input=sent, check=True)

    assert (received / "base.bin").read_bytes() == (source / "base.bin").read_bytes()
    assert (received / "PG_VERSION").read_text() == "15\n"
    total = sum(path.stat().st_size for path in source.iterdir())
    assert (len(sent) < total / 4) if vault_has_zstd else (len(sent) > total)  # compressed, or plain tar


def test_a_directory_deleted_in_the_background_is_gone_at_once_and_its_copy_soon_after(tmp_path):
    old = tmp_path / "main.before-restore"
    (old / "base").mkdir(parents=True)
    (old / "base" / "16384").write_bytes(b"x" * 100_000)
    (tmp_path / "main").mkdir()

    subprocess.run(["bash", "-c", physical_restore.delete_in_background_command(str(old))], check=True, timeout=10)

    assert not old.exists() and (tmp_path / "main").exists()
    for _ in range(100):
        if [path.name for path in tmp_path.iterdir()] == ["main"]:
            break
        time.sleep(0.05)
    assert [path.name for path in tmp_path.iterdir()] == ["main"]


def test_recovery_to_a_restore_point_names_it():
    plan = Plan("db1", "20261125T013000", DAY1, restore_point="before v2")
    line = physical_restore.recover_stream_command(plan, STAGING)

    assert "--target-tli latest --target-name 'before v2' --target-action promote db1 20261125T013000" in line


def test_swap_in_refuses_a_database_holding_tables_unless_forced():
    careful = physical_restore.swap_in_command(15, ["links"], force=False)
    forced = physical_restore.swap_in_command(15, ["links"], force=True)

    assert "database links holds data" in careful and "--data force_restore=yes" in careful
    assert "holds data" not in forced
    for line in (careful, forced):
        assert "systemctl stop postgresql@15-main" in line
        assert "zstd -q -dcf | tar -x -C /var/lib/postgresql/15/main.restoring" in line
        # the whole stream is received before PostgreSQL stops: a broken stream leaves the old data in place
        assert (
            line.index("tar -x") < line.index("systemctl stop") < line.index("mv /var/lib/postgresql/15/main.restoring")
        )
        assert "mv /var/lib/postgresql/15/main.restoring /var/lib/postgresql/15/main; systemctl start" in line
        # a recovery that fails puts the previous data directory back
        assert "mv /var/lib/postgresql/15/main.before-restore /var/lib/postgresql/15/main;" in line


def test_the_newest_transaction_is_read_from_postgresqls_own_lines():
    log = (
        "2026-11-30 09:20:40 UTC [1] LOG:  recovery stopping before commit of transaction 751,"
        " time 2026-11-30 09:20:31.5+00\n"
        "2026-11-30 09:20:40 UTC [1] LOG:  redo done at 0/1B0001 system usage: CPU: user: 0.00 s;"
        " last completed transaction was at log time 2026-11-30 09:20:30.9+00\n"
    )

    assert physical_restore.recovered_to(log) == "2026-11-30 09:20:30.9+00"
    assert physical_restore.recovered_to(log.splitlines()[0]) == "2026-11-30 09:20:31.5+00"
    assert physical_restore.recovered_to("") == ""


def test_the_report_names_the_target_and_the_newest_transaction():
    recovered = {
        "target": "the newest point the archive holds",
        "backup": "20261130T091326",
        "newest_transaction": "2026-11-30 09:20:30.9+00",
    }

    text = summary("db1", {}, {"provision": 1.0}, recovered)

    assert (
        "  postgres: recovered from the vault's archive (base backup 20261130T091326) to the newest point the"
        " archive holds; newest transaction restored: 2026-11-30 09:20:30.9+00"
    ) in text.splitlines()


def test_every_recovery_follows_the_newest_timeline_and_the_stream_follows_the_restored_server():
    newest = physical_restore.recover_stream_command(Plan("db1", "20261125T013000", DAY1), STAGING)

    assert "barman recover --target-tli latest db1 20261125T013000 /var/lib/barman/recover/db1" in newest
    # archive recovery to the end of the WAL (so PostgreSQL names the newest transaction), unless Barman set one up
    staging = "/var/lib/barman/recover/db1"
    assert (
        f"[ -e {staging}/recovery.signal ] || {{ touch {staging}/recovery.signal"
        f" && echo \"restore_command = 'false'\" >> {staging}/postgresql.auto.conf; }}"
    ) in newest
    assert newest.index("recovery.signal") > newest.index("barman recover") and newest.index(
        "recovery.signal"
    ) < newest.index("tar -C")
    at = datetime(2026, 11, 24, 10, 59, 30, tzinfo=UTC)
    timed = physical_restore.recover_stream_command(Plan("db1", "x", DAY1, target_time=at), STAGING)
    assert "recovery.signal" not in timed
    reset = physical_restore.reset_stream_command("db1")
    assert "barman receive-wal --reset db1" in reset
    assert reset.index(physical_restore.stop_stream_command("db1")) < reset.index("barman receive-wal --reset db1")
    assert f"then {physical_restore.start_stream_command('db1')} " in reset
    assert f"else {BARMAN_CRON_NOW};" in reset  # a failed reset: the cron runs all the same
    assert f"{physical_restore.start_stream_command('db1')} || {BARMAN_CRON_NOW};" in reset
    # a restore stops the old server's stream once its data are sent; a drill's, restoring beside it, never does
    restore = physical_restore.recover_stream_command(Plan("db1", "x", DAY1), STAGING, then_stop_stream=True)
    assert restore.endswith(f"&& ({physical_restore.stop_stream_command('db1')} </dev/null &)")
    assert "receive-wal" not in newest


def test_stopping_a_stream_ends_that_servers_receive_wal_and_no_other():
    # stand-ins for Barman's `receive-wal SERVER` processes: SIGINT ends them after a moment, as it ends Barman's
    server = f"unit-{os.getpid()}"  # a name no real stream on this machine has
    script = (
        "import signal, sys, time; signal.signal(signal.SIGINT, lambda *_: (time.sleep(0.2), sys.exit(0)));"
        " print('ready', flush=True); time.sleep(60)"
    )
    streams = {
        name: subprocess.Popen([sys.executable, "-c", script, "receive-wal", name], stdout=subprocess.PIPE, text=True)
        for name in (server, f"{server}0")
    }
    try:
        for stream in streams.values():  # each has set its handler, however busy the machine
            assert stream.stdout.readline().strip() == "ready"
        subprocess.run(["bash", "-c", physical_restore.stop_stream_command(server)], check=True, timeout=30)
        assert streams[server].poll() == 0  # gone, after its own clean exit, when the stop returned
        assert streams[f"{server}0"].poll() is None
    finally:
        for stream in streams.values():
            stream.kill()
            stream.wait()


def test_a_replacement_server_at_a_new_address_is_followed_by_the_vaults_barman(
    write_inventory, shop_inventory_text, tmp_path
):
    from phoenix.inventory import load_environment, pyinfra_hosts
    from phoenix.secrets import Secrets

    secrets = Secrets({"replication_passwords": {"db1": "pw"}}, "test secrets")
    moved = load_environment(write_inventory(shop_inventory_text.replace("address: 10.0.0.3", "address: 10.0.0.9")))

    files = {
        path: (content, owner, mode) for path, content, owner, mode in physical_restore.barman_files(moved, secrets)
    }

    # what deploy.py would write on the vault for the inventory as it is now: a later converge changes nothing
    vault = dict(pyinfra_hosts(moved, secrets))["vault1"]
    (archived,) = vault["archive_servers"]
    assert files["/etc/barman.d/db1.conf"] == (
        archive_plan.server_config("db1", "10.0.0.9", vault["vault"], archived["version"]),
        "root",
        "0644",
    )
    assert files["/var/lib/barman/.pgpass"] == (archive_plan.pgpass([archived], secrets), "barman", "0600")
    assert "conninfo = host=10.0.0.9 " in files["/etc/barman.d/db1.conf"][0]


def test_a_barman_file_is_replaced_only_when_its_content_differs(tmp_path):
    target = tmp_path / "db1.conf"
    target.write_text("conninfo = host=10.0.0.3\n")
    owner = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    line = physical_restore.replace_file_command(str(target), owner, "0600")

    first = subprocess.run(["bash", "-c", line], input="conninfo = host=10.0.0.9\n", capture_output=True, text=True)
    again = subprocess.run(["bash", "-c", line], input="conninfo = host=10.0.0.9\n", capture_output=True, text=True)

    assert (first.returncode, first.stdout.strip(), again.returncode, again.stdout.strip()) == (0, "changed", 0, "")
    assert target.read_text() == "conninfo = host=10.0.0.9\n" and oct(target.stat().st_mode & 0o777) == "0o600"


def fake_vault(tmp_path, reset_works: bool, streams: bool = True):
    """A `remote` whose vault and restored server are this machine, with a fake `runuser` standing in for Barman,
    systemctl, systemd-run and the server's psql (whose pg_stat_replication shows the stream, or never does); its
    pgrep and pkill find no process: this machine's own would see the streams of the sandboxes' vaults."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    answer = (
        "exit 0" if reset_works else 'echo "ERROR: WAL location 0/5000000 is not valid for this server" >&2; exit 1'
    )
    streaming = "echo 1; exit 0" if streams else "exit 0"
    (bin_dir / "runuser").write_text(
        f'#!/bin/sh\ncase "$*" in *--reset*) {answer};; *pg_stat_replication*) {streaming};; esac\nexit 0\n'
    )
    (bin_dir / "systemctl").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "systemd-run").write_text("#!/bin/sh\nexit 0\n")
    for tool in ("pgrep", "pkill"):
        (bin_dir / tool).write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "sleep").write_text("#!/bin/sh\nexit 0\n")
    for program in bin_dir.iterdir():
        program.chmod(0o755)

    def remote(environment, name, with_stdin=False):  # as over SSH: a shell there gets the command as one string
        return ["env", f"PATH={bin_dir}:/usr/bin:/bin", "sh", "-c"]

    return remote


@pytest.mark.parametrize("reset_works", [True, False])
def test_a_wal_stream_the_vault_cannot_reset_is_named_in_the_restore_report(
    reset_works, write_inventory, tmp_path, monkeypatch
):
    from phoenix.inventory import load_environment
    from phoenix.secrets import Secrets

    environment = load_environment(write_inventory())
    monkeypatch.setattr(physical_restore, "barman_files", lambda environment, secrets: [])

    following = physical_restore.follow(environment, "db1", Secrets({}, "test"), fake_vault(tmp_path, reset_works))

    recovered = {"backup": "b1", "target": "the newest point the archive holds", "newest_transaction": "t",
                 "barman_repointed": following.repointed, "stream_error": following.stream_error}  # fmt: skip
    line = restore_report.recovery_line("db1", recovered)
    if reset_works:
        assert following.stream_error == "" and "!!" not in line
    else:
        assert following.stream_error == "ERROR: WAL location 0/5000000 is not valid for this server"
        assert line.splitlines()[1] == (
            "  !! the vault's Barman could not reset its WAL stream to this host (ERROR: WAL location 0/5000000 is"
            " not valid for this server): it is not archived until `runuser -u barman -- barman receive-wal --reset"
            " db1` succeeds on the vault; `phoenix status` shows the archive's lag"
        )


def test_restore_waits_for_the_vaults_stream_and_names_one_that_never_starts(write_inventory, tmp_path, monkeypatch):
    from phoenix.inventory import load_environment
    from phoenix.secrets import Secrets

    environment = load_environment(write_inventory())
    monkeypatch.setattr(physical_restore, "barman_files", lambda environment, secrets: [])

    following = physical_restore.follow(
        environment, "db1", Secrets({}, "test"), fake_vault(tmp_path, reset_works=True, streams=False)
    )

    assert (
        following.stream_error == f"its stream had not started {physical_restore.STREAM_WAIT_SECONDS}s after the reset"
    )


def test_a_target_time_after_the_newest_transaction_is_recovered_to_the_end_of_the_wal_once():
    timed = physical_restore.swap_in_command(15, ["links"], force=True, target_time=True)
    newest = physical_restore.swap_in_command(15, ["links"], force=True)

    # only PostgreSQL's own "ended before the target" lets it start again, without the target time, and only once
    assert f"grep -qF '{physical_restore.NOT_REACHED}'" in timed
    assert "sed -i '/^recovery_target_time *=/d' /var/lib/postgresql/15/main/postgresql.auto.conf" in timed
    assert "[ $again = no ] && again=yes" in timed
    # whether systemctl start fails or PostgreSQL dies while it recovers; back() otherwise
    assert "wait $starting || to_the_end || back;" in timed
    assert "systemctl is-active --quiet postgresql@15-main || to_the_end || back;" in timed
    assert "to_the_end() { false; };" in newest and "recovery_target_time" not in newest


def test_restore_leaves_the_recover_directory_barmans_so_the_runbooks_recover_by_hand_works_after_it():
    # restore.py (and a drill) recover as root; the runbook's by-hand `barman recover` runs as barman and makes its
    # own directory under /var/lib/barman/recover: a root-owned parent made that fail after any archive restore
    line = physical_restore.recover_stream_command(
        Plan("db1", "x", DAY1), physical_restore.staging_directory("db1", "phx-drill-db1")
    )

    assert (
        "install -d -o barman -g barman -m 0700 /var/lib/barman/recover /var/lib/barman/recover/phx-drill-db1" in line
    )
    assert "mkdir" not in line


def local_stream(write_inventory, monkeypatch, vault_line: str, host_line: str):
    """Starts a stream whose vault and new host are shells on this machine running the given lines."""
    from phoenix.inventory import load_environment

    environment = load_environment(write_inventory())
    monkeypatch.setattr(physical_restore, "recover_stream_command", lambda plan, staging, stop: vault_line)
    monkeypatch.setattr(physical_restore, "swap_in_command", lambda *arguments: host_line)
    monkeypatch.setattr(physical_restore, "make_holding_backup_lock_command", lambda line, wait, what: line)

    def local(*arguments, **options):
        return ["sh", "-c"]

    plan = Plan("db1", "b1", DAY1)
    vault_side = physical_restore.start_vault_side(environment, "db1", plan, local)
    return physical_restore.start_stream(environment, vault_side, plan, 15, ["links"], False, local, lock_wait=60)


def test_the_archive_restore_runs_in_the_background_until_restore_py_waits_for_it(
    write_inventory, monkeypatch, tmp_path
):
    # the host side finishes only once the test lets it (or gives up after 10 s): start_stream must have returned
    go = tmp_path / "go"
    host = f"wc -c; for i in $(seq 200); do [ -e {go} ] && echo recovered && exit 0; sleep 0.05; done; exit 1"

    streaming = local_stream(write_inventory, monkeypatch, "head -c 3000000 /dev/zero", host)

    assert streaming.sink.poll() is None  # still restoring while restore.py installs the app
    go.touch()
    assert physical_restore.finish_stream(streaming).split() == ["3000000", "recovered"]


def test_a_host_refusing_the_archive_restore_stops_the_vaults_side_and_says_why(write_inventory, monkeypatch):
    # the host refuses without reading a byte: the vault's side must end (not block on a full pipe) and the refusal
    # is what restore.py says
    refusal = "database links holds data (3 tables): not restoring the archive over it"
    host = f"echo {refusal!r} >&2; exit {physical_restore.REFUSED_STATUS}"

    streaming = local_stream(write_inventory, monkeypatch, "head -c 50000000 /dev/zero", host)

    assert streaming.vault_side.source.wait(timeout=30) != 0  # cut off by the refusal, not left writing into a pipe
    with pytest.raises(PhoenixError) as refused:
        physical_restore.finish_stream(streaming)
    assert str(refused.value) == refusal


def test_a_failed_recovery_on_the_vault_names_the_vault_and_barmans_words(write_inventory, monkeypatch):
    streaming = local_stream(
        write_inventory, monkeypatch, "echo 'ERROR: unknown backup b1' >&2; exit 1", "cat >/dev/null"
    )

    with pytest.raises(PhoenixError) as failed:
        physical_restore.finish_stream(streaming)
    assert str(failed.value) == (
        "vault1: barman recover of db1 failed (db1's data directory was left as it was): ERROR: unknown backup b1"
    )


def test_the_vault_recovers_before_the_new_host_is_ready_and_its_stream_waits_for_it(
    write_inventory, monkeypatch, tmp_path
):
    # restore.py starts the vault's side first, then provisions the host: barman recover must not wait for it
    from phoenix.inventory import load_environment

    recovered = tmp_path / "recovered"
    monkeypatch.setattr(
        physical_restore,
        "recover_stream_command",
        lambda plan, staging, stop: f"touch {recovered}; head -c 3000000 /dev/zero",
    )
    monkeypatch.setattr(physical_restore, "swap_in_command", lambda *arguments: "wc -c")
    monkeypatch.setattr(physical_restore, "make_holding_backup_lock_command", lambda line, wait, what: line)
    environment, plan = load_environment(write_inventory()), Plan("db1", "b1", DAY1)

    def local(*arguments, **options):
        return ["sh", "-c"]

    vault_side = physical_restore.start_vault_side(environment, "db1", plan, local)
    for _ in range(200):  # no host yet: the vault's side has recovered all the same
        if recovered.exists():
            break
        time.sleep(0.05)
    assert recovered.exists() and vault_side.source.poll() is None  # its stream waits in the pipe
    streaming = physical_restore.start_stream(environment, vault_side, plan, 15, ["links"], False, local, 60)
    assert physical_restore.finish_stream(streaming) == "3000000"


def test_only_a_restore_of_the_server_itself_stops_its_wal_stream_a_drills_never(write_inventory, monkeypatch):
    # a drill restores a copy while the server runs on: stopping its stream would leave it unarchived for a minute
    from phoenix.inventory import load_environment

    asked = []
    monkeypatch.setattr(
        physical_restore, "recover_stream_command", lambda plan, staging, stop: asked.append(stop) or "true"
    )
    environment, plan = load_environment(write_inventory()), Plan("db1", "b1", DAY1)

    def local(*arguments, **options):
        return ["sh", "-c"]

    for stand_in in ("", "phx-drill-db1"):
        physical_restore.start_vault_side(environment, "db1", plan, local, stand_in).source.wait()

    assert asked == [True, False]


def test_a_restore_of_the_server_itself_reserves_the_vaults_slot_once_recovery_ends_a_drills_copy_never(
    write_inventory, monkeypatch
):
    # a base backup holds no replication slot: until Barman's stream reconnects, WAL could be recycled unarchived
    from phoenix.inventory import load_environment

    swap_ins = []
    monkeypatch.setattr(physical_restore, "make_holding_backup_lock_command", lambda line, wait, what: line)
    monkeypatch.setattr(physical_restore, "recover_stream_command", lambda plan, staging, stop: "true")
    environment, plan = load_environment(write_inventory()), Plan("db1", "b1", DAY1)

    def local(*arguments, **options):
        return ["sh", "-c"]

    def receiving(environment, remote, server, line, stand_in_container=""):
        swap_ins.append(line)
        return ["true"]

    monkeypatch.setattr(physical_restore, "receiving_argv", receiving)
    for stand_in in ("", "phx-drill-db1"):
        vault_side = physical_restore.start_vault_side(environment, "db1", plan, local, stand_in)
        physical_restore.start_stream(environment, vault_side, plan, 15, ["links"], False, local, 60, stand_in)

    server, copy = swap_ins
    created = "pg_create_physical_replication_slot('\"'\"'phoenix_barman'\"'\"', true)"
    assert created in server and created not in copy
    # after recovery has ended, before the report's lines are read
    assert server.index("pg_is_in_recovery()") < server.index(created) < server.index("recovery stopping")


def test_the_vaults_stream_follows_the_restored_server_while_the_app_starts(write_inventory, monkeypatch):
    # finish() returns once the data are in (the app may start); followed(), before the report, waits for Barman
    import threading
    from types import SimpleNamespace

    from phoenix.secrets import Secrets

    answer = "LOG:  last completed transaction was at log time 2026-11-21 11:59:58.5+00"
    monkeypatch.setattr(physical_restore, "finish_stream", lambda streaming: answer)
    released = threading.Event()

    def follow(environment, server, secrets, remote):
        assert released.wait(timeout=10)
        return physical_restore.Following(True, "its stream had not started 60s after the reset")

    monkeypatch.setattr(physical_restore, "follow", follow)
    db1 = SimpleNamespace(stand_in_container="", phoenix_inventory=str(write_inventory()), secrets=Secrets({}, ""))
    streams, results = {"db1": "the stream"}, {}

    physical_restore.finish("db1", Plan("db1", "b1", DAY1), db1, streams, results)

    assert results["db1"]["newest_transaction"] == "2026-11-21 11:59:58.5+00"
    assert not streams["db1"].done()  # still following while restore.py goes on
    released.set()
    physical_restore.followed("db1", streams, results)
    assert results["db1"]["barman_repointed"]
    assert results["db1"]["stream_error"] == "its stream had not started 60s after the reset"
    assert streams == {}
