"""Retention selection with a fake clock, including the second incident of notes/backups.md."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from phoenix.errors import PhoenixError
from phoenix.retention import Policy, Snapshot, select

START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
WEEKLY_NIGHTLY_POLICY = Policy(keep_within=timedelta(days=2), daily=7, weekly=0, monthly=0, minimum_verified=1)


def nightly(day: int, verified: bool = True, group: str = "web1/db") -> Snapshot:
    moment = START + timedelta(days=day, hours=23)
    return Snapshot(
        id=f"night-{day:02d}", time=moment, group=group, tags=frozenset({"trigger=scheduled"}), verified=verified
    )


def pre_upgrade(pinned: bool) -> Snapshot:
    tags = {"trigger=pre-upgrade"} | ({"pin=upgrade 1.0 -> 2.0"} if pinned else set())
    return Snapshot(
        id="pre-upgrade", time=START + timedelta(hours=10), group="web1/db", tags=frozenset(tags), verified=True
    )


def test_pinned_pre_upgrade_snapshot_survives_the_nightly_and_a_week_after():
    snapshots = [pre_upgrade(pinned=True), *(nightly(day) for day in range(8))]
    decision = select(snapshots, WEEKLY_NIGHTLY_POLICY, now=START + timedelta(days=8, hours=1))
    assert "pre-upgrade" in decision.keep
    assert decision.reasons("pre-upgrade") == ["pinned: upgrade 1.0 -> 2.0"]
    assert [snapshot.id for snapshot in decision.forget] == ["night-00"]  # 7 days kept, pin extra


def test_without_the_pin_daily_retention_forgets_the_pre_upgrade_snapshot_as_restic_does():
    # the incident: keep-daily keeps the newest of each day, the 23:00 nightly, not the 10:00 one
    snapshots = [pre_upgrade(pinned=False), nightly(0)]
    decision = select(snapshots, Policy(keep_within=timedelta(0), daily=7, weekly=0, monthly=0, minimum_verified=1),
                      now=START + timedelta(days=1))  # fmt: skip
    assert [snapshot.id for snapshot in decision.forget] == ["pre-upgrade"]


def test_a_month_of_unverified_nights_keeps_the_last_verified_snapshots():
    verified_week = [nightly(day) for day in range(7)]
    failed_month = [nightly(day, verified=False) for day in range(7, 37)]
    policy = Policy(keep_within=timedelta(days=3), daily=7, weekly=0, monthly=0, minimum_verified=3)
    decision = select([*verified_week, *failed_month], policy, now=START + timedelta(days=37))
    kept_verified = sorted(snapshot.id for snapshot in verified_week if snapshot.id in decision.keep)
    assert kept_verified == [snapshot.id for snapshot in verified_week]  # daily=7 counts verified days only
    kept_unverified = sorted(snapshot.id for snapshot in failed_month if snapshot.id in decision.keep)
    assert kept_unverified == ["night-34", "night-35", "night-36"]  # young enough to be checked yet


def test_newest_verified_snapshots_are_kept_even_beyond_every_bucket():
    snapshots = [nightly(day) for day in range(5)]
    policy = Policy(keep_within=timedelta(0), hourly=0, daily=0, weekly=0, monthly=0, minimum_verified=3)
    decision = select(snapshots, policy, now=START + timedelta(days=400))
    assert sorted(decision.keep) == ["night-02", "night-03", "night-04"]
    assert all(reasons == ["among the newest verified"] for reasons in decision.keep.values())


@pytest.mark.parametrize(
    "policy,message",
    [
        (Policy(keep_within=timedelta(0), daily=0, weekly=0, monthly=0, minimum_verified=0), "at least 1"),
        (Policy(daily=-1), "cannot be negative"),
        (Policy(keep_within=timedelta(days=-1)), "keep_within cannot be negative"),
    ],
)
def test_a_policy_that_could_keep_nothing_is_refused(policy, message):
    with pytest.raises(PhoenixError, match=message):
        select([nightly(0)], policy, now=START)


def test_each_host_and_kind_is_decided_on_its_own():
    database = [nightly(day, group="web1/db") for day in range(3)]
    files = [Snapshot(id=f"files-{day}", time=START + timedelta(days=day), group="web1/files", verified=True)
             for day in range(3)]  # fmt: skip
    policy = Policy(keep_within=timedelta(0), daily=0, weekly=0, monthly=0, minimum_verified=1)
    decision = select([*database, *files], policy, now=START + timedelta(days=10))
    assert sorted(decision.keep) == ["files-2", "night-02"]


def test_every_snapshot_is_either_kept_or_forgotten_and_pins_always_kept():
    generator = random.Random(20261121)
    for _ in range(200):
        snapshots = [
            Snapshot(
                id=f"s{index}",
                time=START + timedelta(hours=generator.randrange(0, 24 * 120)),
                group=generator.choice(["a/db", "a/files", "b/db"]),
                tags=frozenset({"pin=keep"} if generator.random() < 0.05 else set()),
                verified=generator.random() < 0.7,
            )
            for index in range(generator.randrange(1, 60))
        ]
        policy = Policy(
            keep_within=timedelta(days=generator.randrange(0, 10)),
            hourly=generator.randrange(0, 5),
            daily=generator.randrange(0, 8),
            weekly=generator.randrange(0, 5),
            monthly=generator.randrange(0, 4),
            minimum_verified=generator.randrange(1, 4),
        )
        decision = select(snapshots, policy, now=START + timedelta(days=121))
        forgotten = {snapshot.id for snapshot in decision.forget}
        assert forgotten.isdisjoint(decision.keep)
        assert forgotten | set(decision.keep) == {snapshot.id for snapshot in snapshots}
        assert all(snapshot.id in decision.keep for snapshot in snapshots if snapshot.pin_reason)
        for group in {snapshot.group for snapshot in snapshots}:
            verified = [snapshot for snapshot in snapshots if snapshot.group == group and snapshot.verified]
            newest = sorted(verified, key=lambda snapshot: snapshot.time, reverse=True)[: policy.minimum_verified]
            assert all(snapshot.id in decision.keep for snapshot in newest)


def watch_runs(hours: range, every_minutes: int = 10) -> list[Snapshot]:
    """The files watch's runs (trigger changed), one every `every_minutes` over `hours` after START, verified."""
    return [
        Snapshot(
            id=f"watch-{hour:03d}-{minute:02d}",
            time=START + timedelta(hours=hour, minutes=minute),
            group="web1/files",
            tags=frozenset({"trigger=changed"}),
            verified=True,
            watched=True,
        )
        for hour in hours
        for minute in range(0, 60, every_minutes)
    ]


