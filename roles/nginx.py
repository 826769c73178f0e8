"""nginx: the public front; HTTPS only, proxying to the app on loopback."""

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import server
from pyinfra.operations.util import any_changed

from roles.operations import managed_link, packages_installed, service_running, template_file
from roles.tls import certificate_paths

PACKAGES = ["nginx"]  # restore.py installs them while the data are restored (roles/host_packages.py)


@deploy("nginx")
def apply() -> None:
    packages_installed(name="Install nginx", packages=PACKAGES)
    app = host.data.app
    site = host.data.site
    certificate, key = certificate_paths(site["server_name"])
    config = template_file(
        name="nginx site",
        src="templates/nginx/etc/nginx/sites-available/app.conf.j2",
        dest=f"/etc/nginx/sites-available/{app['name']}.conf",
        mode="0644",
        site=site,
        app=app,
        certificate=certificate,
        key=key,
    )
    enabled = managed_link(
        name="Enable the site",
        path=f"/etc/nginx/sites-enabled/{app['name']}.conf",
        target=f"/etc/nginx/sites-available/{app['name']}.conf",
    )
    default_site = managed_link(name="Disable the default site", path="/etc/nginx/sites-enabled/default", present=False)
    service_running(name="nginx running", service="nginx")
    server.shell(
        name="Check and reload nginx",
        commands=["nginx -t -q && systemctl reload nginx"],
        _if=any_changed(config, enabled, default_site),
    )
