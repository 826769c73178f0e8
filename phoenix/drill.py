"""`phoenix drill inventories/<env>.py`: prove the backups restore, and measure how fast.

1. create hosts: a throwaway sandbox (drill-<env>-<checkout>) with a container per data host;
2. restore: restore.py against them, with the environment's real vault and each host's own
   login (read and add, never delete), as restore.py restores after a disaster: an archived
   PostgreSQL from the vault's Barman archive to its newest point (piped into the stand-in; the
   vault's Barman keeps following the source), the dumps and files from each job's newest
   complete run (verified by the vault or not yet; the report says which); `--dumps` restores
   the nightly dumps of archived hosts instead, to prove that second line;
3. verify: the drill checks (phoenix/drill_checks.py) on every restored host.

RTO is the sum of the three, each timed. RPO is the most data lost: for a dump or files job, its
run's age at drill time; for an archived database, how much later the source's newest commit at
the drill's start was than the restored copy's newest transaction (phoenix/archive_rpo.py).

The report goes to <report_dir>/<env>-<time>.json, .md and .html (the dashboard's page of this
drill, phoenix/dashboard.py), a line to history.jsonl and the same record to the vault's shared
drill history (`phoenix-vault drill-record`); the inventory's drill.ping_url hears /start, success
or /fail. The hosts are removed unless --keep. Exit status 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from phoenix import archive_plan, archive_rpo, files_rpo, sandbox, sandbox_state, stand_in
from phoenix.dashboard import write_drill_page
from phoenix.drill_report import HISTORY_FILE, history_line, render_markdown, report_dir, write_report
from phoenix.errors import PhoenixError
from phoenix.inventory import Environment
from phoenix.progress import say
from phoenix.remote.backup_host import ping  # the backup jobs' healthchecks.io-style ping
from phoenix.vault_client import record_drill, remote_command


def sandbox_name(environment: Environment) -> str:
    """Returns the sandbox of this checkout's drills of the environment: drill-<env>-<checkout>."""
    return drill_sandbox_name(environment.name, sandbox_state.state_root())


def drill_sandbox_name(environment_name: str, state_dir: Path) -> str:
    """Given an environment's name and a checkout's state directory, returns drill-<env>-<6 hex digits of the
    directory>: Docker's container names are machine-wide, so two checkouts (or two operators) on one
    machine drill side by side; within one checkout the drill lock makes the second drill refuse."""
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:6]
    return f"drill-{environment_name}-{digest}"