def test_the_watch_runs_of_the_last_day_are_all_kept_older_ones_the_newest_of_each_hour():
    runs = watch_runs(range(72))  # three days of uploads, a run every 10 minutes
    now = START + timedelta(hours=72)
    decision = select(runs, Policy(keep_within=timedelta(days=7), daily=0, weekly=0, monthly=0), now=now)

    kept = {snapshot.id for snapshot in runs if snapshot.id in decision.keep}
    last_day = {snapshot.id for snapshot in runs if now - snapshot.time <= timedelta(days=1)}
    older_hours = {f"watch-{hour:03d}-50" for hour in range(72) if now - START - timedelta(hours=hour, minutes=50)
                   > timedelta(days=1)}  # fmt: skip
    assert kept == last_day | older_hours
    assert decision.reasons("watch-010-50") == ["within keep_within"]
    assert "watch-010-40" not in decision.keep


def test_thinning_the_watch_runs_leaves_pins_buckets_and_the_other_runs_alone():
    runs = watch_runs(range(48))
    pinned = Snapshot(
        id="watch-pinned", time=START + timedelta(hours=3, minutes=5), group="web1/files",
        tags=frozenset({"trigger=changed", "pin=before the import"}), verified=True, watched=True,
    )  # fmt: skip
    nightly_run = Snapshot(id="nightly", time=START + timedelta(hours=2, minutes=45), group="web1/files", verified=True)
    decision = select([*runs, pinned, nightly_run], Policy(keep_within=timedelta(days=7), daily=7), now=START +
                      timedelta(hours=48))  # fmt: skip

    assert decision.reasons("watch-pinned") == ["pinned: before the import"]
    assert decision.reasons("nightly") == ["within keep_within"]  # a scheduled run is not thinned
    assert "daily" in decision.reasons("watch-023-50")  # the newest verified run of its day, as before
