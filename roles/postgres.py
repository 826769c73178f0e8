"""PostgreSQL from Debian: the app databases, their login roles, and who may connect."""

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import Command
from pyinfra.operations import server
from pyinfra.operations.util import any_changed

from phoenix import archive_plan
from phoenix.commands import make_postgres_settings_apply_command
from roles.operations import (
    as_postgres,
    packages_installed,
    postgres_database,
    postgres_login_role,
    service_running,
    template_file,
)


def packages(data) -> list[str]:
    """Given a host's data, the Debian packages the PostgreSQL role installs."""
    # zstd unpacks the archive's compressed restore stream (physical_restore.DECOMPRESS)
    return [f"postgresql-{data.postgres['version']}", *(["zstd"] if data.restore_from_archive else [])]


@deploy("PostgreSQL")
def apply() -> None:
    version = host.data.postgres["version"]
    config_directory = f"/etc/postgresql/{version}/main"
    clients = host.data.postgres_clients
    # empty: not archived; the vault's Barman connects with TLS (Debian's cluster has ssl on, snakeoil certificate)
    archive_from = host.data.archive_vault_address
    packages_installed(name="Install PostgreSQL", packages=packages(host.data))
    remote = archive_from or any(client["address"] != "127.0.0.1" for client in clients)
    listen = template_file(
        name="PostgreSQL listen addresses",
        src="templates/postgres/etc/postgresql/main/conf.d/phoenix.conf.j2",
        dest=f"{config_directory}/conf.d/phoenix.conf",
        user="postgres",
        group="postgres",
        mode="0644",
        listen_addresses="*" if remote else "localhost",
        archive=bool(archive_from),
        archive_timeout=host.data.postgres["archive_timeout_seconds"],
    )
    access = template_file(
        name="PostgreSQL client access (pg_hba.conf)",
        src="templates/postgres/etc/postgresql/main/pg_hba.conf.j2",
        dest=f"{config_directory}/pg_hba.conf",
        user="postgres",
        group="postgres",
        mode="0640",
        clients=clients,
        archive_from=archive_from,
        archive_role=archive_plan.REPLICATION_ROLE,
    )
    service = f"postgresql@{version}-main"
    service_running(name="PostgreSQL running", service=service)
    # a fresh cluster already runs with the defaults phoenix.conf repeats (listen_addresses = 'localhost'): no restart
    server.shell(
        name="Reload PostgreSQL (restart it when a changed setting needs that)",
        commands=[make_postgres_settings_apply_command(service)],
        _if=any_changed(listen, access),
    )
    for user in sorted({client["user"] for client in clients}):
        postgres_login_role(
            name=f"Database role {user}",
            role=user,
            password=host.data.secrets.database_password(user),
        )
    for database, owner in sorted({(client["database"], client["user"]) for client in clients}):
        postgres_database(name=f"Database {database}", database=database, owner=owner)
    if archive_from:
        postgres_login_role(
            name=f"Archive role {archive_plan.REPLICATION_ROLE} (the vault's Barman)",
            role=archive_plan.REPLICATION_ROLE,
            password=host.data.secrets.get(f"replication_passwords.{host.data.phoenix_host}"),
        )
        granted = host.get_fact(Command, command=archive_plan.rights_check_command())
        if granted != "t":
            server.shell(name="Archive role rights: replication, backup, restore points",
                         commands=[as_postgres(archive_plan.grants_sql())])  # fmt: skip
