"""What restore.py says when a host is restored: each job's host-side report and the step durations.

`phoenix-backup restore-db/restore-files` leave one JSON report per job on the host
(RESTORE_REPORT_DIRECTORY); restore.py's last operation reads them back, prints a summary and,
with `--data restore_report=PATH`, writes them to the control machine as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from phoenix.commands import barman
from phoenix.restore_plan import Clock, describe
from phoenix.units import duration, step_durations

RESTORE_REPORT_DIRECTORY = "/var/lib/phoenix/restore"


def recovery_line(host_name: str, recovered: dict) -> str:
    """Given a host and what the archive's recovery reached (physical_restore.finish), returns the line saying so
    (and a second line when the vault's WAL stream does not follow the restored host)."""
    newest = recovered["newest_transaction"] or "none named by PostgreSQL (no transaction since the base backup)"
    return (
        f"  postgres: recovered from the vault's archive (base backup {recovered['backup']}) to {recovered['target']};"
        f" newest transaction restored: {newest}"
        + ("; the vault's Barman now pulls from this host's new address" if recovered.get("barman_repointed") else "")
        + (
            f"\n  !! the vault's Barman could not reset its WAL stream to this host ({recovered['stream_error']}):"
            f" it is not archived until `{barman('receive-wal', '--reset', host_name)}` succeeds on the vault;"
            " `phoenix status` shows the archive's lag"
            if recovered.get("stream_error")
            else ""
        )
    )


def summary(
    host_name: str,
    restored: dict[str, dict],
    steps: dict[str, float],
    recovered: dict | None = None,
    missing: dict[str, str] | None = None,
) -> str:
    """Given a host, each job's host-side report, the step durations, what the archive's recovery reached
    (None: no recovery from the archive) and the jobs not restored ({job: why}), returns the text printed for it."""
    lines = [recovery_line(host_name, recovered)] if recovered else []
    for job, report in restored.items():
        lines.append(f"  {job}: {describe(report)}")
        if report.get("previous_restore"):
            lines.append(f"  {job}: {report['previous_restore']}; this run finished it")
    for job, why in (missing or {}).items():
        reason = why.split(": ", 1)[-1]  # the line without its "host/job: "
        lines.append(f"  !! {job}: NOT restored ({reason}); what it backs up is left as the host has it")
    lines.append(f"  steps: {step_durations(steps)}")
    lines.append(f"  total: {duration(sum(steps.values()))}")
    return f"\n{host_name}: restored\n" + "\n".join(lines) + "\n"


def write_document(
    report_path: str,
    host_name: str,
    steps: dict,
    restored: dict,
    chosen: dict,
    recovered: dict | None = None,
    missing: dict | None = None,
) -> None:
    """Writes the host's restore as JSON to report_path ({host} in it replaced by the host's name)."""
    document = {
        "host": host_name,
        "steps": steps,
        "restored": restored,
        "chosen": chosen,
        "recovered": recovered,
        "missing": missing or {},
    }
    Path(report_path.replace("{host}", host_name)).write_text(json.dumps(document, indent=2))


def report(
    state,
    host,
    host_name: str,
    chosen: dict,
    report_path: str,
    clock: Clock,
    recovered: dict | None = None,
    missing: dict | None = None,
) -> None:
    """The report, as a pyinfra callback: prints what was restored, from the host's own reports, the jobs not
    restored and the step durations; also writes them to report_path when one is given."""
    restored = {}
    for job in chosen:
        _, output = host.run_shell_command(f"cat {RESTORE_REPORT_DIRECTORY}/{job}.json")
        restored[job] = json.loads(output.stdout)
    steps = clock.steps[host_name]
    archive = (recovered or {}).get(host_name)
    print(summary(host_name, restored, steps, archive, missing), file=sys.stderr, flush=True)
    if report_path:
        write_document(report_path, host_name, steps, restored, chosen, archive, missing)
