"""`phoenix report`'s page in a real browser: headless Chromium (Debian's `chromium`, installed when missing)
opens pages built from synthetic history, as a person would, and the test reads what it rendered.

PHOENIX_DOCS_SCREENSHOT=1 also writes the screenshot to docs/dashboard.png (the README's picture).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from dashboard_data import sources
from PIL import Image

from phoenix import dashboard
from phoenix.engine import install_debian_packages
from phoenix.inventory import load_environment
from phoenix.plots import FAILED_COLOR

REPOSITORY = Path(__file__).resolve().parents[2]
DRILLS = 7


@pytest.fixture(scope="module")
def chromium() -> str:
    """Returns the path of Chromium, installing Debian's package when it is missing (as root)."""
    if shutil.which("chromium") is None:
        if os.geteuid() != 0:
            pytest.skip("chromium is missing and installing it needs root")
        install_debian_packages("chromium")
    return shutil.which("chromium")


def browse(chromium: str, page: Path, *action: str, profile: Path) -> subprocess.CompletedProcess:
    """Opens `page` in headless Chromium with `action` (--dump-dom, --screenshot=...); returns the process."""
    command = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,2700",
        f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *action, page.as_uri(),
    ]  # fmt: skip
    process = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stderr[-3000:]
    return process


class Rendered(HTMLParser):
    """The DOM Chromium built, read as a person sees it: the text of each element with an id or a
    data-host, and the markers drawn in each SVG series."""

    def __init__(self):
        super().__init__()
        self.open: list[tuple[str, str]] = []  # (tag, key) of the open elements that have a key
        self.text: dict[str, str] = {}
        self.classes: dict[str, str] = {}  # what colours it: ok (green), stale, missing, problem, failed (red)
        self.markers: dict[str, int] = {}
        self.scripts = 0

    def handle_starttag(self, tag, attributes):
        values = dict(attributes)
        self.scripts += tag == "script"
        if tag == "use":
            for _, key in self.open:
                self.markers[key] = self.markers.get(key, 0) + 1
            return
        key = values.get("id") or (f"{values['data-host']}/{values['data-job']}" if "data-host" in values else "")
        if key:
            self.open.append((tag, key))
            self.text.setdefault(key, "")
            self.classes[key] = values.get("class", "")

    def handle_endtag(self, tag):
        if self.open and self.open[-1][0] == tag:
            self.open.pop()

    def handle_data(self, data):
        for _, key in self.open:
            self.text[key] += data


def words(text: str) -> str:
    return " ".join(text.split())


def red_pixels(screenshot: Path) -> int:
    """Returns how many pixels of the screenshot have the colour of a failure badge."""
    red = tuple(int(FAILED_COLOR[index : index + 2], 16) for index in (1, 3, 5))
    colours = Image.open(screenshot).convert("RGB").getcolors(1 << 24)
    return sum(count for count, colour in colours if colour == red)


@pytest.fixture
def shop(write_inventory):
    return load_environment(write_inventory())


def test_the_browser_shows_the_failed_drill_the_stale_backup_and_a_point_per_drill(chromium, shop, tmp_path):
    page = dashboard.write_page(tmp_path / "shop-dashboard.html", sources(shop, drill_count=DRILLS), "phoenix report")
    dom = browse(chromium, page, "--dump-dom", profile=tmp_path / "profile")
    shown = Rendered()
    shown.feed(dom.stdout)

    # no script in the page, and none of Chromium's console lines ("INFO:CONSOLE ... Uncaught ReferenceError")
    assert shown.scripts == 0 and "CONSOLE" not in dom.stderr
    assert words(shown.text["drill"]).startswith("FAILED started 2026-11-19 14:00")
    assert shown.classes["drill"] == "failed"
    assert "db-links: row counts equal the manifest FAIL" in words(shown.text["checks"])
    assert "STALE: 30.0h old, limit 26h" in words(shown.text["db1/files"]) and shown.classes["db1/files"] == "stale"
    assert "fresh: 60m old, limit 26h" in words(shown.text["web1/files"]) and shown.classes["web1/files"] == "ok"
    assert "2 problem(s)" in words(shown.text["verdict"])
    assert shown.markers["rto-total"] == DRILLS and shown.markers["rpo"] == DRILLS
    assert shown.markers["rto-failed"] == 1
    assert shown.markers["size-db1-files"] == 4  # the synthetic history's runs per job

    screenshot = tmp_path / "dashboard.png"
    browse(chromium, page, f"--screenshot={screenshot}", profile=tmp_path / "profile")
    assert Image.open(screenshot).size == (1280, 2700)
    assert red_pixels(screenshot) > 500  # the STALE and FAILED badges, in red
    if os.environ.get("PHOENIX_DOCS_SCREENSHOT"):
        shutil.copy(screenshot, REPOSITORY / "docs" / "dashboard.png")


def test_the_browser_shows_no_red_when_all_is_good(chromium, shop, tmp_path):
    status = sources(shop, last_passed=True).status
    for row in status.rows:
        row.flags, row.age_hours = [], 1.0
    status.drill_flags = []
    good = dashboard.Sources(shop, status, status.drills, [], None)
    page = dashboard.write_page(tmp_path / "good.html", good, "phoenix report")
    screenshot = tmp_path / "good.png"
    browse(chromium, page, f"--screenshot={screenshot}", profile=tmp_path / "profile")
    assert red_pixels(screenshot) == 0
    shown = Rendered()
    shown.feed(browse(chromium, page, "--dump-dom", profile=tmp_path / "profile").stdout)
    assert words(shown.text["verdict"]).startswith("All good")
    assert words(shown.text["drill"]).startswith("PASSED")
