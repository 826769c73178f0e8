"""Stand-ins: sandbox containers that take an environment's servers' place, with their off-site data.

A drill restores prod's web1 into a throwaway container; `phoenix up dev --with-data` restores
prod's web1 into dev's web1. Either way the container gets the blueprint of its own inventory
and borrows the backup settings of the host it stands in for: the repository URL, the vault
login (which can read and add, never delete), the restic password and the vault's certificate.
A stand-in never backs up: it has no backup timers and no pings, and `phoenix-backup run`
refuses there, so nothing it holds can reach the real host's repository. With `from_archive` (a
drill), a stand-in of an archived database host recovers its PostgreSQL from the source vault's
Barman archive as restore.py would, piped into the stand-in's own container; the vault's Barman
never learns of it (phoenix/physical_restore.py).

restore.py runs against an inventory written by write_inventory(); it asks the source
environment's vault which runs to restore, exactly as it does for a real rebuild.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

from phoenix import backup_plan, sandbox_state
from phoenix.errors import PhoenixError, refuse
from phoenix.inventory import Environment, host_addresses, load_environment, pyinfra_hosts
from phoenix.progress import say
from phoenix.secrets import load_secrets

REPOSITORY = Path(__file__).resolve().parents[1]


def backup_secret_keys(name: str) -> list[str]:
    """Returns the dotted secrets a stand-in borrows from the host `name` it stands in for."""
    return [
        f"restic_passwords.{name}",
        f"vault_credentials.{name}",
        f"backup_environment.{name}",
        "vault_tls_certificate",
    ]


def data_hosts(environment: Environment, only: str = "") -> list[str]:
    """Returns the hosts whose backups a drill restores: those backing up to the vault, each with
    the hosts it shares a database with (an app and its database server are restored together).

    `only` narrows the drill to that host and its partners.
    """
    backed_up = [name for name, host in environment.hosts.items() if backup_plan.uses_vault(host)]
    if only:
        if only not in environment.hosts:
            hosts = ", ".join(environment.hosts)
            raise PhoenixError(f"--host {only}: not a host of {environment.path} (hosts: {hosts})")
        if only not in backed_up:
            raise PhoenixError(f"--host {only}: it has no backups on {environment.name}'s vault to restore")
        group = {only}
    else:
        group = set(backed_up)
    if not group:
        raise PhoenixError(f"{environment.path}: no host backs up to a Phoenix vault; there is nothing to restore")
    grown = True
    while grown:
        grown = False
        for name, host in environment.hosts.items():
            database_host = host["app"]["database"]["host"] if "app" in host["roles"] else "localhost"
            if database_host != "localhost" and (name in group) != (database_host in group):
                group |= {name, database_host}
                grown = True
    return [name for name in environment.hosts if name in group]


def load(path: str | Path, sandbox: str = "") -> Environment:
    """Loads an environment; `sandbox` names the sandbox its docker hosts live in (else the default)."""
    environment = load_environment(path)
    return replace(environment, sandbox_name=sandbox) if sandbox else environment


def stand_in_hosts(
    source_path: str,
    source_sandbox: str,
    target_path: str,
    target_sandbox: str,
    names: list[str],
    from_archive: bool = False,
) -> list[tuple[str, dict]]:
    """Returns pyinfra hosts: containers of `target_sandbox` standing in for source hosts `names`.

    Each gets the target inventory's settings for its name (the source's own for a drill) and
    the source host's backups; with `from_archive`, a stand-in of an archived host recovers from
    the source's archive (else from its dumps). Raises PhoenixError when the two cannot fit together.
    """
    source = load(source_path, source_sandbox)
    source_secrets = load_secrets(source)
    lenders = {data["phoenix_host"]: data for _, data in pyinfra_hosts(source, source_secrets)}
    drill = Path(target_path).with_suffix(".yml").resolve() == source.path.resolve()
    own = source if drill else load(target_path, target_sandbox)
    secrets = source_secrets if drill else load_secrets(own)
    target = replace(
        own, connection={"type": "docker", "sandbox": target_sandbox}, sandbox_name=target_sandbox, throwaway=True
    )
    in_sandbox = {name: info["address"] for name, info in sandbox_state.read(target_sandbox)["hosts"].items()}
    addresses = {**(host_addresses(source) if drill else {}), **in_sandbox}
    missing = sorted(set(target.hosts) - set(addresses))
    if missing:
        raise PhoenixError(f"sandbox '{target_sandbox}' has no host(s) {', '.join(missing)}")
    result = []
    for connection, data in pyinfra_hosts(target, secrets, addresses):
        name = data["phoenix_host"]
        if name not in names:
            continue
        lender = lenders[name]
        _check_databases(target, source, name, lender["backup_jobs"])
        data.update(
            phoenix_inventory=str(source.path),
            backup_target=lender["backup_target"],
            backup_jobs=[{**job, "ping_url": ""} for job in lender["backup_jobs"]],
            stand_in=f"{source.name}/{name}",
            stand_in_container=sandbox_state.container_name(target_sandbox, name),
            archive_vault_address="",  # the source's vault archives the source host, never its stand-in
            restore_from_archive=from_archive and lender["restore_from_archive"],
            secrets=secrets.borrowing(source_secrets, backup_secret_keys(name)),
        )
        result.append((connection, data))
    return result


def _check_databases(target: Environment, source: Environment, name: str, jobs: list[dict]) -> None:
    backed_up = sorted(job["database"] for job in jobs if job["kind"] == "db")
    served = backup_plan.databases_served(name, target.hosts)
    if sorted(set(backed_up) - set(served)):
        raise PhoenixError(
            f"{target.path}: host {name} serves database(s) {', '.join(served) or 'none'}, but"
            f" {source.name}'s {name} backs up {', '.join(backed_up)}: the restored data would not reach the app"
        )


def inventory_hosts(arguments: dict) -> list[tuple[str, dict]]:
    """For use inside a written inventory: its hosts, or the problems printed and exit 2."""
    try:
        return stand_in_hosts(**arguments)
    except PhoenixError as error:
        refuse(f"phoenix: inventory not loaded, no host was touched:\n{error}")


def inventory_arguments(
    source: Environment, target_path: str | Path, target_sandbox: str, names: list[str], from_archive: bool = False
) -> dict:
    """Returns the arguments of stand_in_hosts() for stand-ins of `names` in `target_sandbox`."""
    return {
        "source_path": str(source.path.resolve()),
        "source_sandbox": sandbox_variable(source),
        "target_path": str(Path(target_path).with_suffix(".yml").resolve()),
        "target_sandbox": target_sandbox,
        "names": names,
        "from_archive": from_archive,
    }


def write_inventory(arguments: dict) -> Path:
    """Writes the pyinfra inventory of the stand-ins; returns its path (in the local state directory)."""
    path = sandbox_state.state_root() / "sandboxes" / f"{arguments['target_sandbox']}_stand_in_inventory.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f'"""Hosts of sandbox {arguments["target_sandbox"]} standing in for {", ".join(arguments["names"])}'
        f' of {arguments["source_path"]}; written by phoenix."""\n\n'
        "from phoenix.stand_in import inventory_hosts\n\n"
        f"servers = inventory_hosts({arguments!r})\n"
    )
    return path


