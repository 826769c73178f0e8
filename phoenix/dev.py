"""`phoenix up ENV [--with-data]` and `phoenix down ENV`: a local copy of the stack in containers.

`up` starts the sandbox of a throwaway environment (dev.yml, sandbox.yml), converges deploy.py
onto it and prints how to reach it. With --with-data, each of its hosts that has a namesake
backed up in the source environment (--from, default prod) then gets that host's newest
complete backup, restored by restore.py as a stand-in (phoenix/stand_in.py): it reads the
source's vault with the source host's own login and never backs up into it.
"""

from __future__ import annotations

import time
from pathlib import Path

from phoenix import backup_plan, sandbox, sandbox_ssh, sandbox_state, stand_in
from phoenix.errors import PhoenixError
from phoenix.inventory import Environment
from phoenix.progress import say
from phoenix.units import duration


def inventory_path(name_or_path: str) -> Path:
    """Returns inventories/<name>.yml for a bare name, else the given inventory's .yml."""
    if "/" not in name_or_path and not name_or_path.endswith((".py", ".yml")):
        return Path("inventories") / f"{name_or_path}.yml"
    return Path(name_or_path).with_suffix(".yml")


def load_throwaway(name_or_path: str, sandbox_override: str = "") -> Environment:
    path = inventory_path(name_or_path)
    environment = stand_in.load(path, sandbox_override)
    if not environment.in_sandbox or not environment.throwaway:
        raise PhoenixError(
            f"{path}: `phoenix up` builds local throwaway sandboxes (connection type docker or sandbox-ssh, and"
            f" environment.throwaway: true); real servers are built with `pyinfra {path.with_suffix('.py')} deploy.py`"
        )
    return environment


def up(name: str, with_data: bool = False, source_name: str = "prod", sandbox_override: str = "") -> int:
    """Brings the environment's sandbox up, converged, with the source's data when asked; returns 0."""
    environment = load_throwaway(name, sandbox_override)
    target_sandbox = environment.sandbox_name
    logs = sandbox_state.state_root() / "logs"
    if environment.over_ssh:
        ports = {host_name: host["ssh"]["port"] for host_name, host in environment.hosts.items()}
        sandbox_ssh.enable(target_sandbox, ports)
    new_hosts = sandbox.up(target_sandbox, list(environment.hosts))["started"]
    login = _first_login(environment, new_hosts) if environment.over_ssh else {}
    arguments = None
    if with_data:
        source = stand_in.load(inventory_path(source_name))
        names = _namesakes(environment, source)
        arguments = stand_in.inventory_arguments(source, environment.path, target_sandbox, names)
        stand_in.stand_in_hosts(**arguments)  # a mismatch between the two inventories stops here
        stand_in.attach_to_source_network(source, target_sandbox, names)
    deploy = stand_in.pyinfra_command(environment.path.with_suffix(".py"), "deploy.py", login)
    if stand_in.run_pyinfra(deploy, target_sandbox, logs / f"{target_sandbox}-deploy.log", "deploy.py"):
        raise PhoenixError(f"deploy.py failed on sandbox {target_sandbox}; see {logs / f'{target_sandbox}-deploy.log'}")
    if arguments:
        started = time.monotonic()
        command = stand_in.pyinfra_command(
            stand_in.write_inventory(arguments), "restore.py", {"snapshot": "latest", "force_restore": "yes"}
        )
        log_path = logs / f"{target_sandbox}-restore.log"
        if stand_in.run_pyinfra(command, stand_in.sandbox_variable(source), log_path, "restore.py"):
            raise PhoenixError(f"restoring {source.name}'s data failed; see {log_path}")
        took = duration(time.monotonic() - started)
        say(f"{source.name}'s data restored into {', '.join(arguments['names'])} in {took}")
    print(describe(environment, target_sandbox))
    return 0


def _first_login(environment: Environment, new_hosts: list[str]) -> dict[str, str]:
    """Returns deploy.py's --data for the login to a sandbox-ssh sandbox: root when every container is new (a blank
    server's only login, as on a first deploy), else the inventory's."""
    if not new_hosts:
        return {}
    deployed = [name for name in environment.hosts if name not in new_hosts]
    if deployed:
        raise PhoenixError(
            f"sandbox {environment.sandbox_name}: {', '.join(new_hosts)} started blank (root logs in) and"
            f" {', '.join(deployed)} already deployed (root is refused): one converge cannot log into both;"
            f" run `{down_command(environment, environment.sandbox_name)}`, then `phoenix up` again"
        )
    return {"ssh_user": "root"}


def _namesakes(environment: Environment, source: Environment) -> list[str]:
    names = [name for name in environment.hosts if name in source.hosts and backup_plan.uses_vault(source.hosts[name])]
    if not names:
        raise PhoenixError(
            f"--with-data: none of {environment.name}'s hosts ({', '.join(environment.hosts)}) has a namesake"
            f" backed up in {source.path} (backed up there: {', '.join(backup_plan.backed_up_hosts(source.hosts))})"
        )
    return names


def down(name: str, sandbox_override: str = "") -> int:
    environment = load_throwaway(name, sandbox_override)
    removed = sandbox.down(environment.sandbox_name)
    print(f"removed {removed} container(s) of sandbox {environment.sandbox_name}")
    return 0


def describe(environment: Environment, sandbox_name: str) -> str:
    """Returns how to reach each host of a sandbox: its address, a shell, and the site's URL."""
    state = sandbox_state.read(sandbox_name)
    lines = [f"\nSandbox '{sandbox_name}' ({environment.path}) is up:"]
    for name, info in state["hosts"].items():
        settings = environment.hosts.get(name)
        if settings is None:
            continue
        lines.append(f"  {name:6} {info['address']:15} shell: {_shell_command(environment, name, info)}")
        if "nginx" in settings["roles"]:
            server_name = settings["site"]["server_name"]
            lines.append(
                f"         site:  curl -k --resolve {server_name}:443:{info['address']} https://{server_name}/"
            )
    lines.append(f"Remove it: {down_command(environment, sandbox_name)}")
    return "\n".join(lines)


def down_command(environment: Environment, sandbox_name: str) -> str:
    """Given an environment and the sandbox it was brought up in, returns the `phoenix down` removing that sandbox.

    The environment is named by its inventory's path unless it is inventories/<name>.yml; `--sandbox` is spelled
    out unless the sandbox is the inventory's own: PHOENIX_SANDBOX may not be set later.
    """
    own = (stand_in.REPOSITORY / inventory_path(environment.name)).resolve() == environment.path.resolve()
    command = f"phoenix down {environment.name if own else _shown(environment.path)}"
    if sandbox_name != environment.connection.get("sandbox"):
        command += f" --sandbox {sandbox_name}"
    return command


def _shown(path: Path) -> str:
    """A path as the user can type it here: relative to the working directory when under it."""
    resolved = path.resolve()
    return str(resolved.relative_to(Path.cwd())) if resolved.is_relative_to(Path.cwd()) else str(resolved)


def _shell_command(environment: Environment, name: str, info: dict) -> str:
    if environment.connection["type"] != "sandbox-ssh":
        return f"docker exec -it {info['container']} bash"
    ssh = environment.hosts[name]["ssh"]
    key, known_hosts = (
        sandbox_ssh.key_file(environment.sandbox_name),
        sandbox_ssh.known_hosts_file(environment.sandbox_name),
    )
    return f"ssh -i {key} -o UserKnownHostsFile={known_hosts} -p {ssh['port']} {ssh['user']}@{info['address']}"
