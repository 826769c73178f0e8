"""Every report says a duration or an age the same way: 0.6s, 45s, 12m, 3.4h, 2.1d."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from phoenix import units


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (0, "0.0s"),
        (0.6, "0.6s"),
        (9.94, "9.9s"),
        (10, "10s"),
        (56.5, "56s"),
        (119, "119s"),
        (120, "2m"),
        (12 * 60 + 10, "12m"),
        (95 * 60, "95m"),
        (2 * 3600, "2.0h"),
        (3.44 * 3600, "3.4h"),
        (47.9 * 3600, "47.9h"),
        (48 * 3600, "2.0d"),
        (7 * 86400, "7.0d"),
    ],
)
def test_a_duration_is_said_in_the_largest_unit_that_keeps_it_readable(seconds, said):
    assert units.duration(seconds) == said


def test_a_duration_not_measured_is_a_dash():
    assert units.duration(None) == "-"


def test_an_age_is_measured_by_the_clock_given():
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert units.age("2026-11-21T11:48:00+00:00", now) == "12m"
    assert units.age("2026-11-14T12:00:00+00:00", now) == "7.0d"


def test_step_timings_keep_their_order_on_one_line():
    assert units.step_durations({"provision": 40.2, "restore data": 6.9, "start the app": 130}) == (
        "provision 40s, restore data 6.9s, start the app 2m"
    )


def test_byte_counts_are_said_in_binary_units():
    assert units.human_bytes(512) == "512 B"
    assert units.human_bytes(1.5 * 1024 * 1024) == "1.5 MiB"


def test_a_moment_is_said_to_the_minute_in_every_report():
    assert units.minute("2026-11-30T10:59:30.123456+01:00") == "2026-11-30 10:59"
