"""The WSGI application: release archive built here, installed into an isolated venv there, run under systemd
or supervisor."""

from __future__ import annotations

import hashlib
import re
import shlex
from io import StringIO
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import jinja2
from packaging.version import Version
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.server import Command
from pyinfra.operations import server, systemd
from pyinfra.operations.util import any_changed

from phoenix.artifact import artifact_for
from phoenix.errors import PhoenixError, refuse
from phoenix.wheel import file_sha256, wheel_version
from roles import supervisor, workers
from roles.operations import (
    check_passes,
    command_once_per_value,
    managed_directory,
    managed_file,
    packages_installed,
    put_file,
    secret_file,
    service_running_or_restarted,
    system_account,
    template_file,
)
from roles.snapshot import sectioned_command, sections


def paths(app: dict) -> dict:
    """Given the app settings, returns the paths the app uses on the server."""
    home = f"/srv/{app['name']}"
    return {
        "home": home,
        "venv": f"{home}/venv",
        "python": f"{home}/venv/bin/python",
        "releases": f"{home}/releases",
        "config": f"/etc/{app['name']}/production.ini",
        "environment": f"/etc/{app['name']}/environment",  # app.environment, read by the process manager
        "unit": f"/etc/systemd/system/{app['name']}.service",
        "installed_marker": f"{home}/.installed-release",  # the installed wheel's SHA-256
        "migrated_marker": f"{home}/.migrated-release",  # migration_marker() of the last migration
        "static_marker": f"{home}/.static-release",  # migration_marker() of the last static_command run
        "system_packages": f"{home}/.system-packages",  # app.system_packages as last deployed
    }


def install_command(app: dict, remote_archive: str) -> str:
    """The shell command that installs a release archive (phoenix/artifact.py) into a new, isolated venv.

    pip installs from the archive alone (--no-index), each wheel checked against the SHA-256 its
    requirements file names. The previous venv is kept until the new one is complete, and put
    back when the install fails. pip compiles the bytecode (half the install's CPU time, measured
    in docs/apps.md): the app's user cannot write it later into the root-owned venv, so without it
    every worker would compile what it imports on every start.
    """
    where = paths(app)
    venv, unpacked = where["venv"], f"{where['home']}/.unpacked-release"
    # Debian's pip (python3-pip) installs into the venv: no pip of its own to set up first
    pip = f"PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip --python {venv}/bin/python install --quiet"
    pip += f" --no-index --require-hashes --find-links {unpacked}/wheels -r {unpacked}/requirements.txt"
    check = wsgi_import_check_command(app)
    return (
        f"rm -rf {unpacked} {venv}.previous && mkdir {unpacked} && tar -xf {remote_archive} -C {unpacked}"
        f" && if [ -d {venv} ]; then mv {venv} {venv}.previous; fi"
        f" && if python3 -m venv --without-pip {venv} && {pip}{f' && {check}' if check else ''};"
        f" then rm -rf {unpacked} {venv}.previous;"
        f" else rm -rf {unpacked} {venv}; [ ! -d {venv}.previous ] || mv {venv}.previous {venv}; exit 1; fi"
    )


# Finds the WSGI target's module without running it (it may need the config, which comes later):
# its parent packages are imported, so a missing dependency of theirs shows too.
_FIND_MODULE = """import importlib.util, sys
try:
    problem = "" if importlib.util.find_spec(sys.argv[1]) else f"no module named {sys.argv[1]!r}"
except Exception as error:
    problem = f"{type(error).__name__}: {error}"
sys.exit(problem or None)"""


def wsgi_import_check_command(app: dict) -> str:
    """The shell command, run after the install into the new venv, that fails with one line naming the app and
    app.wsgi unless the target's module is found there ("" for paste, whose target is the config's app)."""
    if app["wsgi"] == "paste":
        return ""
    where = paths(app)
    module = app["wsgi"].split(":", 1)[0]
    headline = f"app {app['name']}: the WSGI target {app['wsgi']} (app.wsgi) does not import from the new release"
    advice = "the previous release is left in place: correct app.wsgi, or the release's dependencies in app.lock"
    return (
        f"{{ problem=$(cd {where['home']} && {where['python']} -c {shlex.quote(_FIND_MODULE)} {shlex.quote(module)}"
        f' 2>&1) || {{ echo {shlex.quote(headline)}" ($problem); "{shlex.quote(advice)} >&2; false; }}; }}'
    )


