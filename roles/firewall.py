"""Firewall: nftables, inbound denied except what this host's roles serve."""

from ipaddress import IPv4Address

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd


def open_ports(data) -> dict:
    """Given a host's data, returns {"public": [tcp ports], "database": [addresses], "vault": {...} or None}.

    The vault's port is open to its clients' addresses; to everyone when one of them is a name
    rather than an IPv4 address (its logins and TLS still guard it).
    """
    public = [data.ssh["port"]]
    if "nginx" in data.roles:
        public += [80, 443]
    public += data.firewall["extra_tcp_ports"]
    database = sorted({client["address"] for client in data.postgres_clients if client["address"] != "127.0.0.1"})
    vault = None
    if "vault" in data.roles:
        sources = sorted({client["address"] for client in data.vault_clients})
        vault = {"port": data.vault["port"], "sources": sources if all(map(_is_ipv4, sources)) else []}
    return {"public": sorted(set(public)), "database": database, "vault": vault}


def _is_ipv4(address: str) -> bool:
    try:
        IPv4Address(address)
    except ValueError:
        return False
    return True


@deploy("Firewall")
def apply() -> None:
    apt.packages(name="Install nftables", packages=["nftables"], no_recommends=True)
    rules = files.template(
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
    systemd.service(name="nftables at boot", service="nftables", running=True, enabled=True)
