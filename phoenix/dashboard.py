"""`phoenix report inventories/<env>.py [--output FILE]`: the recovery dashboard, one self-contained HTML page.

Built from what `phoenix status` gathers (phoenix/status.py: the vault's report, the rows and flags,
the drill history), plus each job's backup sizes and store times (`phoenix-vault backups`). Per host
and job the latest and latest verified backup with their ages against the host's max_age_hours
(a stale one shows as STALE), the pins with their reasons, the last drill with every check (a failed
one shows as FAIL), and plots of the drill history and of the backups (phoenix/plots.py: inline SVG).
The page has no script and loads nothing: it opens from a file, offline, and prints.
`phoenix drill` writes the same page for each drill, next to its JSON and Markdown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment as Templates
from jinja2 import FileSystemLoader, StrictUndefined
from markupsafe import Markup

from phoenix import archive_status, drill_report
from phoenix.errors import PhoenixError
from phoenix.inventory import Environment
from phoenix.status import Row, Status, vault_lines, when
from phoenix.units import age, duration, minute, step_durations

TEMPLATE = "dashboard.html.j2"


@dataclass
class Sources:
    """Everything the page shows: the status (None when the vault could not be asked, with `problem`
    saying why), the drill history, the backups' sizes and times (None when unknown), the drill to show."""

    environment: Environment
    status: Status | None
    drills: list[dict]
    backups: list[dict] | None
    drill: dict | None
    problem: str = ""


def row_state(row: Row, limit_hours: float) -> tuple[str, str]:
    """Given a status row and its host's max_age_hours, returns (css state, what the badge says):
    missing, stale (older than the limit), problem (another flag), or ok."""
    if row.latest is None:
        return "missing", "MISSING"
    if row.age_hours is not None and row.age_hours > limit_hours:
        return "stale", f"STALE: {duration(row.age_hours * 3600)} old, limit {limit_hours:g}h"
    if row.flags:
        return "problem", "PROBLEM"
    return "ok", f"fresh: {duration(row.age_hours * 3600)} old, limit {limit_hours:g}h"


def backup_rows(environment: Environment, status: Status) -> list[dict]:
    """Given the gathered status, returns a table row per host and job, as the page shows it."""
    rows = []
    for row in status.rows:
        state, text = row_state(row, environment.hosts[row.host]["backup"]["max_age_hours"])
        notes = list(row.flags)
        if row.incomplete:
            notes.append(f"{row.incomplete} incomplete run(s), never counted as good")
        rows.append(
            {
                "host": row.host,
                "job": row.job,
                "state": state,
                "state_text": text,
                "latest": when(row.latest, status.now),
                "latest_verified": when(row.latest_verified, status.now),
                "gap": "-" if row.unverified_hours is None else duration(row.unverified_hours * 3600),
                "notes": notes,
            }
        )
    return rows


def pin_rows(status: Status) -> list[dict]:
    return [
        {"host": row.host, "job": row.job, "run": pin["run"], "taken": when(pin, status.now), "reason": pin["reason"]}
        for row in status.rows
        for pin in row.pins
    ]


def archived_vault_lines(status: Status) -> list[str]:
    """Returns status's vault lines (repository checks, disk) and a line per archived host (WAL lag)."""
    return vault_lines(status.report) + [archive_status.line(entry) for entry in status.archive]


def drill_checks(drill: dict) -> list[dict] | None:
    """Returns the drill's checks: from the record itself, else from its JSON report when that file is
    on this machine; None when neither has them."""
    if "checks" in drill:
        return drill["checks"]
    path = Path(drill.get("report", ""))
    if drill.get("report") and path.is_file():
        return json.loads(path.read_text()).get("checks")
    return None


def drill_view(drill: dict, now: datetime) -> dict:
    """Given a drill (history record or full report) and the clock, returns what the page shows of it."""
    checks = drill_checks(drill)
    return {
        "passed": drill["passed"],
        "started": minute(drill["started"]),
        "age": age(drill["started"], now),
        "hosts": ", ".join(drill.get("hosts", [])) or "every data host",
        "rto": duration(drill["rto_seconds"]),
        "steps": step_durations(drill["steps"]),
        "rpo": duration(drill["rpo_seconds"]),
        "checks": checks or [],
        "checks_missing": f"its checks are in {drill.get('report', 'a report not on this machine')}",
    }


