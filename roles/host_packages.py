"""The Debian packages of the roles a host runs, gathered so that a converge installs them in one apt transaction.

Each apt transaction reads dpkg's database and runs the triggers (man-db, ldconfig, systemd) again; the roles
still install their own packages, and find them installed.
"""

from roles import app, backup, barman, firewall, nginx, postgres, vault


def provision(data) -> list[str]:
    """Given a host's data, the packages of the roles restore.py runs before the data come back (base's aside)."""
    roles = data.roles
    return [
        *firewall.PACKAGES,
        *(postgres.packages(data) if "postgres" in roles else []),
        *(vault.PACKAGES if "vault" in roles else []),
        *(backup.PACKAGES if data.backup_jobs else []),
    ]


def app_step(data) -> list[str]:
    """Given a host's data, the packages of its app and nginx roles."""
    roles = data.roles
    return [*(app.packages(data.app) if "app" in roles else []), *(nginx.PACKAGES if "nginx" in roles else [])]


def every(data) -> list[str]:
    """Given a host's data, the packages of every role deploy.py runs on it (base's aside)."""
    archive = barman.packages(data) if "vault" in data.roles and data.archive_servers else []
    return list(dict.fromkeys([*provision(data), *app_step(data), *archive]))
