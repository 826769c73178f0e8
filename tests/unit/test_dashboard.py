"""`phoenix report`'s page, from synthetic status and history (no vault, no browser: see test_dashboard_browser)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime

import pytest
from dashboard_data import NOW, backups, drills, sources

from phoenix import dashboard, plots
from phoenix.inventory import load_environment

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def shop(write_inventory):
    return load_environment(write_inventory())


def page_text(shop, **changes) -> str:
    return dashboard.render_html(dashboard.page(sources(shop, **changes), NOW, "phoenix report inventories/shop.py"))


def points(svg: str, series: str) -> int:
    """Returns how many markers the series with that SVG id draws."""
    (group,) = [group for group in ElementTree.fromstring(svg).iter(f"{SVG}g") if group.get("id") == series]
    return len(list(group.iter(f"{SVG}use")))


def test_a_stale_backup_shows_stale_with_its_age_and_limit_and_a_fresh_one_fresh(shop):
    rows = {(row["host"], row["job"]): row for row in dashboard.backup_rows(shop, sources(shop).status)}
    assert rows["db1", "files"]["state"] == "stale"
    assert rows["db1", "files"]["state_text"] == "STALE: 30.0h old, limit 26h"
    assert rows["web1", "files"]["state"] == "ok" and rows["web1", "files"]["state_text"] == "fresh: 60m old, limit 26h"
    assert rows["db1", "db-links"]["latest"] == "2026-11-20 13:00 (60m ago)"


def test_a_job_never_backed_up_shows_missing(shop):
    status = sources(shop).status
    status.rows[0].latest, status.rows[0].age_hours = None, None
    assert dashboard.backup_rows(shop, status)[0]["state_text"] == "MISSING"


def test_the_page_shows_the_failed_drill_its_failed_check_and_every_problem(shop):
    text = page_text(shop)
    assert '<div id="drill" class="failed">' in text and '<span class="badge">FAILED</span>' in text
    assert "<td>db-links: row counts equal the manifest</td>" in text
    assert '<span class="badge">FAIL</span>' in text
    assert "db1/files: older than 26h" in text and "drill: the last drill FAILED" in text
    assert "6 drill(s)" in text


def test_a_healthy_environment_says_all_good(shop, monkeypatch):
    status = sources(shop, last_passed=True).status
    for row in status.rows:
        row.flags = []
        row.age_hours = 1.0
    content = dashboard.page(dashboard.Sources(shop, status, status.drills, [], None), NOW, "phoenix report")
    assert "<strong>All good:</strong>" in dashboard.render_html(content)


def test_everything_from_the_vault_or_a_drill_is_escaped_and_the_page_has_no_script(shop):
    text = page_text(shop)
    assert "before &lt;2.0&gt; &amp; co" in text  # a pin's reason
    assert "<td>&lt;b&gt;</td>" in text  # a check's detail
    assert "<script" not in text.lower()
    assert not re.findall(r"""(?:src=|href=|url\()["']?[^#"']""", text)  # only references inside the page: #id


def test_the_drill_plot_has_a_point_per_drill_and_a_cross_per_failed_one():
    history = drills(9, last_passed=False)
    svg = plots.drill_history_svg(history)
    assert points(svg, "rto-total") == 9 and points(svg, "rpo") == 9 and points(svg, "rto-failed") == 1
    assert points(svg, "rto-provision") == 9


def test_the_backup_plot_has_a_series_per_job_and_a_point_per_run(shop):
    svg = plots.backups_svg(backups(shop, runs_per_job=5))
    for series in ("size-web1-files", "seconds-db1-db-links", "size-db1-files"):
        assert points(svg, series) == 5, series


def test_without_the_vault_the_page_names_the_problem_and_still_shows_the_drills(shop):
    history = drills(2, last_passed=True)
    content = dashboard.page(
        dashboard.Sources(shop, None, history, None, None, problem="vault1: `phoenix-vault status` failed: boom"),
        datetime(2026, 11, 20, 14, tzinfo=UTC),
        "phoenix report",
    )
    text = dashboard.render_html(content)
    assert "backup status not gathered: vault1: `phoenix-vault status` failed: boom" in text
    assert '<div id="drill" class="ok">' in text and content["drill_count"] == 2


def test_the_checks_of_an_older_history_line_come_from_its_report_file(tmp_path):
    report = tmp_path / "shop-x.json"
    report.write_text('{"checks": [{"host": "web1", "name": "n", "ok": true, "detail": ""}]}')
    assert dashboard.drill_checks({"report": str(report)}) == [{"host": "web1", "name": "n", "ok": True, "detail": ""}]
    assert dashboard.drill_checks({"report": str(tmp_path / "gone.json")}) is None


def test_the_default_page_goes_to_the_drill_report_directory(shop, monkeypatch):
    monkeypatch.setenv("PHOENIX_DRILL_DIR", "/var/drills")
    assert str(dashboard.default_output(shop)) == "/var/drills/shop-dashboard.html"


def test_a_single_drill_is_plotted_on_a_scale_of_days_not_years():
    svg = plots.drill_history_svg(drills(1, last_passed=True))
    assert points(svg, "rto-total") == 1 and "2027" not in svg and "Nov-19" in svg


def test_the_page_shows_each_archived_hosts_wal_lag(shop):
    status = sources(shop).status
    status.archive = [
        {
            "server": "db1", "received_seconds_ago": 600, "newest": "00000001000000000000001C",
            "current": "00000001000000000000001C", "caught_up": True, "failed_checks": [],
        }
    ]  # fmt: skip
    text = dashboard.render_html(dashboard.page(dashboard.Sources(shop, status, status.drills, [], None), NOW, "x"))
    assert (
        "archive of db1: newest WAL received 10m ago (00000001000000000000001C), caught up, barman check passed" in text
    )
