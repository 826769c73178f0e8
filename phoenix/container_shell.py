"""Running a command in a sandbox's container from the control machine, as `docker exec` would, without it.

A `docker exec` costs about 0.1 s of CPU on this kind of machine (the docker CLI, dockerd, containerd, its shim
and runc, which copies itself into memory for every exec), and a sandbox converge or test session runs thousands
of them. `nsenter` into the namespaces of the container's init does the same for a fork and an exec: the command
sees the container's files, processes, network and host name, with the environment `docker exec` gives (the
image's PATH and variables, HOSTNAME, HOME=/root), as root with umask 022, in a session of its own (a kill of the
caller's process group does not reach it, as it does not reach a command `docker exec` started; one that then
writes to its dead caller stops, as over SSH). What differs: the command is not in the container's cgroups
(`docker pause` does not freeze it; removing the container still kills it, with the container's PID namespace).
nsenter needs root: for anyone else, `docker exec`.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from phoenix.errors import PhoenixError

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # what docker exec sets
WITH_DOCKERS_UMASK = ["sh", "-c", 'umask 022 && exec "$0" "$@"']  # not the control machine's umask


@dataclass(frozen=True)
class Container:
    """What entering a running container needs: its init's PID (as the control machine sees it), its ID (to
    tell that PID is still the container's) and the environment `docker exec` would give a command."""

    pid: int
    id: str
    environment: tuple[str, ...]


_known: dict[str, Container] = {}


def inspect(name: str) -> Container:
    """Returns container `name` as `docker inspect` shows it now; raises PhoenixError when it is not running."""
    result = subprocess.run(["docker", "inspect", "--type", "container", name], capture_output=True, text=True)
    if result.returncode != 0:
        raise PhoenixError(f"container {name} not found: {result.stderr.strip()[-300:]}")
    info = json.loads(result.stdout)[0]
    if not info["State"]["Running"] or not info["State"]["Pid"]:
        raise PhoenixError(f"container {name} is not running (state: {info['State']['Status']})")
    return Container(info["State"]["Pid"], info["Id"], exec_environment(info["Config"]))


def exec_environment(config: dict) -> tuple[str, ...]:
    """Returns the environment `docker exec` gives a command, from the container's configuration."""
    image = [variable for variable in config.get("Env") or [] if not variable.startswith("HOSTNAME=")]
    path = [] if any(variable.startswith("PATH=") for variable in image) else [DEFAULT_PATH]
    return (*path, f"HOSTNAME={config['Hostname']}", *image, "HOME=/root")


def still_running(container: Container, proc: Path = Path("/proc")) -> bool:
    """Whether the container's init still runs as that PID (a removed or restarted container leaves a PID
    that is gone or another process's, in another cgroup)."""
    try:
        return container.id in (proc / str(container.pid) / "cgroup").read_text()
    except OSError:
        return False


def running(name: str) -> Container:
    """Returns running container `name`, asking Docker only when the one known is gone or restarted."""
    known = _known.get(name)
    if known is None or not still_running(known):
        known = _known[name] = inspect(name)
    return known


def make_enter_argv(container: Container, argv: list[str]) -> list[str]:
    """Returns the argv that runs `argv` in `container` as docker exec would: its namespaces, its
    environment, root, umask 022, in a session of its own; the exit status is argv's."""
    return [
        "nsenter",
        f"--target={container.pid}",
        "--all",
        "--",
        "env",
        "-i",
        *container.environment,
        "setsid",
        "--fork",  # nsenter stops itself when its child stops, and only it would wake it: the child is a grandchild
        "--wait",
        *WITH_DOCKERS_UMASK,
        *argv,
    ]


def enter_argv(name: str, argv: list[str]) -> list[str]:
    """Returns the argv that runs `argv` in running container `name` (see make_enter_argv); for a user other than
    root, who may run docker (its group) but not nsenter, `docker exec`."""
    if os.geteuid() != 0:
        return ["docker", "exec", "-i", name, *argv]
    return make_enter_argv(running(name), argv)
