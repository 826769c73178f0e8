"""The WSGI application: wheel built here, installed into a venv there, run by systemd or supervisor."""

from __future__ import annotations

import hashlib
import shlex
import sys
from urllib.parse import quote

import jinja2
from packaging.version import Version
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.facts.server import Command
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from phoenix.wheel import file_sha256, wheel_for, wheel_version
from roles import supervisor
from roles.operations import command_once_per_value, secret_file


def paths(app: dict) -> dict:
    """Given the app settings, returns the paths the app uses on the server."""
    home = f"/srv/{app['name']}"
    return {
        "home": home,
        "venv": f"{home}/venv",
        "python": f"{home}/venv/bin/python",
        "releases": f"{home}/releases",
        "config": f"/etc/{app['name']}/production.ini",
        "unit": f"/etc/systemd/system/{app['name']}.service",
        "installed_marker": f"{home}/.installed-release",  # the installed wheel's SHA-256
        "migrated_marker": f"{home}/.migrated-release",  # migration_marker() of the last migration
    }


def install_command(app: dict, remote_wheel: str) -> str:
    """The shell command that installs a wheel into the app's venv from nothing but the wheel and Debian's packages."""
    pip = f"PIP_DISABLE_PIP_VERSION_CHECK=1 {paths(app)['venv']}/bin/pip install --quiet --no-index"
    return f"{pip} --no-deps --force-reinstall {remote_wheel} && {pip} {remote_wheel}"


def migrate_command(app: dict) -> str:
    """The shell command that migrates the app's database, run as the app's user ("" without migrations)."""
    if not app["migrate_command"]:
        return ""
    where = paths(app)
    migrate = app["migrate_command"].format(python=where["python"], config=where["config"])
    return f"cd {where['home']} && runuser -u {app['name']} -- {migrate}"


def migration_marker(release: str, config_text: str) -> str:
    """What the migrated marker says once `release` (a wheel's SHA-256) has migrated with this config."""
    config_digest = hashlib.sha256(config_text.encode()).hexdigest()
    return hashlib.sha256((release + config_digest).encode()).hexdigest()


def schema_head_command(app: dict) -> str:
    """The shell command printing the schema revision the installed release expects ("" unless migrated by alembic)."""
    if "alembic" not in app["migrate_command"]:
        return ""
    where = paths(app)
    return f"cd {where['home']} && runuser -u {app['name']} -- {where['python']} -m alembic -c {where['config']} heads"


def stop_command(app: dict) -> str:
    """The shell command that stops the app and fails unless it is stopped."""
    if app["process_manager"] == "supervisor":
        return f"supervisorctl stop {app['name']}; ! supervisorctl status {app['name']} | grep -q RUNNING"
    return f"systemctl stop {app['name']}"


def control_command(app: dict, action: str) -> str:
    """The shell command that starts or stops the app under its process manager."""
    if app["process_manager"] == "supervisor":
        return f"supervisorctl {action} {app['name']}"
    return f"systemctl {action} {app['name']}"


def database_url(database: dict, address: str, password: str) -> str:
    """Returns the SQLAlchemy URL with user and password URL-quoted.

    Not %-escaped for the ini file: the config template does that (its ini() macro).
    """
    host_part = "127.0.0.1" if address == "localhost" else address
    credentials = f"{quote(database['user'], safe='')}:{quote(password, safe='')}"
    return f"postgresql://{credentials}@{host_part}:5432/{database['name']}"


def render_config(app: dict, address: str, secrets) -> str:
    """Renders the app's ini template (StrictUndefined) with its database URL and secrets."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader("."), undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    template = environment.get_template(app["config_template"])
    return template.render(
        database_url=database_url(app["database"], address, secrets.database_password(app["database"]["user"])),
        upload_dir=app["data_dirs"][0] if app["data_dirs"] else "",
        max_upload_bytes=app["max_upload_bytes"],
        session_secret=secrets.get("session_secret"),
    )


def server_command(app: dict) -> str:
    """Returns the command line that serves the app with gunicorn on loopback."""
    where = paths(app)
    target = f"--paste {where['config']}" if app["wsgi"] == "paste" else app["wsgi"]
    return f"{where['python']} -m gunicorn --bind 127.0.0.1:{app['port']} --workers {app['workers']} {target}"


def system_user(app: dict) -> None:
    """The app's system user (restore.py makes it before the data that it owns comes back)."""
    home = paths(app)["home"]
    server.user(name=f"App user {app['name']}", user=app["name"], system=True, home=home, shell="/usr/sbin/nologin")


