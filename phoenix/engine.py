"""Make sure a Docker engine answers on this machine, installing Debian's docker.io if needed.

Given a machine with only the docker client (or nothing), `ensure_engine()` installs
docker.io, starts dockerd in the background and waits for its socket; raises PhoenixError
with the reason when it cannot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from phoenix.errors import PhoenixError
from phoenix.progress import say

DOCKERD_LOG = "/var/log/phoenix-dockerd.log"
ENGINE_WAIT_SECONDS = 60
INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
# every container runs systemd, which holds several inotify instances: Debian's 128 stalls boots past ~10 containers
INOTIFY_INSTANCES_WANTED = 1024


def engine_answers() -> bool:
    """Returns True when `docker info` reaches a running engine."""
    if shutil.which("docker") is None:
        return False
    result = subprocess.run(["docker", "info"], capture_output=True, text=True)
    return result.returncode == 0


def install_debian_packages(*packages: str) -> None:
    """Installs Debian packages with apt-get; raises PhoenixError when apt fails or we are not root."""
    if os.geteuid() != 0:
        raise PhoenixError(f"installing {', '.join(packages)} needs root: run as root or install them yourself")
    if shutil.which("apt-get") is None:
        raise PhoenixError(f"apt-get not found: install {', '.join(packages)} by hand")
    say(f"installing {', '.join(packages)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise PhoenixError(
                f"`{' '.join(command)}` failed (exit {result.returncode}):\n{result.stderr.strip()[-2000:]}"
            )


def raise_inotify_limit() -> None:
    """Raises the kernel's per-user inotify instance limit to INOTIFY_INSTANCES_WANTED when it is lower (root only)."""
    try:
        if int(INOTIFY_INSTANCES.read_text()) < INOTIFY_INSTANCES_WANTED:
            INOTIFY_INSTANCES.write_text(str(INOTIFY_INSTANCES_WANTED))
            say(f"raised fs.inotify.max_user_instances to {INOTIFY_INSTANCES_WANTED} for the sandbox's systemd hosts")
    except (OSError, ValueError):
        pass  # not root, or no such knob: containers still start, only fewer at once


def ensure_engine() -> None:
    """Given any Debian machine, returns once a Docker engine answers; raises PhoenixError otherwise."""
    raise_inotify_limit()
    if engine_answers():
        return
    if shutil.which("dockerd") is None:
        install_debian_packages("docker.io")
    if engine_answers():  # the package's own service may have started it
        return
    say(f"starting dockerd in the background (log: {DOCKERD_LOG})")
    with open(DOCKERD_LOG, "ab") as log:
        subprocess.Popen(["dockerd"], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + ENGINE_WAIT_SECONDS
    while time.monotonic() < deadline:
        if engine_answers():
            say("docker engine is up")
            return
        time.sleep(0.5)
    raise PhoenixError(f"dockerd did not answer within {ENGINE_WAIT_SECONDS}s; see {DOCKERD_LOG}")
