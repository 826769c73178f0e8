"""Continuous WAL archiving with Barman on the vault: which PostgreSQL hosts it archives and how.

Pull model: the vault's Barman takes base backups (pg_basebackup) and streams WAL (pg_receivewal)
over a replication connection it opens itself; the database host holds no credential for the
vault. Pure functions: the roles render what this module returns.
"""

from __future__ import annotations

import shlex

from phoenix import backup_plan

REPLICATION_ROLE = "phoenix_archive"  # the PostgreSQL role the vault's Barman logs in as
SLOT_NAME = "phoenix_barman"
BARMAN_USER = "barman"  # made by Debian's package
BARMAN_CONFIG_DIRECTORY = "/etc/barman.d"


def is_archived(host: dict) -> bool:
    """Given a host's merged settings, returns True when its PostgreSQL is archived continuously to the vault."""
    return "postgres" in host["roles"] and backup_plan.uses_vault(host) and host["postgres"]["archive"]


def archived_hosts(hosts: dict[str, dict]) -> list[str]:
    """Returns the names of the hosts whose PostgreSQL the vault archives, in inventory order."""
    if backup_plan.vault_host(hosts) is None:
        return []
    return [name for name, host in hosts.items() if is_archived(host)]


def secret_keys(hosts: dict[str, dict]) -> list[str]:
    """Returns the dotted secret keys archiving needs: one replication password per archived host."""
    return [f"replication_passwords.{name}" for name in archived_hosts(hosts)]


def conninfo(address: str, replication: bool = False) -> str:
    """Given a database host's address, returns the libpq connection string Barman uses (TLS required)."""
    line = f"host={address} port=5432 user={REPLICATION_ROLE} dbname=postgres sslmode=require"
    return line + (" replication=true" if replication else "")


def server_config(name: str, address: str, vault: dict, version: int) -> str:
    """Returns /etc/barman.d/NAME.conf: Barman's section for database host NAME at ADDRESS.

    The retention window is the vault's pitr.window_days; minimum_redundancy backups are always kept.
    """
    pitr = vault["pitr"]
    lines = [
        "; Managed by Phoenix (pyinfra); local changes are overwritten.",
        f"[{name}]",
        f"description = PostgreSQL on {name} (Phoenix)",
        f"conninfo = {conninfo(address)}",
        f"streaming_conninfo = {conninfo(address)}",
        "backup_method = postgres",
        "streaming_archiver = on",
        f"slot_name = {SLOT_NAME}",
        "create_slot = auto",
        f"path_prefix = /usr/lib/postgresql/{version}/bin",
        f"retention_policy = RECOVERY WINDOW OF {pitr['window_days']} DAYS",
        "retention_policy_mode = auto",
        "wal_retention_policy = main",
        f"minimum_redundancy = {pitr['minimum_redundancy']}",
        f"last_backup_maximum_age = {pitr['base_backup_max_age_days']} DAYS",
    ]
    return "\n".join(lines) + "\n"


def global_config(home: str) -> str:
    """Given Barman's home (where base backups and WAL live), returns /etc/barman.conf: that home, its log,
    the per-server directory."""
    lines = [
        "; Managed by Phoenix (pyinfra); local changes are overwritten.",
        "[barman]",
        f"barman_user = {BARMAN_USER}",
        f"barman_home = {home}",
        f"configuration_files_directory = {BARMAN_CONFIG_DIRECTORY}",
        "log_file = /var/log/barman/barman.log",
        "log_level = INFO",
        "compression = gzip",
    ]
    return "\n".join(lines) + "\n"


def pgpass(servers: list[dict], secrets) -> str:
    """Given the archived hosts ({name, address}), returns Barman's ~/.pgpass (mode 0600): one line per host,
    for both its normal and its replication connections."""
    lines = []
    for server in servers:
        password = secrets.get(f"replication_passwords.{server['name']}").replace("\\", "\\\\").replace(":", "\\:")
        for database in ("postgres", "replication"):
            lines.append(f"{server['address']}:5432:{database}:{REPLICATION_ROLE}:{password}")
    return "\n".join(lines) + "\n"


# What Barman's role may do on the database host: replicate, back up, switch WAL and name a restore
# point (PostgreSQL 15's non-superuser recipe). It cannot write a table nor drop anything.
REPLICATION_GRANTS = [
    "GRANT EXECUTE ON FUNCTION pg_backup_start(text, boolean) TO {role}",
    "GRANT EXECUTE ON FUNCTION pg_backup_stop(boolean) TO {role}",
    "GRANT EXECUTE ON FUNCTION pg_switch_wal() TO {role}",
    "GRANT EXECUTE ON FUNCTION pg_create_restore_point(text) TO {role}",
    "GRANT pg_read_all_settings TO {role}",
    "GRANT pg_read_all_stats TO {role}",
    "GRANT pg_checkpoint TO {role}",
]


def grants_sql(role: str = REPLICATION_ROLE) -> str:
    """Returns the SQL that gives Barman's role its rights (REPLICATION and the grants above); idempotent."""
    return "; ".join([f'ALTER ROLE "{role}" REPLICATION', *(grant.format(role=role) for grant in REPLICATION_GRANTS)])


def rights_check_command(role: str = REPLICATION_ROLE) -> str:
    """Returns the shell command printing t when Barman's role has every right grants_sql gives (else f or
    nothing: PostgreSQL missing), so a converged host runs no GRANT."""
    query = (
        f"SELECT rolreplication AND has_function_privilege('{role}', 'pg_switch_wal()', 'EXECUTE')"
        f" AND has_function_privilege('{role}', 'pg_create_restore_point(text)', 'EXECUTE')"
        f" AND has_function_privilege('{role}', 'pg_backup_start(text, boolean)', 'EXECUTE')"
        f" AND has_function_privilege('{role}', 'pg_backup_stop(boolean)', 'EXECUTE')"
        f" AND pg_has_role('{role}', 'pg_checkpoint', 'MEMBER')"
        f" AND pg_has_role('{role}', 'pg_read_all_settings', 'MEMBER')"
        f" AND pg_has_role('{role}', 'pg_read_all_stats', 'MEMBER')"
        f" FROM pg_roles WHERE rolname = '{role}'"
    )
    return (
        "command -v psql >/dev/null && id postgres >/dev/null 2>&1"
        f" && runuser -u postgres -- psql -X -tA -c {shlex.quote(query)} 2>/dev/null || true"
    )
