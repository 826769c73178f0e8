"""Time to recover a lost server, per step, next to each step's floor on the same machine.

    .venv/bin/python bench/rto.py [--db-size 1GiB] [--runs 1] [--keep]

Starts its own sandbox (web1 with nginx, the app and PostgreSQL, not archived, so that restore.py
takes the dump path; bench/pitr.py times the archive's path against it; vault1), converges it, fills
the database with about --db-size of rows and backs it up. Then the incident: web1's
container is removed, a fresh one started, and restore.py rebuilds it from the vault
(--data snapshot=latest; the timings come from restore.py's own report). The floors, measured
separately on the same machine, after web1's databases are vacuumed (untimed: PostgreSQL's autovacuum would
vacuum the freshly restored table within a minute or so, beside the floors):
  - provision: a bare `apt-get update && apt-get install` of the packages restore.py
    installed (the restored web1's manually installed packages not in the base image), on
    another fresh container;
  - restore data: a bare `restic restore` of the same database snapshot, and a bare
    `pg_restore` of the same dump into an empty database, one after the other as restore.py runs them;
  - start the app: a bare venv and `pip install --no-index` of the same release archive, a bare run of
    its migrate command and schema check (app.migrate_command; on the restored host it has nothing to
    migrate, as in restore.py), and a bare start of the app's process until it answers its health check
    through nginx (its config files and unit files are not floored: on a restored host they change nothing).
Prints each step, its floor, and the total against the sum of the floors. The floors move by a fifth or more from
one run to the next on the same machine: --runs N repeats the incident and its floors N times on the same backup and
prints the median ratio as well. pyinfra's output, each line stamped
with the seconds since it started, stays in /tmp/phoenix-bench-rto-bench-deploy.log and -restore.log.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from bench import backup as backup_bench  # noqa: E402
from bench.machine import machine_line  # noqa: E402
from phoenix import sandbox, sandbox_state  # noqa: E402
from phoenix.inventory import load_environment  # noqa: E402
from roles import app as app_role  # noqa: E402

INVENTORY = "bench/inventories/rto.py"
SANDBOX = "rto-bench"
REPORT = "/tmp/phoenix-rto-bench-web1.json"


def bare_restic(arguments: list[str]) -> str:
    """Returns the shell command running restic with web1's own repository settings, nothing else."""
    code = (
        "import json, os, sys; c = json.load(open('/etc/phoenix/backup.json'));"
        " os.environ.update(RESTIC_REPOSITORY=c['repository'], RESTIC_PASSWORD=c['password']);"
        " os.execvp('restic', ['restic', '--cacert', '/etc/phoenix/vault.crt', *sys.argv[1:]])"
    )
    return f"python3 -c {shlex.quote(code)} {shlex.join(arguments)}"


def parse_size(text: str) -> int:
    """Given "1GiB" or "512MiB", returns MiB."""
    match = re.fullmatch(r"([0-9]+)\s*(MiB|GiB)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a size like 1GiB or 512MiB")
    return int(match.group(1)) * (1024 if match.group(2) == "GiB" else 1)


def timed(host: str, command: str) -> float:
    return backup_bench.timed(host, command)


def app_floors() -> tuple[float, float, float]:
    """On the restored web1: times a bare venv + pip install of the release archive the app runs, a bare run of
    its migrate command and schema check, and a bare start of the app (stopped first) until nginx answers its
    health check; returns the three."""
    app = load_environment((REPOSITORY / INVENTORY).with_suffix(".yml")).hosts["web1"]["app"]
    archive = backup_bench.on("web1", app_role.installed_wheel_command(app)).strip()
    backup_bench.on(
        "web1", f"rm -rf /tmp/floor-app /tmp/floor-venv && mkdir /tmp/floor-app && tar -xf {archive} -C /tmp/floor-app"
    )
    pip = (
        "PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip --python /tmp/floor-venv/bin/python install --quiet"
        " --no-index --require-hashes --find-links /tmp/floor-app/wheels -r /tmp/floor-app/requirements.txt"
    )
    install = timed("web1", f"python3 -m venv --without-pip /tmp/floor-venv && {pip}")
    migrate = timed("web1", app_role.migrate_and_check_command(app) or "true")
    name = shlex.quote(app["name"])
    manager = "systemctl" if app["process_manager"] == "systemd" else "supervisorctl"
    backup_bench.on("web1", f"{manager} stop {name} > /dev/null")
    start = timed(
        "web1",
        f"{manager} start {name} > /dev/null && for i in $(seq 600); do"
        " curl -fsk -o /dev/null https://localhost/health && exit 0; sleep 0.1; done; exit 1",
    )
    return install, migrate, start