def migrate_command(app: dict) -> str:
    """The shell command that migrates the app's database, run as the app's user ("" without migrations)."""
    if not app["migrate_command"]:
        return ""
    where = paths(app)
    migrate = app["migrate_command"].format(python=where["python"], config=where["config"])
    return f"{_as_app_user(app)} {migrate}"


def static_command(app: dict) -> str:
    """The shell command, run as the app's user with its environment, that collects the static files into
    app.static_dir ("" without app.static_command); fails with one line naming the app and the command."""
    if not app.get("static_command"):
        return ""
    where = paths(app)
    collect = app["static_command"].format(python=where["python"], static_dir=app["static_dir"])
    failed = (
        f"app {app['name']}: the static command `{app['static_command']}` (app.static_command) failed:"
        " correct the command, or app.static_dir and the settings it reads"
    )
    return f"{_as_app_user(app)} {collect} || {{ echo {shlex.quote(failed)} >&2; exit 1; }}"


def _as_app_user(app: dict) -> str:
    """The shell words before a command the app's user runs in its home with app.environment exported."""
    return f"cd {paths(app)['home']} && {_load_environment(app)}runuser -u {app['name']} --"


def _load_environment(app: dict) -> str:
    """The shell words exporting app.environment's file before a command ("" without app.environment).

    runuser keeps the environment, so the app's user gets the variables without reading the file itself.
    """
    if not app.get("environment"):
        return ""
    return f"set -a && . {paths(app)['environment']} && set +a && "


def supervised_command(app: dict) -> str:
    """The command supervisor runs: gunicorn, started by a shell that exports app.environment first (supervisor
    has no environment file, and its program files are world-readable)."""
    command = server_command(app)
    if not app.get("environment"):
        return command
    return f"/bin/sh -c {shlex.quote(f'{_load_environment(app)}exec {command}')}"


def run_as(app: dict) -> dict:
    """Given the app settings, returns how its other processes (roles/workers.py) run like it: its home, venv
    python, config, environment file, the variables the process manager sets and the shell words loading
    app.environment."""
    where = paths(app)
    return {
        "home": where["home"],
        "python": where["python"],
        "config": where["config"],
        "environment_file": where["environment"] if app["environment"] else "",
        "environment": _environment(app),
        "load_environment": _load_environment(app),
    }


def migration_marker(release: str, config_text: str, command: str) -> str:
    """What the migrated marker says once `release` (an archive's SHA-256) has migrated with this config and command."""
    config_digest = hashlib.sha256(config_text.encode()).hexdigest()
    command_digest = hashlib.sha256(command.encode()).hexdigest()
    return hashlib.sha256((release + config_digest + command_digest).encode()).hexdigest()


def schema_head_command(app: dict) -> str:
    """The shell command printing the schema revision the installed release expects ("" unless migrated by alembic)."""
    if "alembic" not in app["migrate_command"]:
        return ""
    where = paths(app)
    return f"cd {where['home']} && runuser -u {app['name']} -- {where['python']} -m alembic -c {where['config']} heads"


def migrate_and_check_command(app: dict) -> str:
    """The migrate command followed by the schema check (where the framework can tell); "" without migrations."""
    migrate, check = migrate_command(app), schema_check_command(app)
    if not migrate:
        return ""
    failed = f"app {app['name']}: the migrate command `{app['migrate_command']}` (app.migrate_command) failed: "
    advice = ": correct the command, or the release it migrates"
    # its errors are kept aside and passed on, so that the one line can end with the last of them: the cause
    migrate = (
        f'{{ errors=$(mktemp) && {{ {migrate} ; }} 2>"$errors"; status=$?; cat "$errors" >&2;'
        f' cause=$(grep -v "^[[:space:]]*$" "$errors" | tail -n 1); rm -f "$errors";'
        f' [ "$status" -eq 0 ] || {{ echo {shlex.quote(failed)}"${{cause:-exit status $status}}"{shlex.quote(advice)}'
        " >&2; false; }; }"
    )
    return f"{migrate} && ( {check} )" if check else migrate


