"""Upgrade the app, unable to lose data: `pyinfra inventories/prod.py upgrade.py [--data version=X]`.

    --data version=2.0.0        install release 2.0.0 of app.releases (default: app.source)
    --data source=PATH          install this directory or .whl instead (a release not in the inventory)
    --data reason="..."         why, said in the pin (default: "pre-upgrade <host>: <app> to <version>")

On each app host: pause the backup timers (its own and its database host's) and hold
retention on the vault; stop the app; back up every job of those hosts, tagged pre-upgrade and
pinned; wait until the vault has verified those runs (or start the old release again and stop
here); install, migrate, start, verify (health, schema version, a request through nginx). Any
failure: reinstall the previous release, restore the pinned runs, verify, report "rolled back".
Timers always resume; a killed run is finished by the next one (phoenix/upgrade.py). The record
is printed and kept in /var/lib/phoenix/upgrade/history.jsonl on the host.
"""

import sys
from pathlib import Path

from pyinfra import host, state
from pyinfra.operations import files, python

from phoenix import upgrade as safe_upgrade
from phoenix.artifact import artifact_for
from phoenix.errors import PhoenixError, refuse
from phoenix.inventory import environment_of
from phoenix.vault_client import run_on_vault
from phoenix.wheel import file_sha256, wheel_version
from roles import app, backup


def release_source(settings: dict) -> tuple[str, dict]:
    """The source of the release to install (--data source, --data version from app.releases, or app.source)
    and the app settings to build it with (a release may have a lock of its own)."""
    flags = host.data.run_flags
    if flags["source"]:
        return flags["source"], settings
    version = flags["version"]
    if not version:
        return settings["source"], settings
    if version not in settings["releases"]:
        known = ", ".join(settings["releases"]) or "none"
        raise PhoenixError(
            f"--data version={version}: not in app.releases of {host.data.phoenix_host} (known: {known})"
        )
    release = settings["releases"][version]
    if isinstance(release, dict):
        return release["source"], {**settings, "lock": release["lock"]}
    return release, settings


def pyinfra_host(name: str):
    """The run's host object for a host of the inventory, by its short name."""
    for candidate in state.inventory:
        if candidate.data.get("phoenix_host") == name:
            return candidate
    raise PhoenixError(f"{name} is not in this inventory")


def timer_units(data) -> list[str]:
    return [f"{backup.unit_name(job)}.timer" for job in data.backup_jobs]


def plan_for(data, wheel: Path) -> safe_upgrade.Plan:
    """Given the app host's pyinfra data and the new release's archive (phoenix/artifact.py), returns what
    its upgrade does; PhoenixError when it cannot be safe."""
    settings, name = data.app, data.phoenix_host
    if not data.backup_jobs or not data.backup_target["vault"]:
        raise PhoenixError(
            f"{name}: upgrade.py needs backups to a Phoenix vault, which verifies the pre-upgrade backup"
        )
    database_host = name if settings["database"]["host"] == "localhost" else settings["database"]["host"]
    database_data = pyinfra_host(database_host).data
    database_job = f"db-{settings['database']['name']}"
    if database_job not in [job["name"] for job in database_data.backup_jobs]:
        raise PhoenixError(f"{name}: its database is not backed up by {database_host} (no job {database_job})")
    where = app.paths(settings)
    release = file_sha256(wheel)
    config_text = app.render_config(settings, data.database_address, data.secrets)
    target = safe_upgrade.Release(
        version=wheel_version(wheel.name),
        wheel=f"{where['releases']}/{wheel.name}",
        sha256=release,
        migrated_marker=app.migration_marker(release, config_text, app.migrate_command(settings)),
    )
    timers = {name: timer_units(data)}
    timers.setdefault(database_host, timer_units(database_data))
    return safe_upgrade.Plan(
        host=name,
        app=settings,
        target=target,
        reason=data.run_flags["reason"] or f"pre-upgrade {name}: {settings['name']} to {target.version}",
        timers=timers,
        database_host=database_host,
        database_job=database_job,
        file_paths=list(settings["data_dirs"]),
        smoke_commands=smoke_commands(data),
        expected_schema_command=app.schema_head_command(settings),
        commands={
            "install": app.install_command(settings, "{wheel}"),
            "migrate": app.migrate_and_check_command(settings),
            "start": app.control_command(settings, "restart"),
            "stop": app.stop_command(settings),
            "health_wait": app.health_wait_command(settings),
            "installed_wheel": app.installed_wheel_command(settings),
        },
        markers={"installed": where["installed_marker"], "migrated": where["migrated_marker"]},
    )


def smoke_commands(data) -> dict[str, str]:
    """Shell commands, run on the app host, for the health answer and smoke_path: through nginx if there is one."""
    settings = data.app
    if "nginx" in data.roles:
        server = data.site["server_name"]
        base = f"curl -fsS -k --max-time 20 --resolve {server}:443:127.0.0.1 https://{server}"
    else:
        base = f"curl -fsS --max-time 20 http://127.0.0.1:{settings['port']}"
    return {"health": f"{base}{settings['health_path']}", "smoke": f"{base}{settings['smoke_path']} -o /dev/null"}


def run_upgrade(state, host, plan: safe_upgrade.Plan, inventory: str) -> bool:
    """The upgrade, as a pyinfra callback: False (the host failed, with the reason printed) unless upgraded."""
    environment = environment_of(inventory)
    shells = {name: safe_upgrade.Shell(name, pyinfra_host(name)) for name in plan.timers}
    try:
        safe_upgrade.Upgrade(
            plan=plan,
            shells=shells,
            vault=lambda *arguments: run_on_vault(environment, *arguments, timeout=7200),
        ).run()
    except PhoenixError as error:
        print(f"phoenix: {error}", file=sys.stderr, flush=True)
        return False
    return True


if "app" in host.data.roles:
    try:
        SOURCE, SETTINGS = release_source(host.data.app)
        WHEEL = artifact_for(SETTINGS, SOURCE)
        PLAN = plan_for(host.data, WHEEL)
    except PhoenixError as error:
        refuse(f"phoenix: upgrade.py stopped before changing anything on {host.data.phoenix_host}:\n{error}")
    files.put(
        name=f"Upload {Path(PLAN.target.wheel).name}",
        src=str(WHEEL),
        dest=PLAN.target.wheel,
        mode="0644",
    )
    python.call(
        name=f"Upgrade {PLAN.app['name']} to {PLAN.target.version}",
        function=run_upgrade,
        plan=PLAN,
        inventory=host.data.phoenix_inventory,
    )
