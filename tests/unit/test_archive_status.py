"""`phoenix status`'s archive lines: the lag and `barman check`, parsed from the vault's answers."""

from __future__ import annotations

import json

from phoenix import archive_status
from phoenix.archive_status import SEPARATOR


def probe_output(now: int, newest: str, current: str, failed: tuple[str, ...] = ()) -> str:
    check = {"db1": {"wal_level": {"hint": "", "status": "OK"}}}
    for name in failed:
        check["db1"][name] = {"hint": "have 0 backups, expected at least 1", "status": "FAILED"}
    status = {"db1": {"current_xlog": {"description": "Current WAL segment", "message": current}}}
    return "\n".join([str(now), SEPARATOR, json.dumps(check), SEPARATOR, json.dumps(status), SEPARATOR, newest, ""])


def test_a_stream_on_the_servers_current_segment_has_no_lag_even_when_idle():
    entry = archive_status.parse(
        "db1", probe_output(1000, "400.5 00000001000000000000001C.partial", "00000001000000000000001C")
    )

    assert entry["received_seconds_ago"] == 600 and entry["caught_up"]
    assert archive_status.lag_seconds(entry) == 0 and archive_status.flags(entry, 5) == []
    assert archive_status.line(entry) == (
        "archive of db1: newest WAL received 10m ago (00000001000000000000001C), caught up, barman check passed"
    )


def test_a_stream_behind_the_server_for_over_five_minutes_is_flagged():
    entry = archive_status.parse("db1", probe_output(1000, "600 00000001000000000000001A", "00000001000000000000001C"))

    assert archive_status.lag_seconds(entry) == 400
    assert archive_status.flags(entry, 5) == [
        "archive lag 7m: the newest WAL reached the vault 7m ago and the server has written since"
        " (vault.pitr.max_lag_minutes: 5)"
    ]
    assert archive_status.flags(entry, 10) == []


def test_a_failing_barman_check_or_no_wal_at_all_is_flagged():
    failing = archive_status.parse(
        "db1", probe_output(1000, "", "00000001000000000000001C", ("minimum_redundancy_requirements",))
    )

    assert archive_status.flags(failing, 5) == [
        "no WAL ever reached the vault's archive",
        "barman check FAILED: minimum redundancy requirements (have 0 backups, expected at least 1)",
    ]
    assert (
        archive_status.flags(archive_status.parse("db1", ""), 5)[-1]
        == "barman check FAILED: barman check gave no answer"
    )