def schema_check_command(app: dict) -> str:
    """The shell command that fails unless the database reached the schema head after a migration.

    alembic: `current` must name every head; Django (manage.py or django-admin migrate):
    `migrate --check`. "" for other migrate commands, where nothing can tell.
    """
    where, name = paths(app), app["name"]
    as_app = f"cd {where['home']} && runuser -u {name} --"
    command = app["migrate_command"]
    if "alembic" in command:
        alembic = f"{as_app} {where['python']} -m alembic -c {where['config']}"
        revisions = "2>/dev/null | awk '{print $1}' | sort | tr '\\n' ' '"
        return (
            f'heads=$({alembic} heads {revisions}) && current=$({alembic} current {revisions}) && [ -n "$heads" ]'
            f' && [ "$current" = "$heads" ] || {{ echo "app {name}: the migrate command exited 0, but the'
            ' database is at revision ${current:-none}, not the head $heads: check app.migrate_command" >&2; exit 1; }'
        )
    if re.search(r"(manage\.py|django-admin\S*|-m\s+django)\s+migrate\b", command):
        check = re.sub(r"\bmigrate\b.*$", "migrate --check", migrate_command(app))
        return (
            f"{check} >/dev/null || {{ echo 'app {name}: the migrate command exited 0, but Django still lists"
            " unapplied migrations: check app.migrate_command' >&2; exit 1; }"
        )
    return ""


def _app_and_processes(app: dict) -> str:
    """The app's program (or unit) name and those of app.processes."""
    return " ".join([app["name"], *(f"{app['name']}-{entry['name']}" for entry in app.get("processes", []))])


def stop_command(app: dict) -> str:
    """The shell command that stops the app (and app.processes) and fails unless it is stopped."""
    if app["process_manager"] == "supervisor":
        programs = _app_and_processes(app)
        return f"supervisorctl stop {programs}; ! supervisorctl status {programs} | grep -q RUNNING"
    return f"systemctl stop {app['name']}"  # app.processes' units are PartOf it: stopped with it


def control_command(app: dict, action: str) -> str:
    """The shell command that starts, stops or restarts the app and app.processes under its process manager.
    Each is named: systemd propagates a stop or restart through PartOf= but not a start, and restarts a
    stopped PartOf unit only when named (upgrade.py stops the app, later restarts it)."""
    if app["process_manager"] == "supervisor":
        return f"supervisorctl {action} {_app_and_processes(app)}"
    return f"systemctl {action} {_app_and_processes(app)}"


def database_url(database: dict, address: str, password: str) -> str:
    """Returns the SQLAlchemy URL with user and password URL-quoted.

    Not %-escaped for the ini file: the config template does that (its ini() macro).
    """
    host_part = "127.0.0.1" if address == "localhost" else address
    credentials = f"{quote(database['user'], safe='')}:{quote(password, safe='')}"
    return f"postgresql://{credentials}@{host_part}:5432/{database['name']}"


def template_variables(app: dict, address: str, secrets) -> dict:
    """What app.config_template and app.environment's values see: the database's URL and parts, the secrets."""
    password = secrets.database_password(app["database"]["user"])
    return {
        "database_url": database_url(app["database"], address, password),
        "database_host": "127.0.0.1" if address == "localhost" else address,
        "database_port": 5432,
        "database_name": app["database"]["name"],
        "database_user": app["database"]["user"],
        "database_password": password,
        "upload_dir": app["data_dirs"][0] if app["data_dirs"] else "",
        "static_dir": app["static_dir"],
        "max_upload_bytes": app["max_upload_bytes"],
        "session_secret": secrets.get("session_secret"),
    }


def render_config(app: dict, address: str, secrets) -> str:
    """Renders the app's ini template (StrictUndefined) with its database URL and secrets ("" without one)."""
    if not app["config_template"]:
        return ""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader("."), undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    template = environment.get_template(app["config_template"])
    return template.render(**template_variables(app, address, secrets))


def render_environment(app: dict, address: str, secrets) -> str:
    """Given the app settings, returns its environment file: one NAME='value' line per app.environment entry,
    each value rendered (StrictUndefined) with template_variables(); "" without app.environment.

    Single quotes make the value literal both to the shell that loads it for a command and to systemd's
    EnvironmentFile. Raises PhoenixError naming the variable when a rendered value holds a quote or a line break.
    """
    rendering = jinja2.Environment(undefined=jinja2.StrictUndefined)
    variables = template_variables(app, address, secrets)
    lines = []
    for name, template in sorted((app.get("environment") or {}).items()):
        try:
            value = rendering.from_string(template).render(**variables)
        except jinja2.TemplateError as error:
            raise PhoenixError(f"app {app['name']}: app.environment.{name}: {error}") from error
        if "'" in value or "\n" in value or "\r" in value:
            raise PhoenixError(
                f"app {app['name']}: app.environment.{name} holds a single quote or a line break once rendered,"
                " which an environment file cannot carry: change the value (a secret: generate it again)"
            )
        lines.append(f"{name}='{value}'\n")
    return "".join(lines)


