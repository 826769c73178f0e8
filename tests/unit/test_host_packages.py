"""Which Debian packages restore.py installs before its data restore starts, and which beside it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from phoenix.inventory import load_environment, pyinfra_hosts
from roles import host_packages

REPOSITORY = Path(__file__).resolve().parents[2]


def host_data(name: str) -> SimpleNamespace:
    environment = load_environment(REPOSITORY / "inventories" / "sandbox.yml")
    addresses = {host: f"10.0.0.{number}" for number, host in enumerate(environment.hosts, start=2)}
    hosts = dict((data["phoenix_host"], data) for _, data in pyinfra_hosts(environment, None, addresses))
    return SimpleNamespace(**hosts[name])


def test_a_database_host_restores_once_postgresql_restic_and_the_firewall_are_in_and_installs_the_rest_beside_it():
    web1 = host_data("web1")  # nginx, the app and PostgreSQL on one host
    first, later = host_packages.provision(web1), host_packages.after_restore_start(web1)

    assert {"postgresql-15", "restic", "nftables"} <= set(first)
    assert {"nginx", "openssh-server", "sudo", "python3-venv"} <= set(later)
    assert not set(first) & set(later)  # each package in one transaction
    assert set(first) | set(later) >= set(host_packages.every(web1))


def test_an_app_host_without_postgresql_installs_nothing_of_it():
    web2 = host_data("web2")
    assert not [package for package in host_packages.every(web2) if package.startswith("postgresql")]
    assert not set(host_packages.provision(web2)) & set(host_packages.after_restore_start(web2))
