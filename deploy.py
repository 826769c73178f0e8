"""Build or update every server of an inventory: `pyinfra inventories/prod.py deploy.py`.

The roles in the order they run; each host gets those its inventory names.
"""

from pyinfra import host

from roles import app, backup, barman, base, firewall, host_packages, nginx, postgres, tls, vault
from roles.operations import managed_directory

base.apply(other_roles_packages=host_packages.every(host.data))
firewall.apply()
if "postgres" in host.data.roles:
    postgres.apply()
if "app" in host.data.roles:
    app.apply()
if "nginx" in host.data.roles:
    tls.apply()
    nginx.apply()
# Every host passes here, so pyinfra orders every database host's PostgreSQL before the vault's Barman,
# which connects to them (pyinfra only orders one host's operations among themselves).
managed_directory(name="Phoenix state directory", path="/var/lib/phoenix", mode="0755")
if "vault" in host.data.roles:
    vault.apply()
    if host.data.archive_servers:
        barman.apply()
if host.data.backup_jobs:
    backup.apply()