def attach_to_source_network(source: Environment, target_sandbox: str, names: list[str]) -> None:
    """Lets stand-ins reach a sandboxed source's vault by name, by joining its Docker network."""
    if not source.in_sandbox:
        return  # a real vault is reached by its server_name or address, like from the real hosts
    network = sandbox_state.network_name(source.sandbox_name)
    for name in names:
        container = sandbox_state.container_name(target_sandbox, name)
        result = subprocess.run(["docker", "network", "connect", network, container], capture_output=True, text=True)
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise PhoenixError(f"cannot connect {container} to {network}: {result.stderr.strip()}")


def pyinfra_command(inventory: Path, deploy: str, data: dict[str, str]) -> list[str]:
    pyinfra = Path(sys.executable).with_name("pyinfra")
    arguments = [argument for key, value in data.items() for argument in ("--data", f"{key}={value}")]
    return [str(pyinfra), "-y", *arguments, str(inventory), deploy]


def sandbox_variable(environment: Environment) -> str:
    """Returns the PHOENIX_SANDBOX value under which pyinfra finds the environment's hosts ("" for ssh)."""
    return environment.sandbox_name if environment.in_sandbox else ""


def run_pyinfra(command: list[str], sandbox_value: str, log_path: Path, label: str) -> int:
    """Runs pyinfra (in the repository, where the deploy files are), its output into `log_path`.

    PHOENIX_SANDBOX is set to `sandbox_value` (restore.py asks the source environment's vault).
    Prints the operations and restore.py's report as they come, so a long run shows progress.
    """
    environment = dict(os.environ)
    environment.pop("PHOENIX_SANDBOX", None)
    if sandbox_value:
        environment["PHOENIX_SANDBOX"] = sandbox_value
    log_path.parent.mkdir(parents=True, exist_ok=True)
    say(f"{label}: {' '.join(command[-2:])} (full output: {log_path})")
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, cwd=REPOSITORY, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        echo = threading.Thread(target=_echo_progress, args=(process.stdout, log, label), daemon=True)
        echo.start()
        code = process.wait()
        echo.join()
    return code


OPERATION_STATUSES = ("Success", "No changes", "Skipped")  # a host's line under an operation that went well
HOST_LINE = re.compile(r"^\s+\[[^\]]+\]\s+(?P<message>.+)$")


def _echo_progress(stream, log, label: str) -> None:
    section = ""  # the pyinfra section the line belongs to; its results table and restore reports are shown
    reports = []  # what a host said under an operation besides its status: a command's error, pyinfra's verdict
    for line in stream:
        log.write(line)
        log.flush()
        text = line.rstrip()
        host_line = HOST_LINE.match(text)
        if text.startswith("--> "):
            section = text
            print(f"[{label}] {text.removeprefix('--> ')}", file=sys.stderr, flush=True)
        elif text.endswith(": restored") or "stopped before changing anything" in text:
            section = "report"
            print(f"  {text}", file=sys.stderr, flush=True)
        elif text and (section == "report" or section.startswith("--> Results")):
            print(f"  {text}", file=sys.stderr, flush=True)
        elif _is_host_report(host_line, section):
            reports.append(f"  {section.removeprefix('--> Starting operation: ').strip()}: {text.strip()}")
            print(reports[-1], file=sys.stderr, flush=True)
    if reports:  # again at the end, where a reader of a long output looks first
        print(f"[{label}] what the hosts reported:", *reports, sep="\n", file=sys.stderr, flush=True)


def _is_host_report(host_line: re.Match | None, section: str) -> bool:
    """Whether a line is a host's words under an operation other than its status (Success, ...)."""
    return (
        bool(host_line)
        and section.startswith("--> Starting operation")
        and host_line["message"] not in OPERATION_STATUSES
    )
