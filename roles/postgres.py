"""PostgreSQL from Debian: the app databases, their login roles, and who may connect."""

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, systemd

from roles.operations import postgres_database, postgres_login_role


@deploy("PostgreSQL")
def apply() -> None:
    version = host.data.postgres["version"]
    config_directory = f"/etc/postgresql/{version}/main"
    clients = host.data.postgres_clients
    apt.packages(name="Install PostgreSQL", packages=[f"postgresql-{version}"], no_recommends=True)
    remote = any(client["address"] != "127.0.0.1" for client in clients)
    listen = files.template(
        name="PostgreSQL listen addresses",
        src="templates/postgres/etc/postgresql/main/conf.d/phoenix.conf.j2",
        dest=f"{config_directory}/conf.d/phoenix.conf",
        user="postgres",
        group="postgres",
        mode="0644",
        listen_addresses="*" if remote else "localhost",
    )
    access = files.template(
        name="PostgreSQL client access (pg_hba.conf)",
        src="templates/postgres/etc/postgresql/main/pg_hba.conf.j2",
        dest=f"{config_directory}/pg_hba.conf",
        user="postgres",
        group="postgres",
        mode="0640",
        clients=clients,
    )
    service = f"postgresql@{version}-main"
    systemd.service(name="PostgreSQL running", service=service, running=True, enabled=True)
    systemd.service(name="Restart PostgreSQL", service=service, restarted=True, _if=listen.did_change)
    systemd.service(
        name="Reload PostgreSQL",
        service=service,
        reloaded=True,
        _if=lambda: access.did_change() and not listen.did_change(),
    )
    for user in sorted({client["user"] for client in clients}):
        postgres_login_role(
            name=f"Database role {user}",
            role=user,
            password=host.data.secrets.database_password(user),
        )
    for database, owner in sorted({(client["database"], client["user"]) for client in clients}):
        postgres_database(name=f"Database {database}", database=database, owner=owner)
