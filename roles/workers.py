"""The app's declared workers: long-running processes (app.processes) under the app's process manager, restarted
with it, and periodic commands (app.periodic) as systemd timers; each stopped and removed once dropped."""

from __future__ import annotations

import shlex
from collections.abc import Callable

from pyinfra.api import deploy
from pyinfra.operations import server, systemd

from roles import supervisor, timers
from roles.operations import service_running_or_restarted, template_file
from roles.snapshot import sectioned_command, sections

UNIT_DIRECTORY = "/etc/systemd/system"
TEMPLATES = "templates/app/etc/systemd/system"


def unit_name(app: dict, entry: dict) -> str:
    """Given the app settings and one app.processes or app.periodic entry, returns its program/unit name."""
    return f"{app['name']}-{entry['name']}"


def process_marker(app: dict) -> str:
    """The comment line in every file of an app.processes entry: how a later run finds the dropped ones."""
    return f"Phoenix: process of app {app['name']}"


def periodic_marker(app: dict) -> str:
    """The comment line in every unit of an app.periodic entry."""
    return f"Phoenix: periodic command of app {app['name']}"


def worker_command(entry: dict, run_as: dict) -> str:
    """Given an entry and how the app runs (roles.app.run_as()), returns its command with {python} and {config}
    filled in and % doubled (supervisor and systemd both expand %-expressions)."""
    command = entry["command"].format(python=run_as["python"], config=run_as["config"])
    return command.replace("%", "%%")


def supervised_worker_command(entry: dict, run_as: dict) -> str:
    """The command supervisor runs: started by a shell that exports app.environment first, when there is one."""
    command = worker_command(entry, run_as)
    if not run_as["load_environment"]:
        return command
    return f"/bin/sh -c {shlex.quote(run_as['load_environment'] + 'exec ' + command)}"


def marked_names_command(app: dict, pattern: str, marker: str) -> str:
    """The shell command printing the <name> of every file matching `pattern` (with one `*` for the unit name)
    whose second line is `marker`: the files this module wrote for the app."""
    prefix, suffix = pattern.split("*")
    return (
        f'for file in {pattern}; do [ -f "$file" ] || continue;'
        f' sed -n 2p "$file" | grep -qxF -e {shlex.quote("# " + marker)} -e {shlex.quote("; " + marker)} || continue;'
        f' name=${{file#{prefix}}}; echo "${{name%{suffix}}}"; done'
    )


def installed_names_command(app: dict) -> str:
    """The shell command printing the names marked_names_command() finds among the app's supervisor programs,
    systemd services and timers, in the sections "supervisor", "service" and "timer" (read by installed_names)."""
    return sectioned_command(
        {
            "supervisor": marked_names_command(
                app, f"/etc/supervisor/conf.d/{app['name']}-*.conf", process_marker(app)
            ),
            "service": marked_names_command(app, f"{UNIT_DIRECTORY}/{app['name']}-*.service", process_marker(app)),
            "timer": marked_names_command(app, f"{UNIT_DIRECTORY}/{app['name']}-*.timer", periodic_marker(app)),
        }
    )


def installed_names(output: str | None) -> dict[str, set[str]]:
    """Given installed_names_command()'s output, returns {"supervisor": names, "service": names, "timer": names}."""
    return {kind: set(lines) for kind, lines in sections(output, ["supervisor", "service", "timer"]).items()}


@deploy("App processes and periodic commands")
def apply(app: dict, run_as: dict, restart: Callable[[], bool], installed: dict[str, set[str]]) -> None:
    """Installs app.processes under app.process_manager (restarted when restart() says the app was) and
    app.periodic as timers; removes those dropped from the inventory or left under the other process manager
    (`installed`: what installed_names() found on the server)."""
    wanted = {entry["name"] for entry in app["processes"]}
    supervised = app["process_manager"] == "supervisor"
    marker = process_marker(app)
    for name in sorted(installed["supervisor"]):
        if not supervised or name not in wanted:
            supervisor.remove_program(program_name=f"{app['name']}-{name}")
    for name in sorted(installed["service"]):
        if supervised or name not in wanted:
            _remove_units(f"{app['name']}-{name}", [".service"], f"process {name} dropped from app.processes")
    for name in sorted(installed["timer"]):
        if name not in {entry["name"] for entry in app["periodic"]}:
            _remove_units(f"{app['name']}-{name}", [".timer", ".service"], f"periodic {name} dropped from app.periodic")
    for entry in app["processes"]:
        if supervised:
            supervisor.program(
                program_name=unit_name(app, entry),
                command=supervised_worker_command(entry, run_as),
                environment=run_as["environment"],
                restart=restart,
                user=app["name"],
                directory=run_as["home"],
                marker=marker,
            )
        else:
            _process_unit(app, entry, run_as)
    for entry in app["periodic"]:
        timers.scheduled_service(
            name=unit_name(app, entry),
            service_template=f"{TEMPLATES}/periodic.service.j2",
            timer_template=f"{TEMPLATES}/periodic.timer.j2",
            schedule=entry["schedule"],
            app=app,
            entry=entry,
            marker=periodic_marker(app),
            command=worker_command(entry, run_as),
            **_unit_variables(run_as),
        )


def _unit_variables(run_as: dict) -> dict:
    return {key: run_as[key] for key in ("home", "environment", "environment_file")}


def _process_unit(app: dict, entry: dict, run_as: dict) -> None:
    """A systemd unit PartOf the app's and wanted by it: `systemctl restart <app>` (what a deploy runs)
    restarts it too, `systemctl start <app>` starts it too."""
    name = unit_name(app, entry)
    unit = template_file(
        name=f"{name}.service",
        src=f"{TEMPLATES}/process.service.j2",
        dest=f"{UNIT_DIRECTORY}/{name}.service",
        mode="0644",
        app=app,
        entry=entry,
        marker=process_marker(app),
        command=worker_command(entry, run_as),
        **_unit_variables(run_as),
    )
    systemd.daemon_reload(name=f"Reload units for {name}", _if=unit.did_change)
    # enable links it by [Install] once; a changed unit may list other targets
    server.shell(name=f"Re-enable {name}", commands=[f"systemctl reenable {name}"], _if=unit.did_change)
    service_running_or_restarted(name, unit.did_change, running_name=f"{name} running", restart_name=f"Restart {name}")


def _remove_units(name: str, suffixes: list[str], why: str) -> None:
    """Stops, disables and deletes the units NAME<suffix>, then reloads systemd."""
    units = " ".join(f"{name}{suffix}" for suffix in suffixes)
    paths = " ".join(f"{UNIT_DIRECTORY}/{name}{suffix}" for suffix in suffixes)
    server.shell(
        name=f"Remove {units}: {why}",
        commands=[f"systemctl disable --now {units} 2>/dev/null; rm -f {paths} && systemctl daemon-reload"],
    )
