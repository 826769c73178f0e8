"""Build or update every server of an inventory: `pyinfra inventories/prod.py deploy.py`.

The roles in the order they run; each host gets those its inventory names.
"""

from pyinfra import host

from roles import app, base, firewall, nginx, postgres, tls

base.apply()
firewall.apply()
if "postgres" in host.data.roles:
    postgres.apply()
if "app" in host.data.roles:
    app.apply()
if "nginx" in host.data.roles:
    tls.apply()
    nginx.apply()
