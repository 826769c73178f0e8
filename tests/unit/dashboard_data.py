"""Synthetic history for the dashboard's tests: the "shop" environment's vault report, drills and backups."""

from __future__ import annotations

from datetime import datetime, timedelta

from phoenix import backup_plan, drill_report
from phoenix.dashboard import Sources
from phoenix.inventory import Environment
from phoenix.status import Status, evaluate

NOW = datetime.fromisoformat("2026-11-20T14:00:00+00:00")


def run_entry(hours_ago: float, run: str) -> dict:
    return {"run": run, "time": (NOW - timedelta(hours=hours_ago)).isoformat(), "trigger": "scheduled"}


def vault_report(environment: Environment, stale_hours: float = 30.0) -> dict:
    """A `phoenix-vault status` answer: every job backed up an hour ago and verified, except db1's files,
    whose latest run is `stale_hours` old; web1's files carry a pin."""
    check = {"time": "2026-11-15T04:00:00+00:00", "ok": True, "problems": {}}
    clients = {}
    for name, host in environment.hosts.items():
        if not backup_plan.uses_vault(host):
            continue
        jobs = {}
        for job in backup_plan.jobs(host, backup_plan.databases_served(name, environment.hosts)):
            hours = stale_hours if (name, job["name"]) == ("db1", "files") else 1.0
            latest = run_entry(hours, f"{name}-{job['name']}-latest")
            jobs[job["name"]] = {
                "kind": job["kind"], "latest": latest, "latest_verified": latest, "latest_failed": None,
                "unverified_since": None, "pins": [], "incomplete": 0,
            }  # fmt: skip
        clients[name] = {"jobs": jobs, "last_check": check}
    clients["web1"]["jobs"]["files"]["pins"] = [{**run_entry(50, "web1-files-pinned"), "reason": "before <2.0> & co"}]
    return {"now": NOW.isoformat(), "clients": clients, "disk": {"free_bytes": 2 << 30, "total_bytes": 10 << 30}}


def drills(count: int, last_passed: bool) -> list[dict]:
    """`count` weekly drills ending a day before NOW, all passed but (maybe) the last, with checks."""
    found = []
    for index in range(count):
        passed = last_passed or index < count - 1
        started = NOW - timedelta(days=1 + 7 * (count - 1 - index))
        found.append(
            {
                "environment": "shop",
                "started": started.isoformat(timespec="seconds"),
                "hosts": ["web1", "db1"],
                "passed": passed,
                "steps": {"create hosts": 2.0, "prepare": 5.0, "provision": 40.0 + index, "verify": 3.0},
                "rto_seconds": 50.0 + index,
                "rpo_seconds": 3600.0 * (index + 1),
                "failed_checks": 0 if passed else 1,
                "checks": [
                    {"host": "web1", "name": "health answers 200 over HTTPS", "ok": True, "detail": "HTTP 200"},
                    {"host": "db1", "name": "db-links: row counts equal the manifest", "ok": passed, "detail": "<b>"},
                ],
                "report": f"drills/shop-{index}.json",
            }
        )
    return found


def backups(environment: Environment, runs_per_job: int = 4) -> list[dict]:
    """`phoenix-vault backups`: every job's runs, a day apart, growing."""
    found = []
    for name, host in environment.hosts.items():
        if not backup_plan.uses_vault(host):
            continue
        for number, job in enumerate(backup_plan.jobs(host, backup_plan.databases_served(name, environment.hosts))):
            for index in range(runs_per_job):
                time = NOW - timedelta(days=runs_per_job - index)
                found.append(
                    {
                        "client": name, "job": job["name"], "kind": job["kind"], "run": f"{name}-{index}",
                        "time": time.isoformat(), "bytes": (index + 1 + 3 * number + len(name)) << 20,
                        "seconds": 10.0 + index + 5 * number,
                    }
                )  # fmt: skip
    return sorted(found, key=lambda entry: entry["time"])


def sources(environment: Environment, drill_count: int = 6, last_passed: bool = False) -> Sources:
    """The dashboard's sources for `environment`: db1's files stale, the last drill failed (unless told)."""
    report = vault_report(environment)
    rows, vault_flags = evaluate(environment, report)
    history = drills(drill_count, last_passed)
    line, flags = drill_report.last_drill(environment, history, NOW)
    status = Status(report, rows, vault_flags, history, line, flags)
    return Sources(environment, status, history, backups(environment), None)
