"""Which runs restore.py picks, decided before it touches a host."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from phoenix.errors import PhoenixError
from phoenix.restore_plan import choose, restored_jobs


def run(run_id: str, job: str, time: str, complete: bool = True, verified: bool = False, failed: str = "") -> dict:
    snapshots = [f"{run_id}aaaa", f"{run_id}bbbb"] if complete else [f"{run_id}aaaa"]
    return {
        "run": run_id, "job": job, "time": time, "complete": complete, "verified": verified, "failed": failed,
        "snapshots": snapshots,
    }  # fmt: skip


RUNS = [
    run("r1", "db-links", "2026-11-18T02:15:00+00:00", verified=True),
    run("f1", "files", "2026-11-18T02:45:00+00:00", verified=True),
    run("r2", "db-links", "2026-11-19T02:15:00+00:00", verified=True),
    run("r3", "db-links", "2026-11-20T02:15:00+00:00"),  # not checked yet
    run("r4", "db-links", "2026-11-20T14:00:00+00:00", complete=False),  # its dump failed
]
JOBS = ["db-links", "files"]
NOW = datetime.fromisoformat("2026-11-20T14:12:00+00:00")
BAD = "checksum mismatch: stored 10 bytes, manifest says 12"
# r5 landed 12 minutes ago, complete, and the vault's frequent check found it bad
WITH_A_BAD_RUN = [*RUNS, run("r5", "db-links", "2026-11-20T14:00:00+00:00", failed=BAD)]


def picked(runs: list[dict] = RUNS, **options) -> dict[str, str]:
    return {job: chosen["run"] for job, chosen in choose(runs, JOBS, "web1", now=NOW, **options).items()}


def test_the_default_is_each_jobs_newest_complete_run_even_when_not_verified_yet():
    assert picked() == {"db-links": "r3", "files": "f1"}


def test_without_any_verified_run_the_default_restores_the_newest_complete_one():
    unverified = [dict(entry, verified=False) for entry in RUNS]

    assert picked(unverified) == {"db-links": "r3", "files": "f1"}


def test_latest_is_the_default_the_newest_complete_run_never_an_incomplete_one():
    assert picked(snapshot="latest") == picked() == {"db-links": "r3", "files": "f1"}


def test_a_run_the_vault_found_bad_stops_the_restore_in_one_line_with_both_ages():
    with pytest.raises(PhoenixError) as refusal:
        choose(WITH_A_BAD_RUN, JOBS, "web1", now=NOW)

    message = str(refusal.value)
    assert "\n" not in message
    assert message == (
        f"web1/db-links: the newest run r5 (12m old) failed the vault's check ({BAD});"
        " the newest good one is r3 (11.9h old): to restore it, run again with --data allow_older=yes"
    )


def test_allow_older_restores_the_newest_good_run_and_says_so():
    chosen = choose(WITH_A_BAD_RUN, JOBS, "web1", allow_older=True, now=NOW)

    assert chosen["db-links"]["run"] == "r3" and chosen["files"]["run"] == "f1"
    assert chosen["db-links"]["fallback"].startswith("web1/db-links: the newest run r5 (12m old) failed")
    assert "fallback" not in chosen["files"]


def test_a_bad_run_is_skipped_only_for_an_older_good_one_never_for_nothing():
    every_run_bad = [dict(entry, failed=BAD) if entry["job"] == "db-links" else entry for entry in WITH_A_BAD_RUN]

    with pytest.raises(PhoenixError, match="no older complete run passed it: nothing good to restore"):
        choose(every_run_bad, JOBS, "web1", allow_older=True, now=NOW)


def test_at_a_time_whose_newest_run_is_bad_also_needs_allow_older():
    assert picked(WITH_A_BAD_RUN, at=datetime(2026, 11, 20, 14, 5, tzinfo=UTC), allow_older=True)["db-links"] == "r3"
    with pytest.raises(PhoenixError, match="the newest run r5 .* --data allow_older=yes"):
        picked(WITH_A_BAD_RUN, at=datetime(2026, 11, 20, 14, 5, tzinfo=UTC))


def test_a_run_the_vault_found_bad_is_never_restored_by_its_id():
    with pytest.raises(PhoenixError, match="--data snapshot=r5: run r5 failed the vault's check"):
        picked(WITH_A_BAD_RUN, snapshot="r5")


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


def test_a_job_without_any_complete_run_stops_the_restore_and_names_the_flag_that_restores_the_rest():
    with pytest.raises(PhoenixError) as refusal:
        choose([entry for entry in RUNS if entry["job"] != "files"], JOBS, "web1")

    assert str(refusal.value) == (
        "web1/files: no complete backup in the repository yet; to restore web1's other data without it,"
        " run again with --data allow_missing=yes"
    )


def test_allow_missing_restores_the_other_jobs_and_marks_the_one_without_a_run():
    chosen = choose([entry for entry in RUNS if entry["job"] != "files"], JOBS, "web1", allow_missing=True)

    assert chosen["db-links"]["run"] == "r3"
    assert chosen["files"] == {"job": "files", "missing": "web1/files: no complete backup in the repository yet"}


def test_a_moment_before_a_jobs_first_run_is_a_missing_job_too():
    at = datetime(2026, 11, 18, 2, 30, tzinfo=UTC)  # after db-links' first run, before files' first

    with pytest.raises(PhoenixError, match="web1/files: no complete backup at or before 2026-11-18 02:30 UTC; "):
        choose(RUNS, JOBS, "web1", at=at)
    assert choose(RUNS, JOBS, "web1", at=at, allow_missing=True)["files"]["missing"] == (
        "web1/files: no complete backup at or before 2026-11-18 02:30 UTC"
    )


def test_a_snapshot_of_a_job_restore_py_does_not_restore_is_refused():
    with pytest.raises(PhoenixError, match=r"run f1 is of job files, which restore.py does not restore on db1"):
        choose(RUNS, ["db-links"], "db1", snapshot="f1")


ETC_ONLY = {"name": "files", "kind": "files", "paths": ["/etc"]}
DUMP = {"name": "db-links", "kind": "db", "database": "links"}
UPLOADS = {"name": "files", "kind": "files", "paths": ["/etc", "/srv/links/uploads"]}


def test_only_the_jobs_restore_py_brings_back_need_a_run():
    assert restored_jobs([DUMP, ETC_ONLY]) == [DUMP]  # /etc is rebuilt by the blueprint
    assert restored_jobs([DUMP, ETC_ONLY], physical=True) == []  # and the archive restores PostgreSQL
    assert restored_jobs([DUMP, UPLOADS], physical=True) == [UPLOADS]