@contextlib.contextmanager
def exclusive(environment: Environment) -> Iterator[None]:
    """Holds the environment's drill lock for the duration; raises PhoenixError at once when another drill holds it.

    Drills of one environment from one checkout share its sandbox drill-<env>-<checkout>: a second one
    would remove the first one's hosts.
    The lock is an flock, so a killed drill leaves none behind.
    """
    directory = sandbox_state.state_root() / "locks"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{sandbox_name(environment)}.lock"
    with open(path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise PhoenixError(
                f"a drill of {environment.name} is already running ({holder}); drills of one environment from this"
                f" checkout share the sandbox {sandbox_name(environment)}, so this one stopped before touching it."
                " Run it again when the other has finished."
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}, started {datetime.now(UTC).isoformat(timespec='seconds')}\n")
        lock.flush()
        try:
            yield
        finally:
            lock.seek(0)
            lock.truncate()
            fcntl.flock(lock, fcntl.LOCK_UN)


def run(inventory: str, host: str = "", keep: bool = False, given_report_dir: str = "", dumps: bool = False) -> int:
    """Runs a drill of the environment in `inventory` (`dumps`: archived hosts from their dumps); returns the exit
    status."""
    source = stand_in.load(inventory)
    names = stand_in.data_hosts(source, host)
    with exclusive(source):
        return _run_locked(source, names, keep, given_report_dir, dumps)


def _run_locked(source: Environment, names: list[str], keep: bool, given_report_dir: str, dumps: bool) -> int:
    directory = report_dir(source, given_report_dir)
    directory.mkdir(parents=True, exist_ok=True)
    started_at = datetime.now(UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    report = {"environment": source.name, "started": started_at.isoformat(timespec="seconds"), "hosts": names}
    report["from"] = "dumps" if dumps else "archive"
    archived = archived_in(source, names)
    if not dumps and archived:
        say(f"asking {', '.join(archived)} for their newest commit (the RPO's reference)")
        report["source_newest_commits"] = archive_rpo.source_newest_commits(source, archived, remote_command)
    watched = files_rpo.watched_hosts(source.hosts, names)
    if watched:
        say(f"asking {', '.join(watched)} whether their files changed since their last files run (the RPO's reference)")
        report["source_file_states"] = files_rpo.source_file_states(source, watched, remote_command)
    ping(source.drill["ping_url"], "start")
    try:
        _drill(source, names, directory / f"{source.name}-{stamp}", keep, report)
    except (PhoenixError, KeyboardInterrupt) as error:
        ping(source.drill["ping_url"], "failure", f"the drill did not finish: {error}")
        raise
    report["passed"] = bool(report["checks"]) and all(check["ok"] for check in report["checks"])
    paths = write_report(directory, report, stamp)
    failed = [f"{c['host']}: {c['name']} ({c['detail']})" for c in report["checks"] if not c["ok"]]
    ping(source.drill["ping_url"], "success" if report["passed"] else "failure", "\n".join(failed))
    print(render_markdown(report))
    try:
        record_drill(source, history_line(report, paths[0]))
    except PhoenixError as error:
        say(f"!! the drill's record did not reach the vault ({error}); it is in {directory / HISTORY_FILE} only")
    page = write_drill_page(source, report, paths[0].with_suffix(".html"), given_report_dir)
    say(f"report: {paths[0]}, {paths[1]} and {page}")
    return 0 if report["passed"] else 1


def _drill(source: Environment, names: list[str], base: Path, keep: bool, report: dict) -> None:
    """Creates the hosts, restores, verifies; fills `report` with steps, restores and checks."""
    drill_sandbox = sandbox_name(source)
    say(f"drill of {source.name}: restoring {', '.join(names)} into sandbox {drill_sandbox}")
    steps: dict[str, float] = {}
    report.update(steps=steps, checks=[], restore={"hosts": {}})
    try:
        clock = time.monotonic()
        sandbox.down(drill_sandbox)  # what an interrupted drill left
        state = sandbox.up(drill_sandbox, names)
        stand_in.attach_to_source_network(source, drill_sandbox, names)
        steps["create hosts"] = round(time.monotonic() - clock, 1)

        clock = time.monotonic()
        arguments = stand_in.inventory_arguments(source, source.path, drill_sandbox, names, report["from"] == "archive")
        restore_reports = Path(f"{base}-restore-{{host}}.json")
        command = stand_in.pyinfra_command(
            stand_in.write_inventory(arguments), "restore.py", {"restore_report": str(restore_reports)}
        )
        log_path = base.with_suffix(".log")
        code = stand_in.run_pyinfra(command, stand_in.sandbox_variable(source), log_path, "restore.py")
        report["restore"] = {"exit": code, "log": str(log_path), "hosts": _read_restore_reports(restore_reports, names)}
        steps.update(restore_steps(time.monotonic() - clock, report["restore"]["hosts"]))
        if code != 0:
            report["checks"] = [{"host": "-", "name": "restore.py succeeds", "ok": False, "detail": _tail(log_path)}]
            return
        clock = time.monotonic()
        say("verifying the restored hosts")
        targets = _targets(arguments, state, report["restore"]["hosts"])
        from phoenix.drill_checks import run_checks

        report["checks"] = [check.as_dict() for check in run_checks(targets)]
        steps["verify"] = round(time.monotonic() - clock, 1)
    finally:
        if keep:
            _print_access(drill_sandbox, names)
        else:
            say(f"removing the drill's hosts (sandbox {drill_sandbox})")
            sandbox.down(drill_sandbox)
        report["rto_seconds"] = round(sum(steps.values()), 1)
        restored = report["restore"]["hosts"]
        started = datetime.fromisoformat(report["started"])
        report["data"] = _restored_data(restored, started, report.get("source_file_states", {}))
        report["data"] += _recovered_data(restored, report.get("source_newest_commits", {}))
        # an archived host whose stand-in restored its dump: --dumps, or no base backup in the archive yet
        report["archive_not_drilled"] = [
            name for name in archived_in(source, names) if not restored.get(name, {}).get("recovered")
        ]
        ages = [entry["age_seconds"] for entry in report["data"] if entry["age_seconds"] is not None]
        report["rpo_seconds"] = max(ages) if ages else None


def restore_steps(wall_seconds: float, hosts: dict[str, dict]) -> dict[str, float]:
    """Splits restore.py's wall time into its steps, each the slowest host's (the hosts run in step).

    What the hosts' clocks do not cover (pyinfra connecting, asking the vault, gathering facts) is
    "prepare"; without host reports (restore.py failed) the whole time is "restore.py".
    """
    per_step: dict[str, float] = {}
    for host in hosts.values():
        for step, seconds in host.get("steps", {}).items():
            per_step[step] = max(per_step.get(step, 0.0), seconds)
    if not per_step:
        return {"restore.py": round(wall_seconds, 1)}
    prepare = max(wall_seconds - sum(per_step.values()), 0.0)
    return {"prepare": round(prepare, 1), **{step: round(seconds, 1) for step, seconds in per_step.items()}}


def _targets(arguments: dict, state: dict, restored: dict[str, dict]) -> dict:
    from phoenix.drill_checks import Target  # testinfra: loaded only when a drill verifies

    targets = {}
    for _, data in stand_in.stand_in_hosts(**arguments):
        name = data["phoenix_host"]
        info = state["hosts"][name]
        jobs = restored.get(name, {}).get("restored", {})
        recovered = restored.get(name, {}).get("recovered")
        targets[name] = Target(name, data, info["container"], info["address"], jobs, recovered)
    return targets


def _read_restore_reports(pattern: Path, names: list[str]) -> dict[str, dict]:
    reports = {}
    for name in names:
        path = Path(str(pattern).replace("{host}", name))
        if path.exists():
            reports[name] = json.loads(path.read_text())
            path.unlink()
    return reports


def _restored_data(hosts: dict[str, dict], at: datetime, file_states: dict[str, dict]) -> list[dict]:
    """Returns, per restored job, its run, snapshot, the data it lost at drill time (a dump's age; for the files,
    0 when the source's files had not changed since the run, files_rpo) and whether the vault had verified the
    run when restore.py chose it."""
    entries = []
    for name, host in sorted(hosts.items()):
        for job, restored in sorted(host.get("restored", {}).items()):
            taken = datetime.fromisoformat(restored["snapshot_time"])
            age = round((at - taken).total_seconds())
            lost, why = files_rpo.real_age(restored["run"], age, file_states.get(name)) if job == "files" else (age, "")
            entries.append(
                {
                    "host": name,
                    "job": job,
                    "run": restored["run"],
                    "snapshot": restored["snapshot"],
                    "snapshot_time": restored["snapshot_time"],
                    "run_age_seconds": age,
                    "age_seconds": lost,
                    "age_because": why,
                    "bytes": restored.get("bytes", 0),
                    "restore_seconds": restored.get("seconds"),
                    "verified": bool(host.get("chosen", {}).get(job, {}).get("verified")),
                }
            )
    return entries


def archived_in(source: Environment, names: list[str]) -> list[str]:
    """The hosts of `names` whose PostgreSQL the source's vault archives."""
    return [name for name in archive_plan.archived_hosts(source.hosts) if name in names]


def _recovered_data(hosts: dict[str, dict], newest_commits: dict[str, dict]) -> list[dict]:
    """Returns, per host recovered from the archive, its data entry with the real RPO (archive_rpo)."""
    return [
        archive_rpo.archive_entry(name, host["recovered"], newest_commits.get(name, {}))
        for name, host in sorted(hosts.items())
        if host.get("recovered")
    ]


def _tail(log_path: Path, lines: int = 15) -> str:
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:]) if log_path.exists() else ""


def _print_access(drill_sandbox: str, names: list[str]) -> None:
    say(f"--keep: the drill's hosts stay up; remove them with `phoenix sandbox down {drill_sandbox}`")
    for name in names:
        say(f"  {name}: docker exec -it {sandbox_state.container_name(drill_sandbox, name)} bash")
