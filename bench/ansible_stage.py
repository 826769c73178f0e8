"""What the playbook of bench/ansible.py deploys, taken from a host Phoenix converged: the files it rendered
(copied out of the container into a staging directory), the release archive, the markers' values, the role's
password verifier and the commands Phoenix runs; and the manifest both builds are compared by."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from types import SimpleNamespace

from phoenix.commands import make_postgres_settings_apply_command
from roles import app as app_role
from roles import base, host_packages
from roles.tls import certificate_paths, self_signed_command

# files Phoenix renders on a dev.yml host, copied as they are (owner and mode set by the playbook)
RENDERED = [
    "/etc/timezone",
    "/etc/sudoers.d/phoenix-admins",
    "/etc/ssh/sshd_config.d/phoenix.conf",
    "/etc/apt/apt.conf.d/20auto-upgrades",
    "/etc/systemd/journald.conf.d/phoenix.conf",
    "/etc/nftables.conf",
    "/etc/postgresql/15/main/conf.d/phoenix.conf",
    "/etc/postgresql/15/main/pg_hba.conf",
    "/srv/links/.system-packages",
    "/etc/links/production.ini",
    "/etc/systemd/system/links.service",
    "/etc/nginx/sites-available/links.conf",
]
# compared by type, owner and mode only: made on the host, so different on each
MADE_ON_HOST = ["/etc/ssl/phoenix", "/srv/links/venv", "/etc/nginx/sites-enabled/links.conf", "/var/lib/phoenix"]
COMPARED_DIRECTORIES = [
    "/etc/systemd/journald.conf.d",
    "/srv/links",
    "/srv/links/releases",
    "/etc/links",
    "/var/lib/links/uploads",
]
SERVICES = ["ssh", "nftables", "postgresql@15-main", "links", "nginx"]


def _exec(container: str, command: str) -> str:
    result = subprocess.run(["docker", "exec", container, "sh", "-c", command], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{container}: `{command[:120]}` failed: {result.stderr.strip()}")
    return result.stdout


def packages(host: dict) -> list[str]:
    """The Debian packages deploy.py installs on a host of dev.yml's kind (no vault, no backups)."""
    data = SimpleNamespace(**host, archive_vault_address="", restore_from_archive=False, backup_jobs=[])
    own = base.packages(data)
    return [*own, *(package for package in host_packages.every(data) if package not in own)]


def stage(container: str, host: dict, staging: Path) -> dict:
    """Copies what Phoenix rendered on `container` into `staging` (paths kept) and returns the playbook's
    variables; `host` is the host's settings from the inventory."""
    app = host["app"]
    where = app_role.paths(app)
    archive = _exec(container, f"ls {where['releases']}").split()[0]
    copied = [*RENDERED, f"{where['releases']}/{archive}"]
    files = subprocess.run(["docker", "exec", container, "tar", "-c", "-C", "/", *(p.lstrip("/") for p in copied)],
                           capture_output=True, check=True).stdout  # fmt: skip
    staging.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(staging)], input=files, check=True)
    verifier = _exec(container, "runuser -u postgres -- psql -X -tA -c \"SELECT rolpassword FROM pg_authid"
                     f" WHERE rolname = '{app['database']['user']}'\"").strip()  # fmt: skip
    certificate, key = certificate_paths(host["site"]["server_name"])
    version = host["postgres"]["version"]
    return {
        "staging": str(staging),
        "packages": packages(host),
        "release_archive": archive,
        "installed_value": _exec(container, f"cat {where['installed_marker']}").strip(),
        "migrated_value": _exec(container, f"cat {where['migrated_marker']}").strip(),
        "install_command": app_role.install_command(app, f"{where['releases']}/{archive}"),
        "migrate_command": app_role.migrate_and_check_command(app),
        "health_wait_command": app_role.health_wait_command(app),
        "role_verifier": verifier,
        "postgres_service": f"postgresql@{version}-main",
        "postgres_apply_command": make_postgres_settings_apply_command(f"postgresql@{version}-main"),
        "certificate": certificate,
        "key": key,
        "self_signed_command": self_signed_command(host["site"]["server_name"], certificate, key),
    }


def write_variables(variables: dict, path: Path) -> None:
    """Writes the playbook's variables as YAML, each value !unsafe: Ansible must not template the shell commands."""
    path.write_text("".join(f"{name}: !unsafe {json.dumps(value)}\n" for name, value in variables.items()))


def manifest_command(package_names: list[str]) -> str:
    """The shell command printing what both builds must have alike: files (type, owner, mode, and the SHA-256
    of those copied), the app's user, the services' states, the packages, the database role and database."""
    content = [*RENDERED, "/srv/links/.installed-release", "/srv/links/.migrated-release"]
    stats = " ".join(shlex.quote(path) for path in [*content, *COMPARED_DIRECTORIES, *MADE_ON_HOST])
    catalog = (
        "SELECT rolname, rolcanlogin::text FROM pg_roles WHERE rolname = 'links'"
        " UNION ALL SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'links'"
    )
    return " && ".join(
        [
            f"stat -c '%n %F %U %G %a' {stats} /srv/links/releases/*",
            f"sha256sum {' '.join(content)} /srv/links/releases/*",
            "getent passwd links | cut -d: -f1,5-",
            *(f"echo {unit} $(systemctl is-enabled {unit}) $(systemctl is-active {unit})" for unit in SERVICES),
            f"dpkg-query -W -f='${{Package}} ${{db:Status-Status}}\\n' {' '.join(package_names)}",
            f"runuser -u postgres -- psql -X -tA -c {shlex.quote(catalog)}",
            "curl -fsS -o /dev/null -w 'health %{http_code}\\n' http://127.0.0.1:6543/health",
        ]
    )


def manifest(container: str, package_names: list[str]) -> list[str]:
    """manifest_command()'s lines on `container`."""
    return _exec(container, manifest_command(package_names)).splitlines()
