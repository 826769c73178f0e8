"""What a release archive costs: building it, rebuilding it, shipping and installing it on a host.

    .venv/bin/python bench/artifact.py [--keep-cache]

The app is Kinto from PyPI with its PostgreSQL and monitoring extras and gunicorn: 53 locked
packages (tests/e2e/own_apps/kinto/requirements.lock). Prints:
  - cold build: every wheel downloaded from the index into an empty cache (PHOENIX_CACHE in a
    temporary directory, pip's own HTTP cache off), hashes checked, the archive written;
  - cached rebuild: the same call again (what every later deploy pays on the control machine);
  - ship + install: the archive copied into a fresh container of the base image (one copy) and
    installed by the app role's own install command into an isolated venv;
  - no-op re-deploy: the cached rebuild plus the host's check that its installed release is
    that archive (what the app role compares before installing nothing).
Each figure is wall-clock time; ship + install also prints the CPU time the host spent (user +
system, which a loaded machine does not inflate as much), with the machine's core count and load
average. The container is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from bench.machine import machine_line  # noqa: E402
from phoenix import artifact, image  # noqa: E402
from roles import app as app_role  # noqa: E402

LOCK = REPOSITORY / "tests/e2e/own_apps/kinto/requirements.lock"
SOURCE = "kinto[postgresql,monitoring]==26.5.0"
CONTAINER = "phx-artifact-bench"
SETTINGS = {"name": "kinto", "lock": str(LOCK), "build_packages": [], "wsgi": "paste"}


def timed(action) -> tuple[float, object]:
    start = time.monotonic()
    result = action()
    return time.monotonic() - start, result


def docker(*arguments: str) -> str:
    return subprocess.run(["docker", *arguments], check=True, capture_output=True, text=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--keep-cache", action="store_true", help="print the cache directory and keep it")
    options = parser.parse_args()
    cache = Path(tempfile.mkdtemp(prefix="phoenix-artifact-bench-"))
    os.environ["PHOENIX_CACHE"] = str(cache)
    os.environ["PIP_NO_CACHE_DIR"] = "1"  # a cold build downloads everything
    where = app_role.paths(SETTINGS)
    try:
        cold, archive = timed(lambda: artifact.artifact_for(SETTINGS, SOURCE))
        cached, again = timed(lambda: artifact.artifact_for(SETTINGS, SOURCE))
        assert again == archive
        size = archive.stat().st_size
        with tarfile.open(archive) as tar:
            wheels = [name for name in tar.getnames() if name.endswith(".whl")]
        docker("run", "-d", "--rm", "--name", CONTAINER, image.image_name(), "sleep", "infinity")
        packages = "python3-venv python3-pip"  # what the app role installs before the archive
        docker("exec", CONTAINER, "sh", "-c", f"apt-get update -qq && apt-get install -y -qq {packages} >/dev/null")
        docker("exec", CONTAINER, "mkdir", "-p", where["releases"])
        remote = f"{where['releases']}/{archive.name}"

        def ship_and_install() -> str:
            docker("cp", str(archive), f"{CONTAINER}:{remote}")
            install = app_role.install_command(SETTINGS, remote)
            # bash's `time` of a subshell: the CPU time of everything the install ran, on stderr
            cpu = subprocess.run(
                ["docker", "exec", CONTAINER, "bash", "-c", f"TIMEFORMAT='%U %S'; time ( {install} )"],
                check=True, capture_output=True, text=True,
            ).stderr.split()  # fmt: skip
            docker("exec", CONTAINER, "sh", "-c", f"sha256sum {remote} | cut -d' ' -f1 > {where['installed_marker']}")
            return f"{float(cpu[-2]) + float(cpu[-1]):.1f}"

        before_install = machine_line("before the install")
        install, install_cpu = timed(ship_and_install)
        imported = docker("exec", CONTAINER, where["python"], "-c", "import kinto, psycopg2; print(kinto.__version__)")

        def no_op_redeploy() -> None:
            artifact.artifact_for(SETTINGS, SOURCE)
            marker = docker("exec", CONTAINER, "cat", where["installed_marker"]).strip()
            assert marker == artifact.file_sha256(archive)

        no_op, _ = timed(no_op_redeploy)
    finally:
        subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True)
        if options.keep_cache:
            print(f"cache kept in {cache}")
        else:
            shutil.rmtree(cache, ignore_errors=True)
    print(f"app: {SOURCE}, {len(wheels)} wheels, archive {size / 2**20:.1f} MiB; installed kinto {imported.strip()}")
    print(f"cold build of the wheelhouse and archive: {cold:6.1f} s")
    print(f"cached rebuild:                           {cached:6.2f} s")
    print(f"ship + install on one host:               {install:6.1f} s (install: {install_cpu} s of CPU)")
    print(f"no-op re-deploy (rebuild + host check):   {no_op:6.2f} s")
    print(before_install)


if __name__ == "__main__":
    main()
