"""`phoenix status inventories/<env>.py`: are the backups happening, and are they good?

Asks the vault (phoenix-vault status, over the inventory's own connection) for every job's
latest complete and latest verified run, pins and the last integrity check, then flags what is
older than the host's backup.max_age_hours, missing, or failed. Each backed-up host is asked too:
a job whose newest run failed there is flagged at once (phoenix/host_backup_status.py). The GAP
column is how long the runs newer than the latest verified one have waited for the vault's
verify ("-": none waits); longer than the vault's verify_alert_hours is flagged, and so is a run
the vault found bad.
Exit status 1 when anything is flagged, so a cron job or monitoring can run it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from phoenix import archive_status, backup_plan, drill_report, host_backup_status
from phoenix.errors import PhoenixError
from phoenix.inventory import Environment
from phoenix.units import age, duration, human_bytes, minute
from phoenix.vault_client import remote_command, vault_drills, vault_report


@dataclass
class Row:
    host: str
    job: str
    latest: dict | None
    latest_verified: dict | None
    pins: list[dict]
    incomplete: int
    age_hours: float | None
    flags: list[str] = field(default_factory=list)
    unverified_hours: float | None = None  # how long the runs newer than latest_verified have waited


def _age_hours(entry: dict | None, now: datetime) -> float | None:
    if not entry:
        return None
    return (now - datetime.fromisoformat(entry["time"])).total_seconds() / 3600


def evaluate(environment: Environment, report: dict) -> tuple[list[Row], list[str]]:
    """Given the vault's report, returns a row per backed-up host and job, and the vault-wide flags."""
    now = datetime.fromisoformat(report["now"])
    rows, vault_flags = [], []
    vault_name = backup_plan.vault_host(environment.hosts)
    alert_hours = environment.hosts[vault_name]["vault"]["verify_alert_hours"] if vault_name else None
    for name, host in environment.hosts.items():
        if not backup_plan.uses_vault(host):
            continue
        client = report["clients"].get(name, {"error": "the vault has no repository for this host"})
        expected = [
            job["name"] for job in backup_plan.jobs(host, backup_plan.databases_served(name, environment.hosts))
        ]
        if "error" in client:
            rows += [Row(name, job, None, None, [], 0, None, [client["error"]]) for job in expected]
            continue
        check = client.get("last_check")
        if check is None:
            vault_flags.append(f"{name}: the repository was never checked")
        elif not check["ok"] or check.get("problems"):
            vault_flags.append(f"{name}: the last check ({check['time']}) FAILED")
        vault_flags += [quarantine_flag(name, entry) for entry in client.get("quarantined", [])]
        for job in expected:
            found = client["jobs"].get(job, {})
            row = Row(
                name, job, found.get("latest"), found.get("latest_verified"), found.get("pins", []),
                found.get("incomplete", 0), _age_hours(found.get("latest"), now),
            )  # fmt: skip
            limit = host["backup"]["max_age_hours"]
            if row.latest is None:
                row.flags.append("no complete backup")
            elif row.age_hours > limit:
                row.flags.append(f"older than {limit:g}h")
            if found.get("unverified_since"):
                row.unverified_hours = _age_hours({"time": found["unverified_since"]}, now)
                if alert_hours is not None and row.unverified_hours > alert_hours:
                    row.flags.append(
                        f"not verified for {duration(row.unverified_hours * 3600)}"
                        f" (vault.verify_alert_hours: {alert_hours:g}): is the vault's verify timer running?"
                    )
            failed = found.get("latest_failed")
            if failed:
                when = minute(failed["time"])
                row.flags.append(f"run {failed['run']} ({when}) failed the vault's check: {failed['problem']}")
            rows.append(row)
    return rows, vault_flags


def quarantine_flag(client: str, entry: dict) -> str:
    """Returns the flag for one object the vault's check moved out of a client's repository."""
    return (
        f"{client}: QUARANTINED {entry['object']} at {minute(entry['time'])}: the check could"
        f" not read it ({entry['problem']}); the rest was checked. It is kept on the vault as {entry['path']}:"
        " delete it there once reviewed"
    )


def ignored_pin_lines(report: dict) -> list[str]:
    """Returns a line per run whose pin= tag the server wrote itself: a request the vault did not record."""
    return [
        f"{client}/{run['job']} run {run['run']}: pin tag '{run['tag']}' written by the server itself is ignored"
        " (not a pin: pins are made from the control machine, `phoenix pin`)"
        for client, entry in sorted(report["clients"].items())
        for run in entry.get("ignored_pin_tags", [])
    ]


def when(entry: dict | None, now: datetime) -> str:
    """Given a run (or pin) and the clock, returns "2026-11-30 10:59 (12m ago)", or "none"."""
    if not entry:
        return "none"
    return f"{minute(entry['time'])} ({age(entry['time'], now)} ago)"


def render(rows: list[Row], vault_flags: list[str], report: dict) -> str:
    """Returns the human-readable status table."""
    now = datetime.fromisoformat(report["now"])
    lines = [f"{'HOST':8} {'JOB':14} {'LATEST':28} {'LATEST VERIFIED':28} {'GAP':6} PINS / FLAGS"]
    for row in rows:
        pins = [f"pin '{pin['reason']}' {minute(pin['time'])}" for pin in row.pins]
        notes = pins + [f"!! {flag}" for flag in row.flags]
        if row.incomplete:
            notes.append(f"{row.incomplete} incomplete run(s), never counted as good")
        gap = "-" if row.unverified_hours is None else duration(row.unverified_hours * 3600)
        lines.append(
            f"{row.host:8} {row.job:14} {when(row.latest, now):28} {when(row.latest_verified, now):28} {gap:6}"
            f" {'; '.join(notes)}"
        )
    lines += vault_lines(report)
    lines += ignored_pin_lines(report)
    lines += [f"!! {flag}" for flag in vault_flags]
    return "\n".join(lines)


