"""Stand-ins: which hosts a drill restores, and what a stand-in borrows from the host it replaces."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from phoenix import physical_restore, restore_plan, run_flags, sandbox_state, stand_in
from phoenix.errors import PhoenixError
from phoenix.inventory import load_environment, pyinfra_hosts
from phoenix.secrets import Secrets, generated_secrets

SHOP_SECRETS = {
    "database_passwords": {"links": "shop-database-password"},
    "session_secret": "shop-session",
    "restic_passwords": {"web1": "shop-restic-web1", "db1": "shop-restic-db1"},
    "vault_credentials": {"web1": "shop-vault-web1", "db1": "shop-vault-db1"},
    "vault_tls_certificate": "-----BEGIN CERTIFICATE-----shop",
    "vault_tls_private_key": "-----BEGIN PRIVATE KEY-----shop",
    "tls_certificate": "site certificate",
    "tls_private_key": "site key",
}

DEV_INVENTORY = """\
environment: {name: dev, throwaway: true}
connection: {type: docker, sandbox: dev}
defaults:
  site: {server_name: links.dev.test}
  backup: {enabled: false}
hosts:
  web1:
    roles: [nginx, app, postgres]
"""


@pytest.fixture
def secrets_by_environment(monkeypatch):
    """The shop's secrets come from memory (no age identity here); throwaway ones are generated as usual."""

    def load(environment):
        if environment.throwaway:
            return generated_secrets(environment.name, ["database_passwords.links", "session_secret"])
        return Secrets(SHOP_SECRETS, "shop secrets")

    monkeypatch.setattr(stand_in, "load_secrets", load)


def record_sandbox(name: str, addresses: dict[str, str]) -> None:
    hosts = {
        host: {"container": sandbox_state.container_name(name, host), "address": address}
        for host, address in addresses.items()
    }
    sandbox_state.write(name, {"sandbox": name, "image": "test", "hosts": hosts})


def test_a_drill_restores_every_backed_up_host_and_never_the_vault(write_inventory):
    environment = load_environment(write_inventory())
    assert stand_in.data_hosts(environment) == ["web1", "db1"]


def test_one_host_is_drilled_with_the_hosts_it_shares_a_database_with(write_inventory):
    environment = load_environment(write_inventory())
    assert stand_in.data_hosts(environment, "db1") == ["web1", "db1"]
    assert stand_in.data_hosts(environment, "web1") == ["web1", "db1"]


@pytest.mark.parametrize(
    "host,message",
    [("vault1", "--host vault1: it has no backups on shop's vault"), ("web9", "--host web9: not a host of")],
)
def test_a_host_that_cannot_be_drilled_is_named(write_inventory, host, message):
    with pytest.raises(PhoenixError, match=message):
        stand_in.data_hosts(load_environment(write_inventory()), host)


def test_drill_stand_ins_live_in_the_drill_sandbox_and_read_the_real_vault(write_inventory, secrets_by_environment):
    path = write_inventory()
    record_sandbox("drill-shop", {"web1": "172.30.0.2", "db1": "172.30.0.3"})

    hosts = dict(stand_in.stand_in_hosts(str(path), "", str(path), "drill-shop", ["web1", "db1"]))

    assert sorted(hosts) == ["@sandbox/phx-drill-shop-db1", "@sandbox/phx-drill-shop-web1"]
    web1, db1 = hosts["@sandbox/phx-drill-shop-web1"], hosts["@sandbox/phx-drill-shop-db1"]
    assert web1["database_address"] == "172.30.0.3"  # the drill's db1, not production's
    assert [client["address"] for client in db1["postgres_clients"]] == ["172.30.0.2"]
    assert web1["backup_target"]["url"] == "rest:https://198.51.100.30:8443/web1/"  # the real vault
    assert web1["phoenix_inventory"] == str(path.resolve())  # restore.py asks the real vault
    assert web1["stand_in"] == "shop/web1" and web1["tls_mode"] == "self-signed"
    assert "ssh_hostname" not in web1 and "_sudo" not in web1
    assert all(job["ping_url"] == "" for host in hosts.values() for job in host["backup_jobs"])
    assert [job["name"] for job in db1["backup_jobs"]] == ["db-links", "files"]
    assert db1["secrets"].get("restic_passwords.db1") == "shop-restic-db1"