def settings_text(config_text: str, environment_text: str) -> str:
    """Given the rendered config and environment file, returns what the markers hash: a change to either
    migrates (and collects) again. The config alone without an environment, as before app.environment."""
    return config_text + (f"\0{environment_text}" if environment_text else "")


def server_command(app: dict) -> str:
    """Returns the command line that serves the app with gunicorn on loopback."""
    where = paths(app)
    target = f"--paste {where['config']}" if app["wsgi"] == "paste" else app["wsgi"]
    return f"{where['python']} -m gunicorn --bind 127.0.0.1:{app['port']} --workers {app['workers']} {target}"


def debian_packages(app: dict) -> list[str]:
    """The Debian packages the app's role installs: its app.system_packages and Python's venv and pip."""
    return [*app["system_packages"], "python3-venv", "python3-pip"]


def packages(app: dict) -> list[str]:
    """The Debian packages of the app step: debian_packages() and, under supervisor, supervisor's."""
    return [*debian_packages(app), *(supervisor.PACKAGES if app["process_manager"] == "supervisor" else [])]


def system_user(app: dict) -> None:
    """The app's system user (restore.py makes it before the data that it owns comes back)."""
    home = paths(app)["home"]
    system_account(name=f"App user {app['name']}", user=app["name"], home=home, shell="/usr/sbin/nologin")


class ServerState(NamedTuple):
    """What planning read of the server in one command (each fact is a round trip): its output, its
    SERVER_STATE sections, and, once install_release() has installed the release in this run, its venv install's
    operation and the release archive's SHA-256 (apply() then does not check it all a second time)."""

    output: str
    found: dict[str, list[str]]
    release: tuple[Any, str] | None = None


def _server_state(app: dict) -> ServerState:
    output = host.get_fact(Command, command=f"{server_state_command(app)}; {workers.installed_names_command(app)}")
    return ServerState(output, sections(output, SERVER_STATE))


def _release(app: dict, where: dict, found: dict[str, list[str]]):
    """The app's packages, user, code directories and release venv; returns the venv install's operation and
    the release archive's SHA-256."""
    name = app["name"]
    packages_installed(name="Install the app's Debian packages", packages=debian_packages(app))
    _remove_dropped_system_packages(app, where, previous=found["system_packages"])
    system_user(app)
    # system_account hands the home to the app user; the code in it (releases, venv) stays root's
    managed_directory(name="App home", path=where["home"], user=name, group=name, mode="0755")
    managed_directory(name="App releases", path=where["releases"], user="root", group="root", mode="0755")
    managed_directory(name="App config directory", path=f"/etc/{name}", user="root", group=name, mode="0750")
    artifact = _artifact(app)
    _refuse_downgrade(app, artifact.name, running="".join(found["running_release"]))
    remote_archive = f"{where['releases']}/{artifact.name}"
    put_file(name=f"Upload {artifact.name}", src=str(artifact), dest=remote_archive, mode="0644")
    release = file_sha256(artifact)
    installed = command_once_per_value(
        name=f"Install {artifact.name} into an isolated venv",
        command=install_command(app, remote_archive),
        marker=where["installed_marker"],
        value=release,
    )
    return installed, release


@deploy("Application: the release")
def install_release() -> ServerState:
    """The app's packages, user, code directories and release venv, nothing configured or started: none of it
    touches the app's data (restore.py installs it while the data are restored). Nothing on a host that runs a
    release already: apply() installs one there, after the data are checked, so that a restore refused over live
    data leaves the running app's code as it was. Returns what it read of the server, and did, for apply(): both
    are planned before any operation runs, so a second read would find the same."""
    app = host.data.app
    state = _server_state(app)
    if "".join(state.found["running_release"]):
        return state
    return state._replace(release=_release(app, paths(app), state.found))


def code_restored_over(app: dict, restored_paths: list[str]) -> bool:
    """Whether a restore of these paths writes into the app's home (its venv, releases and markers)."""
    home = paths(app)["home"]
    return any(
        path == home or home.startswith(f"{path.rstrip('/')}/") or path.startswith(f"{home}/")
        for path in restored_paths
    )


