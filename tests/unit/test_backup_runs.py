"""How the server-side programs read a repository: runs, manifests, tags, and what counts as good."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from phoenix.remote.common import parse_time, redact, summary_of
from phoenix.remote.runs import as_retention_snapshots, run_tags, runs_from_listing
from phoenix.retention import Policy, select

JOB = {"name": "db-links", "kind": "db"}


def snapshot(snapshot_id: str, time: str, run: str, part: str, pin: str = "") -> dict:
    return {
        "id": snapshot_id,
        "time": time,
        "hostname": "web1",
        "tags": run_tags("web1", JOB, "scheduled", run, part, pin),
    }


def test_a_run_is_its_data_and_manifest_snapshots_and_only_then_complete():
    listing = [
        snapshot("d1", "2026-11-20T23:00:01.123456789+01:00", "r1", "data"),
        snapshot("m1", "2026-11-20T23:00:09+01:00", "r1", "manifest"),
        snapshot("d2", "2026-11-21T23:00:00Z", "r2", "data"),  # its manifest never came: the dump failed
        {"id": "x1", "time": "2026-11-21T12:00:00Z", "hostname": "web1", "tags": None},  # not Phoenix's
    ]

    runs = {run.id: run for run in runs_from_listing(listing)}

    assert set(runs) == {"r1", "r2"}
    assert runs["r1"].complete and runs["r1"].snapshot_ids == ["d1", "m1"]
    assert runs["r1"].time == datetime(2026, 11, 20, 22, 0, 1, 123456, tzinfo=UTC)  # the data snapshot's time
    assert not runs["r2"].complete
    assert (runs["r1"].group, runs["r1"].kind, runs["r1"].trigger) == ("web1/db-links", "db", "scheduled")


def test_an_incomplete_run_never_counts_as_verified_and_goes_once_keep_within_passes():
    listing = [
        snapshot("d1", "2026-11-01T23:00:00Z", "good", "data"),
        snapshot("m1", "2026-11-01T23:00:05Z", "good", "manifest"),
        snapshot("d2", "2026-11-02T23:00:00Z", "partial", "data"),
    ]
    runs = runs_from_listing(listing)

    snapshots = as_retention_snapshots(runs, verified={"good", "partial"})
    decision = select(snapshots, Policy(keep_within=timedelta(days=7)), now=datetime(2026, 11, 20, tzinfo=UTC))

    assert [snapshot.verified for snapshot in snapshots] == [True, False]
    assert "good" in decision.keep
    assert [snapshot.id for snapshot in decision.forget] == ["partial"]


def test_a_pin_reason_with_commas_stays_one_tag_which_is_a_request_not_a_pin():
    tags = run_tags("web1", JOB, "pre-upgrade", "r9", "data", "before 2.0, and the schema change")
    runs = runs_from_listing([{"id": "d9", "time": "2026-11-20T10:00:00Z", "hostname": "web1", "tags": tags}])

    assert "pin=before 2.0; and the schema change" in tags
    assert not any("," in tag for tag in tags)  # restic splits --tag values on commas
    assert runs[0].pin_tag == "before 2.0; and the schema change"
    assert runs[0].pin == "" and as_retention_snapshots(runs, set())[0].pin_reason is None
    runs[0].pin = "before 2.0, and the schema change"  # what the vault sets from its own record
    assert as_retention_snapshots(runs, set())[0].pin_reason == "before 2.0, and the schema change"


def test_restic_timestamps_with_nanoseconds_and_offsets_parse_to_utc():
    assert parse_time("2026-11-20T23:00:01.999999999+01:00") == datetime(2026, 11, 20, 22, 0, 1, 999999, tzinfo=UTC)
    assert parse_time("2026-11-20T23:00:01Z") == datetime(2026, 11, 20, 23, 0, 1, tzinfo=UTC)


def test_repository_passwords_are_never_printed_in_messages():
    message = "Fatal: unable to open rest:https://web1:s3cr%2Ft@vault1:8443/web1/ (401)"

    assert redact(message) == "Fatal: unable to open rest:https://web1:***@vault1:8443/web1/ (401)"


def test_the_backup_summary_is_found_among_restic_status_lines():
    output = (
        '{"message_type":"status","percent_done":0.5}\n'
        '{"message_type":"summary","snapshot_id":"1a2b3c4d","data_added":42}\n'
    )

    assert summary_of(output)["snapshot_id"] == "1a2b3c4d"


def test_a_files_run_whose_pin_was_released_still_verifies_against_its_manifest():
    """`restic tag --remove` (unpin) rewrites the data snapshot under a new id, keeping the first as "original"."""
    from types import SimpleNamespace

    from phoenix.remote.vault import verify_run

    files_job = {"name": "files", "kind": "files"}
    listing = [
        {"id": "new-id", "original": "d1aaaaaa", "time": "2026-11-21T10:00:00Z", "hostname": "web1"},
        {"id": "m1", "time": "2026-11-21T10:00:05Z", "hostname": "web1"},
    ]
    for entry, part in zip(listing, ("data", "manifest"), strict=True):
        entry["tags"] = run_tags("web1", files_job, "manual", "r1", part, "")
    (run,) = runs_from_listing(listing)
    manifest = SimpleNamespace(stdout='{"data_snapshot": "d1aaaaaa"}')
    restic = SimpleNamespace(run=lambda *arguments: manifest)

    assert verify_run(restic, run) == ""
    manifest.stdout = '{"data_snapshot": "ffffffff"}'
    assert verify_run(restic, run) == "manifest names another snapshot"