def vault_lines(report: dict) -> list[str]:
    """Given the vault's report, returns a line per repository check and one on the vault's free disk space."""
    lines = []
    for client, entry in sorted(report["clients"].items()):
        check = entry.get("last_check")
        if check:
            result = "passed" if check["ok"] and not check.get("problems") else "FAILED"
            lines.append(f"check of {client}'s repository: {result} at {minute(check['time'])}")
    disk = report.get("disk")
    if disk:
        lines.append(f"vault disk: {human_bytes(disk['free_bytes'])} free of {human_bytes(disk['total_bytes'])}")
    return lines


@dataclass
class Status:
    """What `phoenix status` and `phoenix report` show, gathered once: the vault's report, a row per host
    and job, the vault-wide flags, and the environment's drills (oldest first) with the line and flags on
    the last one, and the WAL archive's entry per archived host with its flags."""

    report: dict
    rows: list[Row]
    vault_flags: list[str]
    drills: list[dict]
    drill_line: str
    drill_flags: list[str]
    archive: list[dict] = field(default_factory=list)  # archive_status.report's entry per archived host
    archive_flags: list[str] = field(default_factory=list)  # "archive of db1: ..." one line each
    hosts: dict[str, dict] = field(default_factory=dict)  # host_backup_status.ask's answer per backed-up host
    host_flags: list[str] = field(default_factory=list)  # "web1/files: its newest run FAILED ..." one line each

    @property
    def now(self) -> datetime:
        return datetime.fromisoformat(self.report["now"])

    @property
    def flags(self) -> list[str]:
        """Every flag, one line each: the vault's, each job's ("web1/files: ..."), the hosts' own ("web1/files:
        its newest run FAILED ..."), the drill's ("drill: ..."), the archive's ("archive of db1: ...")."""
        flags = self.vault_flags + [f"{row.host}/{row.job}: {flag}" for row in self.rows for flag in row.flags]
        return flags + self.host_flags + [f"drill: {flag}" for flag in self.drill_flags] + self.archive_flags

    @property
    def failing(self) -> bool:
        """True when `phoenix status` exits 1: a job flagged, a check failed, an object quarantined, a host's newest
        run failed or the host could not be asked, a drill flag, an archive flag."""
        failing = ("FAILED", "QUARANTINED")
        vault_failing = any(word in flag for flag in self.vault_flags for word in failing)
        flagged = any(row.flags for row in self.rows) or vault_failing or bool(self.drill_flags)
        return flagged or bool(self.host_flags) or bool(self.archive_flags)


def gather(environment: Environment, given_report_dir: str = "") -> Status:
    """Given an environment, asks its vault for the backups' status and the shared drill history, merged
    with this machine's (drills/history.jsonl, the cache); returns the Status. Raises PhoenixError when
    the vault cannot be asked or the local history is damaged. Asks the vault's Barman about every archived
    host too (one remote command each), and every backed-up host for its own newest results (one each)."""
    report = vault_report(environment)
    rows, vault_flags = evaluate(environment, report)
    now = datetime.fromisoformat(report["now"])
    local = drill_report.history(drill_report.report_dir(environment, given_report_dir), environment.name)
    try:
        drills = drill_report.merged(vault_drills(environment), local)
    except PhoenixError as error:  # a vault deployed before the shared history: this machine's drills only
        drills = local
        vault_flags.append(f"the vault's drill history could not be read ({error}); showing this machine's only")
    drill_line, drill_flags = drill_report.last_drill(environment, drills, now)
    archive = archive_report(environment)
    vault_name = backup_plan.vault_host(environment.hosts)
    max_lag = environment.hosts[vault_name]["vault"]["pitr"]["max_lag_minutes"] if vault_name else 5
    archive_flags = [
        f"archive of {entry['server']}: {flag}" for entry in archive for flag in archive_status.flags(entry, max_lag)
    ]
    hosts = host_report(environment)
    return Status(
        report, rows, vault_flags, drills, drill_line, drill_flags, archive, archive_flags,
        hosts, host_backup_status.flags(hosts),
    )  # fmt: skip


def archive_report(environment: Environment) -> list[dict]:
    """Asks the environment's vault about every archived host's WAL archive (archive_status.report)."""
    return archive_status.report(environment, remote_command)


def host_report(environment: Environment) -> dict[str, dict]:
    """Asks every backed-up host of the environment for its jobs' newest results (host_backup_status.ask)."""
    return host_backup_status.ask(environment, remote_command)


def run(inventory: str, as_json: bool) -> int:
    from phoenix.inventory import load_environment

    status = gather(load_environment(inventory))
    if as_json:
        document = {"report": status.report, "drill": status.drill_line, "archive": status.archive}
        print(json.dumps(document | {"hosts": status.hosts, "flags": status.flags}))
    else:
        print(render(status.rows, status.vault_flags, status.report))
        if status.host_flags:
            print("\n".join(f"!! {flag}" for flag in status.host_flags))
        lines = [archive_status.line(entry) for entry in status.archive]
        if lines or status.archive_flags:
            print("\n".join(lines + [f"!! {flag}" for flag in status.archive_flags]))
        print(status.drill_line + "".join(f"\n!! {flag}" for flag in status.drill_flags))
    return 1 if status.failing else 0
