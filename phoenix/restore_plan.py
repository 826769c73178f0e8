"""Which runs restore.py restores on a host, decided on the control machine before any change.

The vault is asked (over the inventory's own connection) for the host's runs. By default each
job's latest verified run is chosen; `--data snapshot=ID` picks one run (by run id or snapshot
id; `latest` means each job's newest complete run, verified or not), `--data at="2026-11-20
18:00"` the newest complete run at or before that time (UTC unless an offset is given).
A bad id, an unreachable vault or a repository the vault cannot open stops restore.py here.
"""

from __future__ import annotations

import time
from datetime import datetime

from phoenix.errors import PhoenixError
from phoenix.inventory import Environment, load_environment
from phoenix.status import ask_vault

_environments: dict[str, Environment] = {}


def environment_of(path: str) -> Environment:
    if path not in _environments:
        _environments[path] = load_environment(path)
    return _environments[path]


def vault_runs(environment: Environment, host_name: str) -> list[dict]:
    """Returns the host's runs as the vault lists them (oldest first)."""
    return ask_vault(environment, "runs", "--client", host_name, timeout=300)["runs"]


def choose(
    runs: list[dict], jobs: list[str], host_name: str, snapshot: str = "", at: datetime | None = None
) -> dict[str, dict]:
    """Returns {job: run} to restore (`at`: the newest at or before it); raises PhoenixError saying why a
    choice is impossible."""
    complete = [run for run in runs if run["complete"]]
    chosen: dict[str, dict] = {}
    if snapshot and snapshot != "latest":
        match = [run for run in runs if run["run"] == snapshot or any(s.startswith(snapshot) for s in run["snapshots"])]
        if not match:
            raise PhoenixError(f"--data snapshot={snapshot}: no such run or snapshot in {host_name}'s repository")
        if not match[0]["complete"]:
            raise PhoenixError(f"--data snapshot={snapshot}: run {match[0]['run']} has no manifest (it did not finish)")
        chosen[match[0]["job"]] = match[0]
    for job in jobs:
        if job in chosen:
            continue
        candidates = [run for run in complete if run["job"] == job]
        if at is not None:
            candidates = [run for run in candidates if datetime.fromisoformat(run["time"]) <= at]
        elif snapshot != "latest":
            candidates = [run for run in candidates if run["verified"]]
        if not candidates:
            raise PhoenixError(_nothing_to_restore(host_name, job, at, snapshot))
        chosen[job] = candidates[-1]
    return chosen


def _nothing_to_restore(host_name: str, job: str, at: datetime | None, snapshot: str) -> str:
    if at is not None:
        return f"{host_name}/{job}: no complete backup at or before {at:%Y-%m-%d %H:%M %Z}"
    if snapshot == "latest":
        return f"{host_name}/{job}: no complete backup in the repository"
    return (
        f"{host_name}/{job}: no verified backup yet (the vault's check marks them);"
        " restore the newest complete one with --data snapshot=latest"
    )


def for_host(data) -> dict[str, dict]:
    """Given a host's pyinfra data, returns {job: run} restore.py restores there ({} without backups)."""
    if not data.backup_jobs:
        return {}
    if not data.backup_target["vault"]:
        target = data.backup_target["url"]
        raise PhoenixError(f"{data.phoenix_host}: restore.py restores from a Phoenix vault, not from {target}")
    environment = environment_of(data.phoenix_inventory)
    runs = vault_runs(environment, data.phoenix_host)
    jobs = [job["name"] for job in data.backup_jobs]
    flags = data.run_flags
    return choose(runs, jobs, data.phoenix_host, flags["snapshot"] or "", flags["at"])


class Clock:
    """Per-host step durations, recorded while the operations execute (python.call)."""

    def __init__(self):
        self.started: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.steps: dict[str, dict[str, float]] = {}

    def start(self, host_name: str) -> None:
        self.started[host_name] = self.last[host_name] = time.monotonic()
        self.steps[host_name] = {}

    def lap(self, host_name: str, step: str) -> None:
        moment = time.monotonic()
        self.steps[host_name][step] = round(moment - self.last[host_name], 2)
        self.last[host_name] = moment


def describe(restored: dict) -> str:
    """One line saying what a host-side restore report says."""
    age_hours = restored["age_seconds"] / 3600
    what = (
        f"{restored['rows']} rows in {restored['tables']} tables, {restored['bytes']:,} bytes"
        if "rows" in restored
        else f"{restored['files']} files, {restored['bytes']:,} bytes"
    )
    verdict = "matches its manifest" if restored["ok"] else "DOES NOT match its manifest"
    return (
        f"run {restored['run']} (snapshot {restored['snapshot'][:8]}, {age_hours:.1f}h old), {what},"
        f" {verdict}, {restored['seconds']:.1f}s"
    )
