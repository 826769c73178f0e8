"""Phoenix's one-host converge next to an Ansible playbook doing the same build, on identical fresh containers.

    .venv/bin/python bench/ansible.py [--pairs 3] [--keep]

One host of inventories/dev.yml (nginx, the app under systemd, PostgreSQL; no backups, as in dev.yml) is first
converged by Phoenix as a reference: the files it rendered, the release archive, the markers' values and the
database role's password verifier are copied out of it into a staging directory (bench/ansible_stage.py). Then
each pair runs Phoenix (`pyinfra -y inventories/dev.py deploy.py`), Ansible and Ansible with mitogen's
mitogen_linear strategy, each on a fresh container of the same image, cold and then again with nothing to
change; Phoenix first in odd pairs, last in even ones. After each tool's two runs, the host is compared with the
reference (files' owners, modes and contents, the app's user, services enabled and active, packages, the role and
database, the health check), and the container is removed: at most one of this bench's containers runs at a time.
It prints the medians and Phoenix's time as a fraction of each Ansible's, with the core count and load at the
start and the end. The first run makes .venv-ansible (bench/ansible_venv.py has the pinned versions).

Connections: Phoenix enters the container with nsenter for each command (its @sandbox connector,
phoenix/sandbox_connector.py; before 2026-12-02 pyinfra's @docker connector, one `docker exec` per command, about
ten times the CPU); Ansible uses community.docker.docker (`docker exec`, with pipelining), Ansible + mitogen uses
mitogen_docker (one `docker exec` running a persistent Python interpreter that every task goes through). Real
servers are reached over SSH by all three; the figures before that date compare like with like.

What the playbook (bench/ansible/playbook.yml) does that deploy.py does differently, or not at all:
- It deploys the files Phoenix rendered (copy), and does not render the templates itself: nothing of the
  inventory, the schema checks or the secrets' decryption, which Phoenix does before connecting, is in its time.
- The database role gets the SCRAM verifier Phoenix made, compared as a string on a re-run; Phoenix computes
  one on the control machine and checks the stored one against the password.
- The release archive is the one Phoenix built (its build is cached and not part of either time).
- Packages: the same list in one apt transaction, found missing by a `dpkg-query` loop (Ansible's apt module
  would install python3-apt on the host, a package Phoenix does not install); apt's lists are refreshed with the
  install only, where Phoenix refreshes lists older than a day.
- It does not set the host name (already the container's, which Phoenix only checks), and checks none of what
  Phoenix's own checks cover: the WSGI target's import (an empty check for this paste app), the downgrade
  refusal, app.system_packages dropped since the last deploy, app.processes and app.periodic left over.
- The certificate's command runs unless the key exists (Phoenix: unless both files exist).
- Handlers (sshd, journald, nftables, PostgreSQL, nginx) run where Ansible runs them: at the end of the play,
  PostgreSQL's before the database role is made; Phoenix runs each right after its change.
- No facts are gathered; both sides leave out backups (dev.yml disables them) and everything else a
  vault or another host would bring.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from bench.ansible_report import Run, order, report  # noqa: E402
from bench.ansible_stage import manifest, stage, write_variables  # noqa: E402
from bench.ansible_venv import ansible_venv, mitogen_strategy_plugins  # noqa: E402
from bench.converge_timing import timed_converge  # noqa: E402
from bench.machine import machine_line  # noqa: E402
from phoenix import sandbox, sandbox_state  # noqa: E402
from phoenix.inventory import load_environment  # noqa: E402

INVENTORY = "inventories/dev.py"
PLAYBOOK = REPOSITORY / "bench" / "ansible" / "playbook.yml"
CONNECTIONS = {"ansible": "community.docker.docker", "ansible+mitogen": "mitogen_docker"}


def ansible_environment(tool: str, bin_directory: Path) -> dict:
    environment = dict(os.environ, ANSIBLE_CONFIG=str(PLAYBOOK.parent / "ansible.cfg"))
    if tool == "ansible+mitogen":
        environment |= {
            "ANSIBLE_STRATEGY_PLUGINS": str(mitogen_strategy_plugins(bin_directory)),
            "ANSIBLE_STRATEGY": "mitogen_linear",
        }
    return environment


def timed_playbook(tool: str, bin_directory: Path, container: str, work: Path) -> tuple[float, int]:
    """Runs the playbook against `container`; returns its wall seconds and the tasks it reported changed."""
    inventory = work / f"inventory-{tool}.ini"
    inventory.write_text(f"{container} ansible_connection={CONNECTIONS[tool]}\n")
    command = [str(bin_directory / "ansible-playbook"), "-i", str(inventory), str(PLAYBOOK),
               "-e", f"variables_file={work / 'vars.yml'}"]  # fmt: skip
    started = time.monotonic()
    process = subprocess.run(command, env=ansible_environment(tool, bin_directory), capture_output=True, text=True)
    seconds = time.monotonic() - started
    if process.returncode != 0:
        sys.exit(f"{tool} failed on {container}:\n{process.stdout[-4000:]}\n{process.stderr[-2000:]}")
    return seconds, int(re.search(r"changed=(\d+)", process.stdout).group(1))


def one_run(tool: str, pair: int, setting: dict, keep: bool = False) -> Run:
    """`tool` on a fresh container, cold and then with nothing to change; compared with the reference. The
    container is removed unless `keep`."""
    name, host = setting["sandbox"], setting["host"]
    sandbox.up(name, [host])
    container = sandbox_state.container_name(name, host)
    if tool == "phoenix":
        cold, noop, changed = timed_converge(INVENTORY, name).seconds, timed_converge(INVENTORY, name).seconds, None
    else:
        cold, _ = timed_playbook(tool, setting["bin"], container, setting["work"])
        noop, changed = timed_playbook(tool, setting["bin"], container, setting["work"])
    found = manifest(container, setting["packages"])
    differences = sorted(set(found) ^ set(setting["reference"]))
    if not keep:
        sandbox.down(name)
    return Run(tool, pair, cold, noop, changed, tuple(differences))


def reference(setting: dict, settings: dict) -> None:
    """Converges a host with Phoenix (untimed), stages what the playbook deploys and keeps its manifest."""
    name, host = setting["sandbox"], setting["host"]
    sandbox.up(name, [host])
    try:
        timed_converge(INVENTORY, name)
        container = sandbox_state.container_name(name, host)
        variables = stage(container, settings, setting["work"] / "staging")
        write_variables(variables, setting["work"] / "vars.yml")
        setting["packages"] = variables["packages"]
        setting["reference"] = manifest(container, variables["packages"])
    finally:
        sandbox.down(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave the last run's container running")
    arguments = parser.parse_args()
    os.chdir(REPOSITORY)
    bin_directory = ansible_venv(REPOSITORY)
    hosts = load_environment(REPOSITORY / "inventories" / "dev.yml").hosts
    (host,) = hosts
    start_line = machine_line("at the start")
    runs = []
    with tempfile.TemporaryDirectory(prefix="ansible-bench-") as work:
        setting = {"sandbox": f"ansible-bench-{os.getpid()}", "host": host, "bin": bin_directory, "work": Path(work)}
        reference(setting, hosts[host])
        try:
            for pair in range(1, arguments.pairs + 1):
                for tool in order(pair):
                    last = pair == arguments.pairs and tool == order(pair)[-1]
                    runs.append(one_run(tool, pair, setting, keep=arguments.keep and last))
                    print(f"[bench] pair {pair} {tool}: cold {runs[-1].cold:.1f} s, no-op {runs[-1].noop:.1f} s",
                          flush=True)  # fmt: skip
        finally:
            if not arguments.keep:
                sandbox.down(setting["sandbox"])
    print(start_line)
    print(f"host: {host} of inventories/dev.yml ({', '.join(hosts[host]['roles'])}), {arguments.pairs} pairs")
    print("\n".join(report(runs)))
    print(machine_line("at the end"))


if __name__ == "__main__":
    main()