@deploy("Application")
def apply(server_state: ServerState | None = None) -> None:
    """server_state: what install_release() read of the server, and installed, in the same run (None: read and
    install here)."""
    app = host.data.app
    where = paths(app)
    name = app["name"]
    state = server_state or _server_state(app)
    output, found = state.output, state.found
    installed, release = state.release or _release(app, where, found)
    for directory in app["data_dirs"]:
        managed_directory(name=f"App data {directory}", path=directory, user=name, group=name, mode="0750")
    if app["static_command"]:  # nginx (www-data) reads what the command collects
        managed_directory(name="App static files", path=app["static_dir"], user=name, group=name, mode="0755")
    try:
        config_text = render_config(app, host.data.database_address, host.data.secrets)
        environment_text = render_environment(app, host.data.database_address, host.data.secrets)
    except PhoenixError as error:
        refuse(f"phoenix: {host.data.phoenix_host}: nothing was changed: {error}")
    settings = settings_text(config_text, environment_text)
    config = _secret_or_absent("App config (production.ini)", where["config"], config_text, group=name)
    environment = _secret_or_absent("App environment file", where["environment"], environment_text, group=name)
    if app["migrate_command"]:
        command_once_per_value(
            name="Database migrations",
            command=migrate_and_check_command(app),
            marker=where["migrated_marker"],
            value=migration_marker(release, settings, migrate_command(app)),
        )
    if app["static_command"]:
        command_once_per_value(
            name=f"Collect the static files into {app['static_dir']}",
            command=static_command(app),
            marker=where["static_marker"],
            value=migration_marker(release, settings, static_command(app)),
        )
    code_or_config_changed = any_changed(installed, config, environment)
    if app["process_manager"] == "supervisor":
        if found["systemd_unit"]:
            _remove_systemd_unit(name, where["unit"])
        supervisor.program(
            program_name=name,
            command=supervised_command(app),
            environment=_environment(app),
            restart=code_or_config_changed,
        )
    else:
        if found["supervisor_program"]:
            supervisor.remove_program(program_name=name)
        _systemd_unit(app, where, restart=code_or_config_changed)
    workers.apply(
        app=app, run_as=run_as(app), restart=code_or_config_changed, installed=workers.installed_names(output)
    )
    # every deploy ends here, changed or not: a deploy exits 0 only over an app that answers
    server.shell(
        name="Wait until the app answers its health check",
        commands=[health_wait_command(app)],
        _if=code_or_config_changed,
    )
    check_passes(
        name="The app answers its health check",
        check=health_check_command(app),
        wait=health_wait_command(app),
        _if=lambda: not code_or_config_changed(),
    )


def installed_wheel_command(app: dict) -> str:
    """Prints the path of the release archive the app runs: the one in releases/ whose SHA-256 the installed
    marker holds (nothing for a release installed before archives, which deploy.py then replaces)."""
    where = paths(app)
    return (
        f'sha=$(cat {where["installed_marker"]} 2>/dev/null) && [ -n "$sha" ]'
        f" && sha256sum -- {where['releases']}/*.tar 2>/dev/null | awk -v sha=\"$sha\" '$1 == sha {{print $2; exit}}'"
    )


def _artifact(app: dict) -> Path:
    """The release archive of app.source; stops the run with one line when it cannot be built."""
    try:
        return artifact_for(app, app["source"])
    except PhoenixError as error:
        refuse(f"phoenix: {host.data.phoenix_host}: nothing was changed: {error}")


# What app.apply asks the server while planning, in one command (each fact is a round trip): the release
# archive the app runs, app.system_packages as last deployed, whether the app has a systemd unit, a
# supervisor program (printed when it has).
SERVER_STATE = ["running_release", "system_packages", "systemd_unit", "supervisor_program"]


def server_state_command(app: dict) -> str:
    """The shell command printing SERVER_STATE's sections for the app (read with roles.snapshot.sections)."""
    where = paths(app)

    def regular_file(path: str) -> str:
        return f"[ -f {path} ] && [ ! -L {path} ] && echo yes || true"

    return sectioned_command(
        {
            "running_release": f"{installed_wheel_command(app)} || true",
            "system_packages": f"cat {where['system_packages']} 2>/dev/null || true",
            "systemd_unit": regular_file(where["unit"]),
            "supervisor_program": regular_file(supervisor.config_path(app["name"])),
        }
    )


