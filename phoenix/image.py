"""The sandbox base image: a blank Debian 12 box with systemd, built locally with debootstrap.

No registry can be reached, so the image is built from Debian's archive. Its tag is a hash
of the recipe below, so changing the recipe builds a new image and old tags are never reused.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile

from phoenix.engine import install_debian_packages
from phoenix.errors import PhoenixError
from phoenix.progress import say

IMAGE_REPOSITORY = "phoenix-base"

RECIPE = {
    "suite": "bookworm",
    "variant": "minbase",
    "mirror": "http://deb.debian.org/debian",
    "include": [
        "systemd",
        "systemd-sysv",
        "dbus",
        "python3",
        "procps",
        "iproute2",
        "ca-certificates",
        # a provider's blank server answers SSH; sandbox-ssh sandboxes reach their hosts so (phoenix/sandbox_ssh.py)
        "openssh-server",
    ],
    "changes": ['CMD ["/sbin/init"]', "ENV container=docker"],
}


def recipe_hash(recipe: dict = RECIPE) -> str:
    """Given a recipe, returns the first 12 hex digits of the SHA-256 of its canonical JSON."""
    canonical = json.dumps(recipe, sort_keys=True).encode()
    return hashlib.sha256(canonical).hexdigest()[:12]


def image_name(recipe: dict = RECIPE) -> str:
    """Returns the tagged image name for a recipe, e.g. phoenix-base:3f2a9c1b0d4e."""
    return f"{IMAGE_REPOSITORY}:{recipe_hash(recipe)}"


def image_exists(name: str) -> bool:
    """Returns True when the local Docker engine holds the image `name`."""
    result = subprocess.run(["docker", "image", "inspect", name], capture_output=True)
    return result.returncode == 0


def debootstrap_command(recipe: dict, rootfs: str) -> list[str]:
    """Given a recipe and a target directory, returns the debootstrap command line."""
    return [
        "debootstrap",
        f"--variant={recipe['variant']}",
        f"--include={','.join(recipe['include'])}",
        recipe["suite"],
        rootfs,
        recipe["mirror"],
    ]


def _run_debootstrap(command: list[str]) -> None:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        tail = (tail + [line.rstrip()])[-20:]
        # debootstrap prints one "I: Retrieving/Validating/Unpacking X" per package; show phases only
        if line.startswith("I: ") and not line.startswith(
            ("I: Retrieving", "I: Validating", "I: Unpacking", "I: Configuring", "I: Extracting")
        ):
            say(f"debootstrap: {line[3:].strip()}")
    if process.wait() != 0:
        raise PhoenixError("debootstrap failed:\n" + "\n".join(tail))


def build_image(recipe: dict = RECIPE) -> str:
    """Builds the base image for `recipe` unless it exists; returns its name.

    Raises PhoenixError when debootstrap or docker import fails.
    """
    name = image_name(recipe)
    if image_exists(name):
        return name
    if shutil.which("debootstrap") is None:
        install_debian_packages("debootstrap")
    say(f"building base image {name} with debootstrap (about a minute)")
    with tempfile.TemporaryDirectory(prefix="phoenix-rootfs-", dir="/var/tmp") as rootfs:
        _run_debootstrap(debootstrap_command(recipe, rootfs))
        # apt caches and lists are dead weight in the image; the blueprint runs apt-get update
        subprocess.run(
            ["sh", "-c", f"rm -rf {rootfs}/var/cache/apt/archives/*.deb {rootfs}/var/lib/apt/lists/*"],
            check=True,
        )
        say("importing the root filesystem into docker")
        change_args = [arg for change in recipe["changes"] for arg in ("-c", change)]
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["docker", "import", *change_args, "-", name],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
        )
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise PhoenixError(f"docker import of {name} failed: {imported.stderr.strip()}")
    say(f"base image {name} ready")
    return name