def test_a_stand_in_not_from_the_archive_restores_its_dump_and_never_asks_the_archive(
    write_inventory, secrets_by_environment, monkeypatch
):
    # a dev copy, or a drill with --dumps: the stand-in of an archived host restores the dump
    path = write_inventory()
    record_sandbox("drill-shop", {"web1": "172.30.0.2", "db1": "172.30.0.3"})
    source_db1 = {
        data["phoenix_host"]: data for _, data in pyinfra_hosts(load_environment(path), Secrets(SHOP_SECRETS, ""))
    }["db1"]
    monkeypatch.setattr(physical_restore, "list_backups", lambda *arguments: pytest.fail("the vault's Barman asked"))

    hosts = dict(stand_in.stand_in_hosts(str(path), "", str(path), "drill-shop", ["web1", "db1"]))

    db1 = hosts["@sandbox/phx-drill-shop-db1"]
    assert source_db1["archive_vault_address"] == "198.51.100.30"
    assert db1["archive_vault_address"] == ""
    restore_flags = run_flags.parse(["restore.py"], [])  # what `pyinfra ... restore.py` gives it
    assert restore_plan.physical_for_host(SimpleNamespace(**{**db1, "run_flags": restore_flags})) is None


class FakeVaultStream:
    """What subprocess.Popen gives for either side of the stream: nothing to read, exit 0."""

    def __init__(self, argv, **options):
        self.argv, self.returncode = argv, None
        self.stdout = io.BytesIO(b"")

    def wait(self):
        self.returncode = 0
        return 0


def test_a_drill_stand_in_of_an_archived_host_recovers_the_archive_into_its_own_container_only(
    write_inventory, secrets_by_environment, monkeypatch
):
    path = write_inventory()
    record_sandbox("drill-shop", {"web1": "172.30.0.2", "db1": "172.30.0.3"})
    backup = {"backup_id": "20261121T020000", "status": "DONE", "end_time_timestamp": "1763690430"}
    monkeypatch.setattr(physical_restore, "list_backups", lambda environment, server, remote: [backup])
    monkeypatch.setattr(physical_restore, "follow", lambda *arguments: pytest.fail("the vault's Barman repointed"))
    started, sent = [], []
    answer = b"LOG:  last completed transaction was at log time 2026-11-21 11:59:58.5+00\n"

    def popen(argv, **options):
        if options.get("stdin") is None:  # the vault's side
            started.append(argv)
        else:  # the receiving side, which prints PostgreSQL's own lines
            sent.append(argv)
            options["stdout"].write(answer)
        return FakeVaultStream(argv)

    monkeypatch.setattr(physical_restore.subprocess, "Popen", popen)

    hosts = dict(stand_in.stand_in_hosts(str(path), "", str(path), "drill-shop", ["web1", "db1"], from_archive=True))
    db1 = SimpleNamespace(**{**hosts["@sandbox/phx-drill-shop-db1"], "run_flags": run_flags.parse(["restore.py"], [])})
    plan = restore_plan.physical_for_host(db1)
    streams, results = {}, {}
    physical_restore.prepare("db1", plan, db1, streams=streams)
    physical_restore.start("db1", plan, db1, force=False, streams=streams)
    physical_restore.finish("db1", plan, db1, streams=streams, results=results)

    assert db1.archive_vault_address == "" and plan.backup_id == "20261121T020000"  # the vault never archives it
    (vault,) = started  # the source's vault recovers into a staging directory of the drill's own
    assert vault[:2] == ["ssh", "-p"] and "/var/lib/barman/recover/phx-drill-shop-db1 " in vault[-1]
    assert " /var/lib/barman/recover/db1 " not in vault[-1]
    (into,) = sent  # and the data go into the stand-in's container, never to the source's db1 (198.51.100.x)
    assert into[:4] == ["docker", "exec", "-i", "phx-drill-shop-db1"]
    assert results["db1"]["newest_transaction"] == "2026-11-21 11:59:58.5+00"
    assert not results["db1"]["barman_repointed"] and results["db1"]["stream_error"] == ""