@dataclass
class Recovery:
    """One incident's figures: restore.py's steps, and each step's floor measured right after it."""

    create: float
    wall: float
    steps: dict[str, float]
    database: dict
    packages: int
    install: float
    restic: float
    pg_restore: float
    app_install: float
    app_migrate: float
    app_start: float

    @property
    def total(self) -> float:
        return self.create + self.wall

    @property
    def floors(self) -> float:
        return self.install + self.restic + self.pg_restore + self.app_install + self.app_migrate + self.app_start


def settle_web1() -> None:
    """Vacuums web1's databases, untimed: after a bulk load PostgreSQL's autovacuum vacuums the new table within a
    minute or so, and a floor timed meanwhile would share the cores with it and come out slower than the machine
    allows."""
    backup_bench.say("vacuuming web1's databases (untimed), so that no autovacuum runs beside a floor")
    backup_bench.on("web1", "runuser -u postgres -- vacuumdb --all --quiet")


def recover() -> Recovery:
    """The incident: web1 removed, a fresh container, restore.py; then the floors, measured on the same machine."""
    web1 = sandbox_state.container_name(SANDBOX, "web1")
    subprocess.run(["docker", "rm", "-f", web1], check=True, capture_output=True)
    started = time.monotonic()
    sandbox.up(SANDBOX, ["web1"])
    create = time.monotonic() - started
    wall = backup_bench.run_pyinfra(
        "--limit", sandbox_state.pyinfra_host_name(web1),
        "--data", "snapshot=latest", "--data", f"restore_report={REPORT}", INVENTORY, "restore.py",
    )  # fmt: skip
    report = json.loads(Path(REPORT).read_text())
    database = report["restored"]["db-links"]

    settle_web1()
    backup_bench.say("floor: bare package install on a fresh container")
    subprocess.run(["docker", "rm", "-f", sandbox_state.container_name(SANDBOX, "floor")], capture_output=True)
    sandbox.up(SANDBOX, ["floor"])
    base_packages = set(backup_bench.on("floor", "apt-mark showmanual").split())
    packages = sorted(set(backup_bench.on("web1", "apt-mark showmanual").split()) - base_packages)
    install = timed(
        "floor",
        "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq"
        f" --no-install-recommends {shlex.join(packages)} > /dev/null",
    )
    backup_bench.say("floor: bare restic restore and bare pg_restore of the same snapshot")
    backup_bench.on("web1", "rm -rf /tmp/floor")
    restic = timed("web1", bare_restic(["restore", database["snapshot"], "--target", "/tmp/floor"]) + " > /dev/null")
    dump = backup_bench.on("web1", "find /tmp/floor -name '*.dump' | head -1").strip()
    backup_bench.on("web1", "runuser -u postgres -- createdb floor && chmod -R a+rX /tmp/floor")
    pg_restore = timed("web1", f"runuser -u postgres -- pg_restore --exit-on-error -d floor {shlex.quote(dump)}")
    backup_bench.on("web1", "runuser -u postgres -- dropdb floor && rm -rf /tmp/floor")  # nothing left to vacuum
    backup_bench.say("floor: bare install of the same release archive, bare start of the app")
    app_install, app_migrate, app_start = app_floors()
    return Recovery(
        create,
        wall,
        report["steps"],
        database,
        len(packages),
        install,
        restic,
        pg_restore,
        app_install,
        app_migrate,
        app_start,
    )


