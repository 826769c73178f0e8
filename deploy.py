"""Build or update every server of an inventory: `pyinfra inventories/prod.py deploy.py`.

The roles in the order they run; each host gets those its inventory names.
"""

from pyinfra import host

from roles import app, backup, base, firewall, nginx, postgres, tls, vault

base.apply()
firewall.apply()
if "postgres" in host.data.roles:
    postgres.apply()
if "app" in host.data.roles:
    app.apply()
if "nginx" in host.data.roles:
    tls.apply()
    nginx.apply()
if "vault" in host.data.roles:
    vault.apply()
if host.data.backup_jobs:
    backup.apply()
