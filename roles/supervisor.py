"""supervisor: keeps a program running, as on the incident's original server."""

from __future__ import annotations

from collections.abc import Callable

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import File
from pyinfra.operations import server

from roles.operations import managed_file, packages_installed, service_running, template_file

PACKAGES = ["supervisor"]  # restore.py installs them while the data are restored (roles/host_packages.py)
# supervisorctl fails until supervisord's socket exists, right after install for instance
WAIT_FOR_SUPERVISORD = "for i in $(seq 40); do supervisorctl pid >/dev/null 2>&1 && break; sleep 0.25; done"


def config_path(name: str) -> str:
    return f"/etc/supervisor/conf.d/{name}.conf"


@deploy("supervisor program")
def program(
    program_name: str,
    command: str,
    environment: dict,
    restart: Callable[[], bool],
    user: str = "",
    directory: str = "",
    marker: str = "",
) -> None:
    """Installs supervisor and the program PROGRAM_NAME, run as `user` in `directory` (the program's name and
    /srv/<name> by default), loaded when its file changed, else restarted when restart() says so. `marker`,
    a comment line in the file, lets a later run find the programs it made."""
    packages_installed(name="Install supervisor", packages=PACKAGES)
    service_running(name="supervisor running", service="supervisor")
    config = template_file(
        name=f"supervisor program {program_name}",
        src="templates/supervisor/etc/supervisor/conf.d/program.conf.j2",
        dest=config_path(program_name),
        mode="0644",
        program=program_name,
        command=command,
        environment=environment,
        directory=directory or f"/srv/{program_name}",
        program_user=user or program_name,  # template_file takes `user` for the file's owner
        marker=marker,
    )
    server.shell(
        name=f"Load supervisor program {program_name}",
        commands=[f"{WAIT_FOR_SUPERVISORD}; supervisorctl update {program_name}"],
        _if=config.did_change,
    )
    server.shell(
        name=f"Restart {program_name} under supervisor",
        commands=[f"{WAIT_FOR_SUPERVISORD}; supervisorctl restart {program_name}"],
        _if=lambda: restart() and not config.did_change(),
    )


@deploy("No supervisor program")
def remove_program(program_name: str) -> None:
    """Stops and removes the supervisor program PROGRAM_NAME, when its file exists."""
    if host.get_fact(File, path=config_path(program_name)):
        managed_file(name=f"Remove supervisor program {program_name}", path=config_path(program_name), present=False)
        server.shell(name="Unload it", commands=[f"{WAIT_FOR_SUPERVISORD}; supervisorctl update"])
