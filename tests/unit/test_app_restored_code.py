"""restore.py checks the app's release a second time only when the restored files write into the app's home."""

from __future__ import annotations

import pytest

from roles.app import code_restored_over

APP = {"name": "links"}  # home: /srv/links


@pytest.mark.parametrize(
    "restored, over",
    [
        (["/var/lib/links/uploads"], False),
        (["/srv/linksmore", "/srv/link"], False),
        (["/srv/links"], True),
        (["/srv"], True),
        (["/"], True),
        (["/var/lib/links/uploads", "/srv/links/venv"], True),
        ([], False),
    ],
)
def test_code_restored_over_the_app_home(restored, over):
    assert code_restored_over(APP, restored) is over