@deploy("Application")
def apply() -> None:
    app = host.data.app
    where = paths(app)
    name = app["name"]
    packages = [*app["system_packages"], "python3-venv", "python3-pip"]
    apt.packages(name="Install the app's Debian packages", packages=packages, no_recommends=True)
    system_user(app)
    # server.user hands the home to the app user; the code in it (releases, venv) stays root's
    files.directory(name="App home", path=where["home"], user=name, group=name, mode="0755")
    files.directory(name="App releases", path=where["releases"], user="root", group="root", mode="0755")
    files.directory(name="App config directory", path=f"/etc/{name}", user="root", group=name, mode="0750")
    for directory in app["data_dirs"]:
        files.directory(name=f"App data {directory}", path=directory, user=name, group=name, mode="0750")

    if not host.get_fact(File, path=f"{where['venv']}/pyvenv.cfg"):
        server.shell(
            name="App venv (sees Debian's python3-* packages)",
            commands=[f"python3 -m venv --system-site-packages {where['venv']}"],
        )
    wheel = wheel_for(app["source"])
    _refuse_downgrade(app, wheel.name)
    remote_wheel = f"{where['releases']}/{wheel.name}"
    release = file_sha256(wheel)
    files.put(name=f"Upload {wheel.name}", src=str(wheel), dest=remote_wheel, mode="0644")
    installed = command_once_per_value(
        name=f"Install {wheel.name}",
        command=install_command(app, remote_wheel),
        marker=where["installed_marker"],
        value=release,
    )
    config_text = render_config(app, host.data.database_address, host.data.secrets)
    config = secret_file(
        name="App config (production.ini)", path=where["config"], content=config_text, group=name, mode="0640"
    )
    if app["migrate_command"]:
        command_once_per_value(
            name="Database migrations",
            command=migrate_command(app),
            marker=where["migrated_marker"],
            value=migration_marker(release, config_text),
        )
    code_or_config_changed = any_changed(installed, config)
    if app["process_manager"] == "supervisor":
        _remove_systemd_unit(name, where["unit"])
        supervisor.program(
            program_name=name,
            command=server_command(app),
            environment=_environment(where),
            restart=code_or_config_changed,
        )
    else:
        supervisor.remove_program(program_name=name)
        _systemd_unit(app, where, restart=code_or_config_changed)
    server.shell(
        name="Wait until the app answers its health check",
        commands=[health_wait_command(app)],
        _if=code_or_config_changed,
    )


def installed_wheel_command(app: dict) -> str:
    """Prints the path of the wheel the app runs: the one in releases/ whose SHA-256 the installed marker holds."""
    where = paths(app)
    return (
        f'sha=$(cat {where["installed_marker"]} 2>/dev/null) && [ -n "$sha" ]'
        f" && sha256sum -- {where['releases']}/*.whl | awk -v sha=\"$sha\" '$1 == sha {{print $2; exit}}'"
    )


def _refuse_downgrade(app: dict, wheel_name: str) -> None:
    """deploy.py never installs an older release than the one running: its data may have migrated past it."""
    output = host.get_fact(Command, command=f"{installed_wheel_command(app)} || true")
    running = (output or "").strip()
    if not running or host.data.run_flags["allow_downgrade"]:
        return
    if Version(wheel_version(running)) > Version(wheel_version(wheel_name)):
        print(
            f"phoenix: {host.data.phoenix_host} runs {app['name']} {wheel_version(running)}, and app.source builds"
            f" the older {wheel_version(wheel_name)}; nothing was changed. Point app.source at release"
            f" {wheel_version(running)} (upgrade.py installed it), or downgrade on purpose with"
            " --data allow_downgrade=yes (and restore the pre-upgrade backup: docs/upgrades.md).",
            file=sys.stderr,
        )
        raise SystemExit(2)


def _environment(where: dict) -> dict:
    return {"PHOENIX_APP_CONFIG": where["config"]}


def _systemd_unit(app: dict, where: dict, restart) -> None:
    unit = files.template(
        name="App systemd unit",
        src="templates/app/etc/systemd/system/app.service.j2",
        dest=where["unit"],
        mode="0644",
        app=app,
        command=server_command(app),
        environment=_environment(where),
        home=where["home"],
    )
    systemd.daemon_reload(name="Reload systemd units", _if=unit.did_change)
    systemd.service(name="App running", service=app["name"], running=True, enabled=True)
    systemd.service(name="Restart app", service=app["name"], restarted=True, _if=lambda: unit.did_change() or restart())


def _remove_systemd_unit(name: str, unit_path: str) -> None:
    if host.get_fact(File, path=unit_path):
        systemd.service(name="Stop the app's systemd unit", service=name, running=False, enabled=False)
        files.file(name="Remove the app's systemd unit", path=unit_path, present=False)
        systemd.daemon_reload(name="Reload systemd units")


def health_wait_command(app: dict, seconds: int = 30) -> str:
    """The shell command that waits until the app answers its health check on loopback."""
    url = shlex.quote(f"http://127.0.0.1:{app['port']}{app['health_path']}")
    return (
        f"for i in $(seq {seconds * 2}); do curl -fsS -o /dev/null {url} && exit 0; sleep 0.5; done;"
        f" echo 'app did not answer {url} within {seconds}s' >&2; exit 1"
    )
