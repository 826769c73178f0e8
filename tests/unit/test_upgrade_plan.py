"""Which release upgrade.py installs (roles/upgrade_plan.py), decided before any host is touched."""

from types import SimpleNamespace

import pytest

from phoenix.errors import PhoenixError
from roles.upgrade_plan import release_source

APP = {"source": "app", "releases": {"2.0.0": "releases/links-2.0.0.whl", "3.0.0": {"source": "r3", "lock": "l3"}}}


def app_host(**flags) -> SimpleNamespace:
    return SimpleNamespace(phoenix_host="web1", app=APP, run_flags={"source": "", "version": "", **flags})


def test_the_release_is_source_then_version_then_app_source_with_a_release_lock_of_its_own():
    assert release_source(app_host(source="/tmp/x.whl", version="2.0.0")) == ("/tmp/x.whl", APP)
    assert release_source(app_host(version="2.0.0")) == ("releases/links-2.0.0.whl", APP)
    assert release_source(app_host(version="3.0.0")) == ("r3", {**APP, "lock": "l3"})
    assert release_source(app_host()) == ("app", APP)


def test_a_version_not_in_app_releases_is_refused_naming_the_known_ones():
    with pytest.raises(PhoenixError) as refused:
        release_source(app_host(version="9.9"))

    assert str(refused.value) == "--data version=9.9: not in app.releases of web1 (known: 2.0.0, 3.0.0)"
