"""Throwaway hosts: systemd containers on a Docker network of their own.

`up` makes sure an engine answers and the base image exists, starts one container per host,
waits until systemd has settled and records the hosts' addresses. Every container and the
network carry the sandbox's label; `down` removes only what carries it.
"""

from __future__ import annotations

import json
import subprocess
import time

from phoenix import sandbox_ssh, sandbox_state
from phoenix.container_shell import enter_argv
from phoenix.engine import ensure_engine
from phoenix.errors import PhoenixError
from phoenix.image import build_image
from phoenix.progress import say

BOOT_WAIT_SECONDS = 60

# systemd as PID 1 without --privileged (which fails here); NET_ADMIN lets nftables load rules
# inside the container's own network namespace only.
SYSTEMD_RUN_FLAGS = [
    "--cap-add", "SYS_ADMIN",
    "--cap-add", "NET_ADMIN",
    "--security-opt", "seccomp=unconfined",
    "--cgroupns=host",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
    "--tmpfs", "/run",
    "--tmpfs", "/run/lock",
]  # fmt: skip


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise PhoenixError(f"`docker {' '.join(args)}` failed: {result.stderr.strip()}")
    return result


def run_container_command(sandbox: str, host: str, image: str) -> list[str]:
    """Returns the `docker run` arguments that start host `host` of sandbox `sandbox`."""
    return [
        "run", "-d",
        "--name", sandbox_state.container_name(sandbox, host),
        "--hostname", host,
        "--network", sandbox_state.network_name(sandbox),
        "--network-alias", host,
        "--label", f"{sandbox_state.SANDBOX_LABEL}={sandbox}",
        "--label", f"{sandbox_state.HOST_LABEL}={host}",
        *SYSTEMD_RUN_FLAGS,
        image,
    ]  # fmt: skip


def _ensure_network(sandbox: str) -> None:
    name = sandbox_state.network_name(sandbox)
    if _docker("network", "inspect", name, check=False).returncode != 0:
        _docker("network", "create", "--label", f"{sandbox_state.SANDBOX_LABEL}={sandbox}", name)


def _container_state(name: str) -> dict | None:
    result = _docker("inspect", name, check=False)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout)[0]


def _wait_for_systemd(container: str) -> str:
    """Waits until systemd in `container` is running (or degraded); returns that state."""
    deadline = time.monotonic() + BOOT_WAIT_SECONDS
    state = "unknown"
    while time.monotonic() < deadline:
        result = subprocess.run(
            enter_argv(container, ["systemctl", "is-system-running"]), capture_output=True, text=True, check=False
        )
        state = result.stdout.strip() or "unknown"
        if state in ("running", "degraded"):
            return state
        time.sleep(0.3)
    raise PhoenixError(f"{container}: systemd did not settle within {BOOT_WAIT_SECONDS}s (last state: {state})")


def _address(container_info: dict, sandbox: str) -> str:
    networks = container_info["NetworkSettings"]["Networks"]
    return networks[sandbox_state.network_name(sandbox)]["IPAddress"]


def up(sandbox: str, hosts: list[str]) -> dict:
    """Brings sandbox `sandbox` up with `hosts` (existing ones are kept); returns its state, with "started": the
    hosts whose containers it started. In a sandbox reached over SSH, the hosts are prepared for it again."""
    ensure_engine()
    image = build_image()
    _ensure_network(sandbox)
    started = []
    for host in hosts:
        container = sandbox_state.container_name(sandbox, host)
        info = _container_state(container)
        if info and info["Config"]["Labels"].get(sandbox_state.SANDBOX_LABEL) != sandbox:
            raise PhoenixError(f"a container named {container} exists and is not Phoenix's: not touching it")
        if info and info["Config"]["Image"] != image:
            say(f"{container}: built from an older base image; replacing it")
            _docker("rm", "-f", container)
            info = None
        if info is None:
            say(f"{container}: starting")
            _docker(*run_container_command(sandbox, host, image))
            started.append(host)
        elif not info["State"]["Running"]:
            _docker("start", container)
    for host in hosts:
        container = sandbox_state.container_name(sandbox, host)
        say(f"{container}: systemd {_wait_for_systemd(container)}")
    previous = sandbox_state.read(sandbox)["hosts"] if sandbox_state.state_file(sandbox).exists() else {}
    state = {"sandbox": sandbox, "image": image, "hosts": {}}
    for host in dict.fromkeys([*previous, *hosts]):
        info = _container_state(sandbox_state.container_name(sandbox, host))
        if info:
            state["hosts"][host] = {"container": info["Name"].lstrip("/"), "address": _address(info, sandbox)}
    sandbox_state.write(sandbox, state)
    if sandbox_ssh.is_prepared(sandbox):
        sandbox_ssh.prepare(sandbox, hosts)
    return {**state, "started": started}


def labelled(kind: str, sandbox: str | None = None) -> list[str]:
    """Returns the ids of containers or networks (`kind`) carrying a Phoenix sandbox label."""
    label = sandbox_state.SANDBOX_LABEL + (f"={sandbox}" if sandbox else "")
    command = ["ps", "-a", "-q"] if kind == "container" else ["network", "ls", "-q"]
    return _docker(*command, "--filter", f"label={label}").stdout.split()


def guests(sandbox: str) -> list[str]:
    """Returns the other sandboxes with a container on `sandbox`'s network (a drill's or a dev copy's stand-ins)."""
    network = sandbox_state.network_name(sandbox)
    if _docker("network", "inspect", network, check=False).returncode != 0:
        return []
    label = f'{{{{.Label "{sandbox_state.SANDBOX_LABEL}"}}}}'
    result = _docker("ps", "-a", "--filter", f"network={network}", "--format", label)
    return sorted({name for name in result.stdout.split() if name != sandbox})


def down(sandbox: str) -> int:
    """Removes the containers and network labelled with `sandbox`; returns how many containers."""
    containers = labelled("container", sandbox)
    if containers:
        _docker("rm", "-f", "-v", *containers)
    networks = labelled("network", sandbox)
    if networks:
        _docker("network", "rm", *networks)
    sandbox_state.remove(sandbox)
    return len(containers)


def list_sandboxes() -> dict[str, list[str]]:
    """Returns {sandbox: [host, ...]} for every Phoenix container on this engine."""
    label = '{{{{.Label "{}"}}}}'
    row_format = f"{label.format(sandbox_state.SANDBOX_LABEL)} {label.format(sandbox_state.HOST_LABEL)} {{{{.Status}}}}"
    result = _docker("ps", "-a", "--filter", f"label={sandbox_state.SANDBOX_LABEL}", "--format", row_format)
    sandboxes: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        sandbox, host, status = line.split(" ", 2)
        sandboxes.setdefault(sandbox, []).append(f"{host} ({status})")
    return sandboxes