def test_a_dev_copy_gets_its_own_settings_and_borrows_only_the_backup_secrets(
    write_inventory, secrets_by_environment, shop_inventory_text
):
    source = write_inventory(shop_inventory_text.replace("roles: [nginx, app]", "roles: [nginx, app, postgres]")
                             .replace("host: db1", "host: localhost"))  # fmt: skip
    dev = write_inventory(DEV_INVENTORY, name="dev")
    record_sandbox("dev", {"web1": "172.31.0.2"})

    ((name, web1),) = stand_in.stand_in_hosts(str(source), "", str(dev), "dev", ["web1"])

    assert name == "@sandbox/phx-dev-web1"
    assert web1["site"]["server_name"] == "links.dev.test"  # dev's settings
    assert web1["secrets"].get("restic_passwords.web1") == "shop-restic-web1"  # the shop's backups
    assert web1["secrets"].get("vault_credentials.web1") == "shop-vault-web1"
    assert web1["secrets"].database_password("links") != "shop-database-password"  # dev's own database
    assert [job["name"] for job in web1["backup_jobs"]] == ["db-links", "files"]


def test_a_dev_copy_whose_database_differs_is_refused_before_anything_runs(
    write_inventory, secrets_by_environment, shop_inventory_text
):
    source = write_inventory(
        shop_inventory_text.replace("roles: [nginx, app]", "roles: [nginx, app, postgres]").replace(
            "host: db1", "host: localhost\n        name: shop"
        )
    )
    dev = write_inventory(DEV_INVENTORY, name="dev")
    record_sandbox("dev", {"web1": "172.31.0.2"})

    with pytest.raises(PhoenixError, match="host web1 serves database.s. links, but shop's web1 backs up shop"):
        stand_in.stand_in_hosts(str(source), "", str(dev), "dev", ["web1"])


def test_the_written_inventory_names_both_environments_and_the_sandbox(write_inventory):
    source = load_environment(write_inventory())
    arguments = stand_in.inventory_arguments(source, source.path, "drill-shop", ["web1", "db1"])
    text = stand_in.write_inventory(arguments).read_text()
    assert "servers = inventory_hosts(" in text and "'target_sandbox': 'drill-shop'" in text
    assert arguments["source_sandbox"] == ""  # an ssh environment: its vault is reached by address


FAILING_DEPLOY = """
from pyinfra.operations import server
server.shell(name="Step that works", commands=["true"])
server.shell(name="First base backup of db1", commands=["echo 'WAL archive: FAILED (xlog.db is empty)' >&2; exit 3"])
"""


def test_a_failed_run_shows_what_the_host_said_as_it_happens_and_again_at_the_end(tmp_path, capsys):
    deploy = tmp_path / "failing_deploy.py"
    deploy.write_text(FAILING_DEPLOY)
    command = [str(stand_in.REPOSITORY / ".venv" / "bin" / "pyinfra"), "-y", "@local", str(deploy)]

    code = stand_in.run_pyinfra(command, "", tmp_path / "deploy.log", "deploy.py")

    shown = capsys.readouterr().err
    said = "First base backup of db1: [@local] WAL archive: FAILED (xlog.db is empty)"
    assert code != 0
    assert shown.count(said) == 2  # once as it happened, once at the end, where a reader of a long output looks
    assert shown.splitlines()[-3:] == [
        "[deploy.py] what the hosts reported:",
        f"  {said}",
        "  First base backup of db1: [@local] Error: executed 0 commands",
    ]
    assert "Step that works: [@local]" not in shown  # a success stays one line, the operation's name
    assert "WAL archive: FAILED" in (tmp_path / "deploy.log").read_text()
