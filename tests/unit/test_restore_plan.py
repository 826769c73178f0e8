"""Which runs restore.py picks, decided before it touches a host."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from phoenix.errors import PhoenixError
from phoenix.restore_plan import choose


def run(run_id: str, job: str, time: str, complete: bool = True, verified: bool = False) -> dict:
    snapshots = [f"{run_id}aaaa", f"{run_id}bbbb"] if complete else [f"{run_id}aaaa"]
    return {"run": run_id, "job": job, "time": time, "complete": complete, "verified": verified, "snapshots": snapshots}


RUNS = [
    run("r1", "db-links", "2026-11-18T02:15:00+00:00", verified=True),
    run("f1", "files", "2026-11-18T02:45:00+00:00", verified=True),
    run("r2", "db-links", "2026-11-19T02:15:00+00:00", verified=True),
    run("r3", "db-links", "2026-11-20T02:15:00+00:00"),  # not checked yet
    run("r4", "db-links", "2026-11-20T14:00:00+00:00", complete=False),  # its dump failed
]
JOBS = ["db-links", "files"]


def picked(**options) -> dict[str, str]:
    return {job: chosen["run"] for job, chosen in choose(RUNS, JOBS, "web1", **options).items()}


def test_the_default_is_each_jobs_latest_verified_run():
    assert picked() == {"db-links": "r2", "files": "f1"}


def test_latest_takes_the_newest_complete_run_never_an_incomplete_one():
    assert picked(snapshot="latest") == {"db-links": "r3", "files": "f1"}


def test_a_snapshot_id_prefix_picks_its_run_and_the_other_jobs_keep_their_default():
    assert picked(snapshot="r3bbb") == {"db-links": "r3", "files": "f1"}


def test_at_picks_the_newest_complete_run_at_or_before_that_time():
    assert picked(at=datetime(2026, 11, 19, 12, 0, tzinfo=UTC)) == {"db-links": "r2", "files": "f1"}
    assert picked(at=datetime.fromisoformat("2026-11-20T15:00:00+01:00")) == {"db-links": "r3", "files": "f1"}


@pytest.mark.parametrize(
    "options,message",
    [
        ({"snapshot": "zz9"}, "--data snapshot=zz9: no such run or snapshot in web1's repository"),
        ({"snapshot": "r4"}, "--data snapshot=r4: run r4 has no manifest (it did not finish)"),
        (
            {"at": datetime(2026, 11, 17, tzinfo=UTC)},
            "web1/db-links: no complete backup at or before 2026-11-17 00:00 UTC",
        ),
    ],
)
def test_impossible_choices_say_why(options, message):
    with pytest.raises(PhoenixError, match=message.replace("(", r"\(").replace(")", r"\)")):
        choose(RUNS, JOBS, "web1", **options)


def test_without_any_verified_run_the_default_says_how_to_restore_anyway():
    unverified = [dict(entry, verified=False) for entry in RUNS]

    with pytest.raises(PhoenixError, match="no verified backup yet .* --data snapshot=latest"):
        choose(unverified, JOBS, "web1")
