"""What upgrade.py does on one app host, decided on the control machine before any change.

Given the host's pyinfra data (and its database host's), returns the release to install and the
phoenix.upgrade.Plan: commands, markers, timers to pause, jobs to restore on a rollback. Raises
PhoenixError when the upgrade cannot be safe (no vault, the database not backed up) or the
release is unknown.
"""

from __future__ import annotations

from pathlib import Path

from phoenix import upgrade as safe_upgrade
from phoenix.errors import PhoenixError
from phoenix.wheel import file_sha256, wheel_version
from roles import app, backup, workers


def release_source(data) -> tuple[str, dict]:
    """Given the app host's pyinfra data, returns the source of the release to install (--data source,
    --data version from app.releases, or app.source) and the app settings to build it with (a release
    may have a lock of its own); PhoenixError for a version not in app.releases."""
    settings, flags = data.app, data.run_flags
    if flags["source"]:
        return flags["source"], settings
    version = flags["version"]
    if not version:
        return settings["source"], settings
    if version not in settings["releases"]:
        known = ", ".join(settings["releases"]) or "none"
        raise PhoenixError(f"--data version={version}: not in app.releases of {data.phoenix_host} (known: {known})")
    release = settings["releases"][version]
    if isinstance(release, dict):
        return release["source"], {**settings, "lock": release["lock"]}
    return release, settings


def timer_units(data) -> list[str]:
    """Given a host's pyinfra data, returns its backup timer units and, on an app host, the timers of
    app.periodic (paused too: their commands would meet a stopped app or data being restored)."""
    units = [unit for job in data.backup_jobs for unit in backup.timer_units(job)]
    if "app" in data.roles:
        units += [f"{workers.unit_name(data.app, entry)}.timer" for entry in data.app["periodic"]]
    return units


def plan_for(data, wheel: Path, inventory) -> safe_upgrade.Plan:
    """Given the app host's pyinfra data, the new release's archive (phoenix/artifact.py) and the run's
    inventory, returns what its upgrade does; PhoenixError when it cannot be safe."""
    settings, name = data.app, data.phoenix_host
    if not data.backup_jobs or not data.backup_target["vault"]:
        raise PhoenixError(
            f"{name}: upgrade.py needs backups to a Phoenix vault, which verifies the pre-upgrade backup"
        )
    database_host = name if settings["database"]["host"] == "localhost" else settings["database"]["host"]
    database_data = safe_upgrade.host_by_name(inventory, database_host).data
    database_job = f"db-{settings['database']['name']}"
    if database_job not in [job["name"] for job in database_data.backup_jobs]:
        raise PhoenixError(f"{name}: its database is not backed up by {database_host} (no job {database_job})")
    where = app.paths(settings)
    release = file_sha256(wheel)
    settings_text = app.settings_text(
        app.render_config(settings, data.database_address, data.secrets),
        app.render_environment(settings, data.database_address, data.secrets),
    )
    target = safe_upgrade.Release(
        version=wheel_version(wheel.name),
        wheel=f"{where['releases']}/{wheel.name}",
        sha256=release,
        migrated_marker=app.migration_marker(release, settings_text, app.migrate_command(settings)),
        static_marker=app.migration_marker(release, settings_text, app.static_command(settings)),
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
            "static": app.static_command(settings),
        },
        markers={
            "installed": where["installed_marker"],
            "migrated": where["migrated_marker"],
            "static": where["static_marker"],
        },
        restore_point=bool(database_data.archive_vault_address),
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
