"""Reaching the environment's vault from the control machine: `phoenix-vault ARGS` over the inventory's
own connection (ssh, or nsenter into a sandbox's container: phoenix/container_shell.py).

Every verb that asks the vault something (status, pins, restore planning, backup.py, upgrade.py)
goes through here; this module knows nothing of those verbs.
"""

from __future__ import annotations

import json
import shlex
import subprocess

from phoenix import backup_plan, sandbox_state
from phoenix.commands import make_vault_pin_arguments
from phoenix.container_shell import enter_argv
from phoenix.errors import PhoenixError
from phoenix.inventory import Environment, ssh_login


def remote_command(environment: Environment, name: str, with_stdin: bool = False) -> list[str]:
    """Returns the argv prefix that runs a command as root on host `name` of the environment
    (`with_stdin`: the command reads what is sent to it; a sandbox container's command always can)."""
    if environment.connection["type"] == "docker":
        return enter_argv(sandbox_state.container_name(environment.sandbox_name, name), [])
    ssh = ssh_login(environment, name)
    command = ["ssh", "-p", str(ssh["port"]), "-o", "BatchMode=yes"]
    if ssh["key_file"]:
        command += ["-i", ssh["key_file"]]
    if ssh["known_hosts_file"]:
        command += ["-o", f"UserKnownHostsFile={ssh['known_hosts_file']}", "-o", "StrictHostKeyChecking=yes"]
    command.append(f"{ssh['user']}@{ssh['host']}")
    return command + ([] if ssh["user"] == "root" else ["sudo", "-n"])


def ask_vault(environment: Environment, *arguments: str, timeout: int = 120) -> dict:
    """Runs `phoenix-vault ARGUMENTS` on the environment's vault; returns its JSON, or raises PhoenixError."""
    return json.loads(run_on_vault(environment, *arguments, timeout=timeout))


def run_on_vault(environment: Environment, *arguments: str, timeout: int = 120, stdin: str | None = None) -> str:
    """Runs `phoenix-vault ARGUMENTS` on the environment's vault (sending it `stdin` when given); returns its
    output, or raises PhoenixError."""
    vault = backup_plan.vault_host(environment.hosts)
    if vault is None:
        raise PhoenixError(f"{environment.path}: no host has the vault role; the backups are read from the vault")
    # ssh hands the remote shell one string: the arguments are quoted for it (a pin's reason has spaces)
    quoted = [shlex.quote(argument) for argument in arguments] if environment.over_ssh else arguments
    command = [*remote_command(environment, vault, with_stdin=stdin is not None), "phoenix-vault", *quoted]
    what = f"`phoenix-vault {' '.join(arguments)}`"
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, input=stdin)
    except subprocess.TimeoutExpired as error:
        raise PhoenixError(f"{vault}: {what} did not answer within {timeout}s") from error
    if result.returncode != 0:
        raise PhoenixError(f"{vault}: {what} failed: {(result.stderr.strip() or result.stdout.strip())[-500:]}")
    return result.stdout


def vault_report(environment: Environment) -> dict:
    """Returns `phoenix-vault status` of the environment's vault: every client's jobs, pins and checks."""
    return ask_vault(environment, "status")


def vault_runs(environment: Environment, host_name: str) -> dict:
    """Returns `phoenix-vault runs` for the host: {"now": vault's clock, "runs": [...] oldest first}."""
    return ask_vault(environment, "runs", "--client", host_name, timeout=300)


def pin_run(environment: Environment, client: str, run: str, reason: str, by: str) -> dict:
    """Asks the environment's vault to pin one run of `client`; returns its answer; PhoenixError when refused."""
    return ask_vault(environment, *make_vault_pin_arguments(run, reason, by, client=client))


def vault_space(environment: Environment, client: str) -> dict:
    """Returns `phoenix-vault space` for the client: free and total bytes where its repository lives."""
    return ask_vault(environment, "space", "--client", client, timeout=60)


def backup_history(environment: Environment) -> list[dict]:
    """Returns `phoenix-vault backups`: each job's newest complete runs with bytes and seconds, oldest first."""
    return ask_vault(environment, "backups", timeout=300)["backups"]


def record_drill(environment: Environment, record: dict) -> None:
    """Appends one drill's record to the drill history on the environment's vault; PhoenixError when it cannot."""
    run_on_vault(environment, "drill-record", stdin=json.dumps(record), timeout=60)


def vault_drills(environment: Environment) -> list[dict]:
    """Returns the environment's drills recorded on its vault, oldest first; PhoenixError when it cannot ask."""
    drills = ask_vault(environment, "drills", timeout=60)["drills"]
    return [drill for drill in drills if drill.get("environment") == environment.name]
