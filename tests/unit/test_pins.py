"""The pins table, and an unpin without a reason refused before the vault is asked."""

from __future__ import annotations

import pytest

from phoenix import pins
from phoenix.errors import PhoenixError


def test_the_table_shows_each_pin_with_its_age_and_reason():
    document = {
        "now": "2026-11-21T12:00:00+00:00",
        "pins": [{"client": "web1", "job": "db-links", "run": "20261114T120000Z-abc123",
                  "time": "2026-11-14T12:00:00+00:00", "pin": "before 2.0"}],
    }  # fmt: skip
    header, row = pins.render(document).splitlines()
    assert header.split() == ["HOST", "JOB", "RUN", "TAKEN", "AGE", "REASON"]
    assert row.split() == [
        "web1",
        "db-links",
        "20261114T120000Z-abc123",
        "2026-11-14",
        "12:00",
        "7.0d",
        "before",
        "2.0",
    ]
    assert pins.render({"now": document["now"], "pins": []}) == "no pinned backups"


def test_an_unpin_without_a_reason_is_refused_before_anything_is_asked(write_inventory):
    with pytest.raises(PhoenixError, match="--reason must say why"):
        pins.unpin(str(write_inventory()), "20261114T120000Z-abc123", "  ")
