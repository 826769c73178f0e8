"""A drill's report and the drills' history: <report_dir>/<env>-<time>.json and .md, a line per drill in
history.jsonl, the trend `phoenix drill --history` prints and the line `phoenix status` shows.

Reading them needs no container code: `phoenix status` uses this module, not phoenix/drill.py.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from phoenix.errors import PhoenixError
from phoenix.inventory import Environment
from phoenix.units import age, duration, minute, step_durations

HISTORY_FILE = "history.jsonl"


def report_dir(environment: Environment, given: str = "") -> Path:
    """Returns where drill reports go: --report-dir, else PHOENIX_DRILL_DIR, else the inventory's drill.report_dir."""
    return Path(given or os.environ.get("PHOENIX_DRILL_DIR") or environment.drill["report_dir"])


def render_markdown(report: dict) -> str:
    """Returns the drill report as Markdown (also what the drill prints)."""
    verdict = "PASSED" if report["passed"] else "FAILED"
    lines = [
        f"# Drill of {report['environment']}: {verdict}",
        "",
        f"- started: {report['started']}",
        f"- hosts: {', '.join(report['hosts'])}",
        f"- RTO: {duration(report['rto_seconds'])} ({step_durations(report['steps'])})",
        f"- RPO: {duration(report['rpo_seconds'])} (the most data lost: a dump's age at drill time; for the files,"
        " 0 when the source's had not changed since the restored run began, else its age; for a database recovered"
        " from the archive, how much later the source's newest commit at drill start was)",
        *archive_line(report.get("archive_not_drilled", [])),
        *unknown_rpo_lines(report["data"]),
        "",
        "## Restored",
        "",
        "| host | job | run | verified | snapshot | taken | lost | bytes | restore |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in report["data"]:
        if "archive" in entry:
            lines.append(
                f"| {entry['host']} | archive | {entry['run']} | - | - | {entry['snapshot_time'][:19]} |"
                f" {duration(entry['age_seconds'])} | - | - |"
            )
            continue
        lines.append(
            f"| {entry['host']} | {entry['job']} | {entry['run']} | {'yes' if entry.get('verified') else 'not yet'} |"
            f" {entry['snapshot'][:8]} |"
            f" {entry['snapshot_time'][:19]} | {duration(entry['age_seconds'])} | {entry['bytes']:,} |"
            f" {duration(entry['restore_seconds'])} |"
        )
    lines += ["", "## Checks", "", "| host | check | result | detail |", "|---|---|---|---|"]
    for check in report["checks"]:
        detail = check["detail"].replace("\n", " ").replace("|", "/")[:300]
        lines.append(f"| {check['host']} | {check['name']} | {'pass' if check['ok'] else 'FAIL'} | {detail} |")
    return "\n".join(lines) + "\n"


def archive_line(hosts: list[str]) -> list[str]:
    """The report's line naming the hosts whose continuous archive the drill did not restore (none: no line)."""
    if not hosts:
        return []
    return [
        f"- not drilled: the vault's continuous archive of {', '.join(hosts)} (--dumps, or no base backup there"
        " yet); this drill restored their nightly dumps, so their RPO is the dumps' age (docs/drills.md)"
    ]


def unknown_rpo_lines(data: list[dict]) -> list[str]:
    """The report's lines naming the archive recoveries whose RPO is unknown, and why."""
    return [
        f"- !! RPO of {entry['host']}'s archive unknown: {entry['archive']['unknown_because']}"
        for entry in data
        if "archive" in entry and entry["age_seconds"] is None
    ]


def write_report(directory: Path, report: dict, stamp: str) -> tuple[Path, Path]:
    """Writes the JSON and Markdown reports and appends the history line; returns the two paths."""
    directory.mkdir(parents=True, exist_ok=True)
    base = directory / f"{report['environment']}-{stamp}"
    json_path, markdown_path = base.with_suffix(".json"), base.with_suffix(".md")
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    markdown_path.write_text(render_markdown(report))
    with (directory / HISTORY_FILE).open("a") as history:
        history.write(json.dumps(history_line(report, json_path)) + "\n")
    return json_path, markdown_path


def history_line(report: dict, json_path: Path) -> dict:
    """Given a drill's report and where its JSON went, returns its history record (the local history's line,
    and what the vault's shared history keeps): result, RTO and steps, RPO, hosts and every check."""
    return {
        "environment": report["environment"],
        "started": report["started"],
        "passed": report["passed"],
        "rto_seconds": report["rto_seconds"],
        "rpo_seconds": report["rpo_seconds"],
        "steps": report["steps"],
        "failed_checks": sum(1 for check in report["checks"] if not check["ok"]),
        "report": str(json_path),
        "hosts": report["hosts"],
        "checks": report["checks"],
    }


def merged(shared: list[dict], local: list[dict]) -> list[dict]:
    """Given the vault's drill history and this machine's, returns every drill once (the vault's record
    when both have it), oldest first: a drill run here while the vault was unreachable still counts."""
    by_start = {entry["started"]: entry for entry in local}
    by_start.update({entry["started"]: entry for entry in shared})
    return sorted(by_start.values(), key=lambda entry: datetime.fromisoformat(entry["started"]))


def history(directory: Path, environment: str | None = None) -> list[dict]:
    """Returns the drills recorded in `directory`, oldest first (of one environment when given)."""
    path = directory / HISTORY_FILE
    if not path.exists():
        return []
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise PhoenixError(f"{path}:{number}: not a JSON line: {error.msg}") from error
        if environment is None or entry.get("environment") == environment:
            entries.append(entry)
    return entries


def render_history(entries: list[dict]) -> str:
    """Returns the trend table `phoenix drill --history` prints."""
    if not entries:
        return "no drill recorded yet: run `phoenix drill inventories/<env>.py`"
    lines = [f"{'STARTED':20} {'ENV':10} {'RESULT':7} {'RTO':>8} {'RPO':>8}  STEPS"]
    for entry in entries:
        steps = step_durations(entry["steps"])
        result = "passed" if entry["passed"] else f"FAILED ({entry['failed_checks']})"
        lines.append(
            f"{entry['started'][:19]:20} {entry['environment']:10} {result:7} {duration(entry['rto_seconds']):>8}"
            f" {duration(entry['rpo_seconds']):>8}  {steps}"
        )
    rtos = [entry["rto_seconds"] for entry in entries if entry["passed"]]
    if len(rtos) > 1:
        best, worst, last = (duration(seconds) for seconds in (min(rtos), max(rtos), rtos[-1]))
        lines.append(f"RTO of passed drills: best {best}, worst {worst}, last {last}")
    return "\n".join(lines)


def last_drill(environment: Environment, entries: list[dict], now: datetime) -> tuple[str, list[str]]:
    """Given the environment's drills (oldest first) and the clock, returns (a line on the last drill, flags):
    it failed, it is older than drill.max_age_days, or there is none."""
    limit = environment.drill["max_age_days"]
    if not entries:
        return "last drill: never", [f"no drill recorded (run `phoenix drill {environment.path.with_suffix('.py')}`)"]
    last = entries[-1]
    age_days = (now - datetime.fromisoformat(last["started"])).total_seconds() / 86400
    result = "passed" if last["passed"] else "FAILED"
    line = (
        f"last drill: {minute(last['started'])} ({age(last['started'], now)} ago) {result},"
        f" RTO {duration(last['rto_seconds'])}, RPO {duration(last['rpo_seconds'])}"
    )
    flags = []
    if not last["passed"]:
        flags.append(f"the last drill FAILED ({last['report']})")
    if age_days > limit:
        flags.append(f"the last drill is older than {limit} days")
    return line, flags
