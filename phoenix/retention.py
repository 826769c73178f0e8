"""Which snapshots retention keeps: a pure function over (snapshots, policy, now).

restic's own `forget --keep-daily 7` keeps the newest snapshot of each day, so a pre-upgrade
snapshot taken at 10:00 is forgotten once the 23:00 nightly exists (the second incident in
notes/backups.md). Phoenix decides itself, then forgets by explicit snapshot id:
- a pinned snapshot is always kept, whatever the policy;
- only verified snapshots (their integrity check passed) count toward the policy's buckets,
  so a month of failed nights cannot push the last good snapshots out;
- the newest `minimum_verified` verified snapshots are always kept;
- an unverified snapshot is kept while it is younger than `keep_within` (its check may not
  have run yet) and forgotten after;
- the files watch's runs (one a look while the data change) are all kept for a day; older, within
  `keep_within`, only the newest of each hour is (the buckets above still count them);
- a policy that would keep nothing is refused.
Each group (host, kind) is decided on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from phoenix.errors import PhoenixError

PIN_TAG_PREFIX = "pin="
WATCH_RUNS_ALL_KEPT = timedelta(days=1)  # older watch runs within keep_within: the newest of each hour


@dataclass(frozen=True)
class Snapshot:
    """One snapshot as retention sees it."""

    id: str
    time: datetime
    group: str = ""
    tags: frozenset[str] = frozenset()
    verified: bool = False
    watched: bool = False  # the files watch started it (trigger "changed")

    @property
    def pin_reason(self) -> str | None:
        """Returns the reason it is pinned, or None when it is not pinned."""
        for tag in self.tags:
            if tag.startswith(PIN_TAG_PREFIX):
                return tag[len(PIN_TAG_PREFIX) :] or "pinned"
        return None


@dataclass(frozen=True)
class Policy:
    """How many verified snapshots to keep; counts are periods, as in restic's --keep-*."""

    keep_within: timedelta = timedelta(days=7)
    hourly: int = 0
    daily: int = 7
    weekly: int = 4
    monthly: int = 6
    minimum_verified: int = 3

    def describe(self) -> str:
        hours = self.keep_within.total_seconds() / 3600
        within = f"{hours / 24:g}d" if hours >= 24 and hours % 24 == 0 else f"{hours:g}h"
        counts = ", ".join(f"{name} {getattr(self, name)}" for name in ("hourly", "daily", "weekly", "monthly"))
        return f"keep_within {within}, {counts}, minimum_verified {self.minimum_verified}"


@dataclass
class Decision:
    """What retention keeps (with every reason) and what it forgets, newest first."""

    keep: dict[str, list[str]] = field(default_factory=dict)
    forget: list[Snapshot] = field(default_factory=list)

    def reasons(self, snapshot_id: str) -> list[str]:
        return self.keep.get(snapshot_id, [])


def check_policy(policy: Policy) -> None:
    """Raises PhoenixError when the policy could leave a group with no verified snapshot."""
    problems = []
    if policy.minimum_verified < 1:
        problems.append(f"minimum_verified is {policy.minimum_verified}; at least 1 must always be kept")
    counts = (policy.hourly, policy.daily, policy.weekly, policy.monthly, policy.minimum_verified)
    if any(count < 0 for count in counts):
        problems.append("keep counts cannot be negative")
    if policy.keep_within < timedelta(0):
        problems.append("keep_within cannot be negative")
    if problems:
        raise PhoenixError("retention policy refused: " + "; ".join(problems))


PERIODS: dict[str, Callable[[datetime], tuple]] = {
    "hourly": lambda moment: (moment.year, moment.month, moment.day, moment.hour),
    "daily": lambda moment: (moment.year, moment.month, moment.day),
    "weekly": lambda moment: moment.isocalendar()[:2],
    "monthly": lambda moment: (moment.year, moment.month),
}


def _newest_per_period(snapshots: list[Snapshot], period_of: Callable[[datetime], tuple], count: int) -> list[Snapshot]:
    """Given snapshots newest first, returns the newest of each of the `count` latest periods."""
    kept: list[Snapshot] = []
    seen_periods: set[tuple] = set()
    for snapshot in snapshots:
        period = period_of(snapshot.time)
        if period in seen_periods:
            continue
        if len(seen_periods) == count:
            break
        seen_periods.add(period)
        kept.append(snapshot)
    return kept


def _thinned_watch_runs(newest_first: list[Snapshot], now: datetime) -> set[str]:
    """Returns the ids of the watch's runs older than a day that are not the newest watch run of their hour."""
    older = [snapshot for snapshot in newest_first if snapshot.watched and now - snapshot.time > WATCH_RUNS_ALL_KEPT]
    hour_newest = {snapshot.id for snapshot in _newest_per_period(older, PERIODS["hourly"], len(older))}
    return {snapshot.id for snapshot in older} - hour_newest


def _decide_group(snapshots: list[Snapshot], policy: Policy, now: datetime, decision: Decision) -> None:
    newest_first = sorted(snapshots, key=lambda snapshot: snapshot.time, reverse=True)
    verified = [snapshot for snapshot in newest_first if snapshot.verified]

    def keep(snapshot: Snapshot, reason: str) -> None:
        decision.keep.setdefault(snapshot.id, []).append(reason)

    thinned = _thinned_watch_runs(newest_first, now)
    for snapshot in newest_first:
        if snapshot.pin_reason is not None:
            keep(snapshot, f"pinned: {snapshot.pin_reason}")
        if now - snapshot.time <= policy.keep_within and snapshot.id not in thinned:
            keep(snapshot, "within keep_within" + ("" if snapshot.verified else " (not verified yet)"))
    for snapshot in verified[: policy.minimum_verified]:
        keep(snapshot, "among the newest verified")
    for name, period_of in PERIODS.items():
        for snapshot in _newest_per_period(verified, period_of, getattr(policy, name)):
            keep(snapshot, name)
    decision.forget.extend(snapshot for snapshot in newest_first if snapshot.id not in decision.keep)


def select(snapshots: Iterable[Snapshot], policy: Policy, now: datetime) -> Decision:
    """Given snapshots, a policy and the current time, returns what to keep and what to forget.

    Raises PhoenixError when the policy is refused (see check_policy).
    """
    check_policy(policy)
    groups: dict[str, list[Snapshot]] = {}
    for snapshot in snapshots:
        groups.setdefault(snapshot.group, []).append(snapshot)
    decision = Decision()
    for group in sorted(groups):
        _decide_group(groups[group], policy, now, decision)
    return decision
