"""Firewall: nftables, inbound denied except what this host's roles serve."""

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import server

from roles.operations import packages_installed, service_running, template_file

PACKAGES = ["nftables"]


def open_ports(data) -> dict:
    """Given a host's data, returns {"public": [tcp ports], "database": [addresses], "vault": {...} or None}.

    The database port is open to the app hosts using it and to the vault that archives it (Barman).
    The vault's port is open to vault.allow_from, or to everyone (its logins and TLS guard it).
    """
    public = [data.ssh["port"]]
    if "nginx" in data.roles:
        public += [80, 443]
    public += data.firewall["extra_tcp_ports"]
    database = {client["address"] for client in data.postgres_clients if client["address"] != "127.0.0.1"}
    if data.archive_vault_address:
        database.add(data.archive_vault_address)  # the vault's Barman pulls base backups and WAL
    database = sorted(database)
    vault = None
    if "vault" in data.roles:
        vault = {"port": data.vault["port"], "sources": sorted(data.vault["allow_from"])}
    return {"public": sorted(set(public)), "database": database, "vault": vault}


@deploy("Firewall")
def apply() -> None:
    packages_installed(name="Install nftables", packages=PACKAGES)
    rules = template_file(
        name="nftables rules",
        src="templates/firewall/etc/nftables.conf.j2",
        dest="/etc/nftables.conf",
        mode="0700",
        ports=open_ports(host.data),
    )
    server.shell(
        name="Check and load nftables rules",
        commands=["nft -c -f /etc/nftables.conf && nft -f /etc/nftables.conf"],
        _if=rules.did_change,
    )
    service_running(name="nftables at boot", service="nftables")
