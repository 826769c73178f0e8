"""Which runs restore.py restores on a host, decided on the control machine before any change.

The vault is asked (over the inventory's own connection) for the host's runs. By default each
job's newest complete run is chosen (complete: it has its manifest; its data are checked against
that manifest while restoring), verified by the vault or not yet. A run the vault's check found
bad is never chosen silently: when the newest complete run is one, restore.py stops with one line
giving both runs' ages, unless `--data allow_older=yes` lets it restore the newest good one.
A job restore.py restores that has no complete run yet (a server lost before its first nightly
files backup) stops it too, unless `--data allow_missing=yes` lets it restore the host's other
data and say which job it left out. Jobs it does not restore (a files job of /etc alone; the
dumps of a PostgreSQL the archive restores) need no run.
`--data snapshot=ID` picks one run (by run id or snapshot id; `latest` is the default),
`--data at="2026-11-20 18:00"` the newest complete run at or before that time (UTC unless an
offset is given). A bad id, an unreachable vault or a repository the vault cannot open stops
restore.py here.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from phoenix import backup_plan, physical_restore
from phoenix.errors import PhoenixError
from phoenix.inventory import environment_of
from phoenix.units import age, duration
from phoenix.vault_client import remote_command, vault_runs


def choose(
    runs: list[dict],
    jobs: list[str],
    host_name: str,
    snapshot: str = "",
    at: datetime | None = None,
    allow_older: bool = False,
    now: datetime | None = None,
    allow_missing: bool = False,
) -> dict[str, dict]:
    """Given the vault's runs of a host, returns {job: run} to restore (`at`: the newest at or before it;
    a run restored instead of a newer bad one carries the line saying so as "fallback"; with `allow_missing`,
    a job without a complete run is {"job": job, "missing": the line saying so}); raises PhoenixError saying
    why a choice is impossible, or, without `allow_older`, that only an older run than the newest complete
    one is good."""
    now = now or datetime.now(UTC)
    chosen: dict[str, dict] = {}
    if snapshot and snapshot != "latest":
        match = [run for run in runs if run["run"] == snapshot or any(s.startswith(snapshot) for s in run["snapshots"])]
        if not match:
            raise PhoenixError(f"--data snapshot={snapshot}: no such run or snapshot in {host_name}'s repository")
        if not match[0]["complete"]:
            raise PhoenixError(f"--data snapshot={snapshot}: run {match[0]['run']} has no manifest (it did not finish)")
        if match[0].get("failed"):
            raise PhoenixError(
                f"--data snapshot={snapshot}: run {match[0]['run']} failed the vault's check"
                f" ({match[0]['failed']}); choose another run (`phoenix status`)"
            )
        if match[0]["job"] not in jobs:
            raise PhoenixError(
                f"--data snapshot={snapshot}: run {match[0]['run']} is of job {match[0]['job']}, which restore.py"
                f" does not restore on {host_name} (restored there: {', '.join(jobs) or 'nothing'})"
            )
        chosen[match[0]["job"]] = match[0]
    for job in jobs:
        if job in chosen:
            continue
        candidates = [run for run in runs if run["complete"] and run["job"] == job]
        if at is not None:
            candidates = [run for run in candidates if datetime.fromisoformat(run["time"]) <= at]
        if not candidates:
            where = f"at or before {at:%Y-%m-%d %H:%M %Z}" if at is not None else "in the repository yet"
            line = f"{host_name}/{job}: no complete backup {where}"
            if not allow_missing:
                raise PhoenixError(
                    f"{line}; to restore {host_name}'s other data without it, run again with --data allow_missing=yes"
                )
            chosen[job] = {"job": job, "missing": line}
            continue
        chosen[job] = _newest_good(candidates, f"{host_name}/{job}", allow_older, now)
    return chosen


def _newest_good(candidates: list[dict], name: str, allow_older: bool, now: datetime) -> dict:
    """Given a job's complete runs (oldest first), returns the newest one, or the newest the vault
    did not find bad when `allow_older`; raises PhoenixError (one line, both ages) otherwise."""
    newest = candidates[-1]
    if not newest.get("failed"):
        return newest
    good = [run for run in candidates if not run.get("failed")]

    line = (
        f"{name}: the newest run {newest['run']} ({age(newest['time'], now)} old)"
        f" failed the vault's check ({newest['failed']})"
    )
    if not good:
        raise PhoenixError(f"{line}; no older complete run passed it: nothing good to restore")
    line += f"; the newest good one is {good[-1]['run']} ({age(good[-1]['time'], now)} old)"
    if not allow_older:
        raise PhoenixError(f"{line}: to restore it, run again with --data allow_older=yes")
    return {**good[-1], "fallback": line}


def physical_for_host(data):
    """Given a host's pyinfra data, returns the physical_restore.Plan of its PostgreSQL, or None when the dump is
    restored instead (not archived, no base backup in the vault's Barman yet, or `--data snapshot` names a run);
    raises PhoenixError for a target outside the archive's window."""
    flags = data.run_flags
    if not data.restore_from_archive or "postgres" not in data.roles or (flags["snapshot"] or "") not in ("", "latest"):
        if flags["restore_point"]:
            raise PhoenixError(
                f"--data restore_point={flags['restore_point']}: {data.phoenix_host}'s PostgreSQL is not archived"
                " by the vault (postgres.archive), so it has no restore points; use --data at or --data snapshot"
            )
        return None
    environment = environment_of(data.phoenix_inventory)
    vault = backup_plan.vault_host(environment.hosts)
    backups = physical_restore.list_backups(environment, data.phoenix_host, remote_command)
    plan = physical_restore.choose(
        data.phoenix_host,
        backups,
        environment.hosts[vault]["vault"]["pitr"]["window_days"],
        at=flags["at"],
        restore_point=flags["restore_point"] or "",
    )
    if plan is None and flags["restore_point"]:
        raise PhoenixError(
            f"--data restore_point={flags['restore_point']}: the vault's archive holds no base backup of"
            f" {data.phoenix_host} yet"
        )
    return plan


def restored_jobs(backup_jobs: list[dict], physical: bool = False) -> list[dict]:
    """Given a host's backup jobs, returns those restore.py brings back: its dumps (unless `physical`: the
    archive restores its PostgreSQL) and its files jobs with a path outside /etc (the blueprint rebuilds /etc)."""
    return [
        job
        for job in backup_jobs
        if (job["kind"] == "db" and not physical) or (job["kind"] == "files" and backup_plan.restorable_paths(job))
    ]


def for_host(data, physical: bool = False) -> dict[str, dict]:
    """Given a host's pyinfra data, returns {job: run} of the jobs restore.py restores there (restored_jobs;
    {} when none)."""
    jobs = [job["name"] for job in restored_jobs(data.backup_jobs, physical)]
    if not jobs:
        return {}
    if not data.backup_target["vault"]:
        target = data.backup_target["url"]
        raise PhoenixError(f"{data.phoenix_host}: restore.py restores from a Phoenix vault, not from {target}")
    environment = environment_of(data.phoenix_inventory)
    listing = vault_runs(environment, data.phoenix_host)
    flags = data.run_flags
    return choose(
        listing["runs"],
        jobs,
        data.phoenix_host,
        snapshot=flags["snapshot"] or "",
        at=flags["at"],
        allow_older=flags["allow_older"],
        now=datetime.fromisoformat(listing["now"]),
        allow_missing=flags["allow_missing"],
    )


def title(run: dict) -> str:
    """A run as restore.py's operations name it: id, time, and whether the vault has verified it yet."""
    return f"{run['run']} ({run['time'][:16]}, {'verified' if run.get('verified') else 'not verified yet'})"


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
    what = (
        f"{restored['rows']} rows in {restored['tables']} tables, {restored['bytes']:,} bytes"
        if "rows" in restored
        else f"{restored['files']} files, {restored['bytes']:,} bytes"
    )
    verdict = "matches its manifest" if restored["ok"] else "DOES NOT match its manifest"
    return (
        f"run {restored['run']} (snapshot {restored['snapshot'][:8]}, {duration(restored['age_seconds'])} old), {what},"
        f" {verdict}, {duration(restored['seconds'])}"
    )
