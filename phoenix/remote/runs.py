"""Backup runs: the data snapshot and the manifest snapshot one job run leaves in a repository.

A run's manifest is written only after its data snapshot succeeded, so a run without one (a
dump that failed half-way, a job killed mid-stream) is incomplete: it never counts as good.
Snapshots without a run= tag were not made by Phoenix and are left alone.

A `pin=` tag is only what the server asked for: the server wrote it into its own snapshot, so
it proves nothing. A run is pinned when the vault recorded the pin in its own state
(phoenix/remote/vault.py, `phoenix-vault pin`, asked by the control machine); the vault sets
`Run.pin` from that record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from phoenix.remote.common import parse_time
from phoenix.retention import Snapshot

PIN_PREFIX = "pin="
WATCH_TRIGGER = "changed"  # the trigger tag of a run the files watch started (phoenix-backup watch)


def tag_value(tags, name: str) -> str:
    prefix = f"{name}="
    return next((tag[len(prefix) :] for tag in tags if tag.startswith(prefix)), "")


def run_tags(host: str, job: dict, trigger: str, run_id: str, part: str, pin: str) -> list[str]:
    """Returns the tags of one snapshot of a run."""
    tags = [f"host={host}", f"job={job['name']}", f"kind={job['kind']}", f"trigger={trigger}", f"run={run_id}"]
    tags.append(f"part={part}")
    if pin:
        tags.append(PIN_PREFIX + pin.replace(",", ";").strip())
    return tags


@dataclass
class Run:
    """One job run in the repository."""

    id: str
    host: str
    job: str
    kind: str
    trigger: str
    time: datetime
    pin_tag: str  # what the snapshot's tags ask for: a request, never a pin by itself
    pin: str = ""  # the vault's recorded pin reason ("" when not pinned)
    data: dict | None = None
    manifest: dict | None = None

    @property
    def complete(self) -> bool:
        return self.data is not None and self.manifest is not None

    @property
    def snapshot_ids(self) -> list[str]:
        return [entry["id"] for entry in (self.data, self.manifest) if entry]

    @property
    def group(self) -> str:
        return f"{self.host}/{self.job}"

    def summary(self) -> dict:
        return {
            "run": self.id,
            "host": self.host,
            "job": self.job,
            "kind": self.kind,
            "trigger": self.trigger,
            "time": self.time.isoformat(),
            "pin": self.pin,
            "pin_tag": self.pin_tag,
            "complete": self.complete,
            "snapshots": self.snapshot_ids,
        }


def runs_from_listing(listing: list[dict]) -> list[Run]:
    """Given `restic snapshots --json`, returns the runs, oldest first."""
    runs: dict[str, Run] = {}
    for entry in listing or []:
        tags = entry.get("tags") or []
        run_id = tag_value(tags, "run")
        if not run_id:
            continue
        part = tag_value(tags, "part") or "data"
        run = runs.get(run_id)
        if run is None:
            run = runs[run_id] = Run(
                id=run_id,
                host=tag_value(tags, "host") or entry.get("hostname", ""),
                job=tag_value(tags, "job"),
                kind=tag_value(tags, "kind"),
                trigger=tag_value(tags, "trigger"),
                time=parse_time(entry["time"]),
                pin_tag=tag_value(tags, "pin"),
            )
        if part == "manifest":
            run.manifest = entry
        else:
            run.data = entry
            run.time = parse_time(entry["time"])
        run.pin_tag = run.pin_tag or tag_value(tags, "pin")
    return sorted(runs.values(), key=lambda run: run.time)


def as_retention_snapshots(runs: list[Run], verified: set[str]) -> list[Snapshot]:
    """Returns the runs as retention sees them: one Snapshot per run, verified only when complete,
    pinned only when the vault recorded the pin (a `pin=` tag alone pins nothing)."""
    return [
        Snapshot(
            id=run.id,
            time=run.time,
            group=run.group,
            tags=frozenset([f"{PIN_PREFIX}{run.pin}"] if run.pin else []),
            verified=run.complete and run.id in verified,
            watched=run.trigger == WATCH_TRIGGER,
        )
        for run in runs
    ]