def _refuse_downgrade(app: dict, wheel_name: str, running: str) -> None:
    """deploy.py never installs an older release than the one running (`running`, the path of its archive; ""
    when none): its data may have migrated past it."""
    if not running or host.data.run_flags["allow_downgrade"]:
        return
    if Version(wheel_version(running)) > Version(wheel_version(wheel_name)):
        refuse(
            f"phoenix: {host.data.phoenix_host} runs {app['name']} {wheel_version(running)}, and app.source builds"
            f" the older {wheel_version(wheel_name)}; nothing was changed. Point app.source at release"
            f" {wheel_version(running)} (upgrade.py installed it), or downgrade on purpose with"
            " --data allow_downgrade=yes (and restore the pre-upgrade backup: docs/upgrades.md)."
        )


def _remove_dropped_system_packages(app: dict, where: dict, previous: list[str]) -> None:
    """Packages taken out of app.system_packages since the last deploy (`previous`, the lines recorded then) are
    removed, unless something needs them."""
    dropped = sorted({line.strip() for line in previous if line.strip()} - set(app["system_packages"]))
    if dropped:
        server.shell(
            name=f"Remove Debian packages dropped from app.system_packages: {', '.join(dropped)}",
            commands=[remove_unneeded_packages_command(dropped)],
        )
    listed = "".join(f"{package}\n" for package in sorted(app["system_packages"]))
    put_file(name="Record app.system_packages", src=StringIO(listed), dest=where["system_packages"], mode="0644")


def remove_unneeded_packages_command(packages: list[str]) -> str:
    """The shell command that purges each installed package of `packages` that no other installed package needs.

    apt-mark auto first: apt then tells (a simulated autoremove) whether anything still depends on it.
    """
    names = " ".join(shlex.quote(package) for package in packages)
    return (
        f"for package in {names}; do"
        " dpkg-query -W -f='${Status}' \"$package\" 2>/dev/null | grep -q 'ok installed' || continue;"
        ' apt-mark auto "$package" >/dev/null;'
        ' if apt-get -s autoremove | grep -q "^Remv $package "; then'
        ' DEBIAN_FRONTEND=noninteractive apt-get -y -q purge "$package" >/dev/null; fi; done'
    )


def _secret_or_absent(name: str, path: str, content: str, group: str):
    """The secret file (root:group, 0640) with `content`, or no file at all when `content` is empty."""
    if content:
        return secret_file(name=name, path=path, content=content, group=group, mode="0640")
    return managed_file(name=f"{name}: none", path=path, present=False)


def _environment(app: dict) -> dict:
    """The variables the process manager sets itself (no secrets: its files are readable by all)."""
    return {"PHOENIX_APP_CONFIG": paths(app)["config"]} if app["config_template"] else {}


def _systemd_unit(app: dict, where: dict, restart) -> None:
    unit = template_file(
        name="App systemd unit",
        src="templates/app/etc/systemd/system/app.service.j2",
        dest=where["unit"],
        mode="0644",
        app=app,
        command=server_command(app),
        environment=_environment(app),
        environment_file=where["environment"] if app["environment"] else "",
        home=where["home"],
    )
    systemd.daemon_reload(name="Reload systemd units", _if=unit.did_change)

    service_running_or_restarted(
        app["name"], lambda: unit.did_change() or restart(), running_name="App running", restart_name="Restart app"
    )


def _remove_systemd_unit(name: str, unit_path: str) -> None:
    systemd.service(name="Stop the app's systemd unit", service=name, running=False, enabled=False)
    managed_file(name="Remove the app's systemd unit", path=unit_path, present=False)
    systemd.daemon_reload(name="Reload systemd units")


def health_check_command(app: dict) -> str:
    """The shell command that asks the app's health check once, on loopback."""
    url = shlex.quote(f"http://127.0.0.1:{app['port']}{app['health_path']}")
    return f"curl -fsS --max-time 10 -o /dev/null {url}"


def health_wait_command(app: dict, seconds: int = 30) -> str:
    """The shell command that waits until the app answers its health check on loopback."""
    url = shlex.quote(f"http://127.0.0.1:{app['port']}{app['health_path']}")
    return (
        f"for i in $(seq {seconds * 2}); do curl -fsS -o /dev/null {url} && exit 0; sleep 0.5; done;"
        f" echo 'app did not answer {url} within {seconds}s' >&2; exit 1"
    )