def print_recovery(recovery: Recovery) -> None:
    steps = recovery.steps
    prepare = recovery.wall - sum(steps.values())
    print(f"{'step':28} {'measured':>9} {'floor':>9}  floor measured as")
    print(f"{'create the host':28} {recovery.create:8.1f}s {'':>9}")
    print(f"{'restore.py: prepare':28} {prepare:8.1f}s {'':>9}  (connect, ask the vault, facts)")
    provision = f"{'restore.py: provision':28} {steps['provision']:8.1f}s {recovery.install:8.1f}s"
    print(f"{provision}  apt-get install of {recovery.packages} packages")
    print(
        f"{'restore.py: restore data':28} {steps['restore data']:8.1f}s {recovery.restic + recovery.pg_restore:8.1f}s"
        f"  restic restore {recovery.restic:.1f}s + pg_restore {recovery.pg_restore:.1f}s"
    )
    start_floor = recovery.app_install + recovery.app_migrate + recovery.app_start
    print(
        f"{'restore.py: start the app':28} {steps['start the app']:8.1f}s {start_floor:8.1f}s"
        f"  pip install of the release {recovery.app_install:.1f}s + migrate {recovery.app_migrate:.1f}s"
        f" + start until healthy {recovery.app_start:.1f}s"
    )
    total, floors = recovery.total, recovery.floors
    print(f"{'total RTO':28} {total:8.1f}s {floors:8.1f}s  = {total / floors:.2f} x the sum of the floors")
    floored = steps["provision"] + steps["restore data"] + steps["start the app"]
    print(f"{'the three floored steps':28} {floored:8.1f}s {floors:8.1f}s  = {floored / floors:.2f} x their floors")


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number, 1 or more")
    return int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--db-size", type=parse_size, default=1024, help="database size, e.g. 1GiB (default)")
    parser.add_argument(
        "--runs", type=positive, default=1, help="incidents in a row, each with its own floors (default 1)"
    )
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running")
    arguments = parser.parse_args()
    os.chdir(REPOSITORY)
    start_line = machine_line("at the start")
    backup_bench.SANDBOX = SANDBOX  # its helpers run commands on this bench's hosts
    sandbox.down(SANDBOX)
    sandbox.up(SANDBOX, ["web1", "vault1"])
    recoveries = []
    try:
        backup_bench.say("converging web1 and vault1")
        backup_bench.run_pyinfra(INVENTORY, "deploy.py")
        backup_bench.say(f"generating about {arguments.db_size} MiB of rows")
        rows, database_bytes = backup_bench.fill(arguments.db_size)
        backup_bench.say("backing up")
        backup_bench.on("web1", "phoenix-backup run all --trigger manual")
        for run in range(1, arguments.runs + 1):
            backup_bench.say(f"incident {run} of {arguments.runs}: web1 removed, a fresh container, restore.py")
            recoveries.append(recover())
    finally:
        if not arguments.keep:
            sandbox.down(SANDBOX)
    mib = 1024 * 1024
    print(start_line)
    print(machine_line("at the end"))
    dump_mib = recoveries[0].database["bytes"] / mib
    print(f"database: {rows:,} rows, {database_bytes / mib:,.0f} MiB; dump {dump_mib:,.0f} MiB")
    for run, recovery in enumerate(recoveries, 1):
        if len(recoveries) > 1:
            print(f"incident {run} of {len(recoveries)}:")
        print_recovery(recovery)
    if len(recoveries) > 1:
        ratios = [recovery.total / recovery.floors for recovery in recoveries]
        each = ", ".join(f"{recovery.total:.1f}s/{recovery.floors:.1f}s" for recovery in recoveries)
        print(f"total RTO against the sum of the floors, {each}: median {statistics.median(ratios):.2f} x")


if __name__ == "__main__":
    main()