def page(sources: Sources, generated: datetime, command: str) -> dict:
    """Given what was gathered, returns the page's content: every value a string, list or plot, ready to render."""
    from phoenix import plots

    environment, status = sources.environment, sources.status
    now = status.now if status else generated
    drill = sources.drill or (sources.drills[-1] if sources.drills else None)
    flags = status.flags if status else [sources.problem]
    if not status and drill:
        flags += drill_report.last_drill(environment, sources.drills, now)[1]
    return {
        "title": f"Phoenix: {environment.name}" + (f", drill of {drill['started'][:16]}" if sources.drill else ""),
        "generated": generated.isoformat(timespec="seconds"),
        "command": command,
        "vault_now": status.report["now"][:19] if status else "",
        "flags": flags,
        "backups": backup_rows(environment, status) if status else [],
        "backups_error": "" if status else f"backup status not gathered: {sources.problem}",
        "vault_lines": archived_vault_lines(status) if status else [],
        "pins": pin_rows(status) if status else [],
        "pins_none": "no pinned backups" if status else "pins not gathered (the vault was not asked)",
        "drill_heading": "This drill" if sources.drill else "Last drill",
        "drill": drill_view(drill, now) if drill else None,
        "drill_none": f"no drill recorded: run `phoenix drill {environment.path.with_suffix('.py')}`",
        "drill_count": len(sources.drills),
        "drill_plot": Markup(plots.drill_history_svg(sources.drills)) if sources.drills else "",
        "backup_plot": Markup(plots.backups_svg(sources.backups)) if sources.backups else "",
        "backup_plot_none": "no backup sizes known"
        if sources.backups is not None
        else "backup sizes not gathered here: `phoenix report` shows them",
    }


def render_html(content: dict) -> str:
    """Given page(...)'s content, returns the HTML page (every value escaped, the plots' SVG as it is)."""
    templates = Templates(
        loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True, undefined=StrictUndefined
    )
    return templates.get_template(TEMPLATE).render(page=content)


def write_page(path: Path, sources: Sources, command: str) -> Path:
    """Renders the page of `sources` into `path` (its directory made when missing); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(page(sources, datetime.now(UTC), command)))
    return path


def default_output(environment: Environment, given_report_dir: str = "") -> Path:
    """Returns where `phoenix report` writes without --output: <report_dir>/<env>-dashboard.html."""
    return drill_report.report_dir(environment, given_report_dir) / f"{environment.name}-dashboard.html"


def gather_sources(
    environment: Environment, drill: dict | None = None, given_report_dir: str = "", with_backups: bool = True
) -> Sources:
    """Gathers the status and (`with_backups`) the backups' sizes and times from the vault; when the vault
    cannot be asked, returns the local drill history alone with the problem named (a page is still written)."""
    from phoenix.status import gather
    from phoenix.vault_client import backup_history

    try:
        status = gather(environment, given_report_dir)
    except PhoenixError as error:
        drills = drill_report.history(drill_report.report_dir(environment, given_report_dir), environment.name)
        return Sources(environment, None, drills, None, drill, problem=str(error))
    backups = None
    try:
        backups = backup_history(environment) if with_backups else None
    except PhoenixError:
        pass  # a vault deployed before `phoenix-vault backups`: the rest of the page stands
    return Sources(environment, status, status.drills, backups, drill)


def write_drill_page(environment: Environment, report: dict, path: Path, given_report_dir: str = "") -> Path:
    """Writes the page of one drill (`phoenix drill`, next to its JSON): this drill, the history, the status.
    The backups' sizes and times are left to `phoenix report`: reading every run's manifest would add
    minutes to a drill on a vault that has not read them yet."""
    sources = gather_sources(environment, drill=report, given_report_dir=given_report_dir, with_backups=False)
    return write_page(path, sources, f"phoenix drill {environment.path.with_suffix('.py')}")


def run(inventory: str, output: str = "") -> int:
    """`phoenix report`: writes the page; exit status 1 when it shows a problem (as `phoenix status`)."""
    from phoenix.inventory import load_environment

    environment = load_environment(inventory)
    sources = gather_sources(environment)
    path = write_page(Path(output) if output else default_output(environment), sources, f"phoenix report {inventory}")
    problems = sources.status.flags if sources.status else [sources.problem]
    print(f"{path}: {len(problems)} problem(s)" + "".join(f"\n!! {problem}" for problem in problems))
    return 1 if (sources.status is None or sources.status.failing) else 0
