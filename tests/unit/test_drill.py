"""Drill reports, history, status flags and pings; a drill whose restore fails (no containers here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from phoenix import archive_rpo, drill, drill_checks, drill_report, stand_in, vault_client
from phoenix.errors import PhoenixError
from phoenix.inventory import load_environment

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
# Another `phoenix drill` of the same environment, holding the lock until killed.
HOLD_DRILL_LOCK = """
import os, sys, time
from phoenix import drill
from phoenix.inventory import load_environment
with drill.exclusive(load_environment(sys.argv[1])):
    print("holding", flush=True)
    if sys.argv[2:] == ["die"]:
        os._exit(9)  # killed while holding it
    time.sleep(60)
"""


def report(started: datetime, passed: bool = True) -> dict:
    return {
        "environment": "shop",
        "started": started.isoformat(timespec="seconds"),
        "hosts": ["web1", "db1"],
        "steps": {"create hosts": 2.0, "prepare": 5.0, "provision": 40.0, "restore data": 6.5, "verify": 3.0},
        "rto_seconds": 56.5,
        "rpo_seconds": 7200,
        "archive_not_drilled": ["db1"],
        "data": [
            {
                "host": "db1",
                "job": "db-links",
                "run": "r1",
                "snapshot": "abcdef0123",
                "snapshot_time": "2026-11-21T10:00:00",
                "age_seconds": 7200,
                "bytes": 4096,
                "restore_seconds": 1.5,
                "verified": False,  # restore.py took it before the vault's verify had reached it
            },
            archive_rpo.archive_entry(
                "web1",
                {
                    "backup": "20261121T020000",
                    "backup_end": "2026-11-21T02:00:30+00:00",
                    "target": "the newest point the archive holds",
                    "newest_transaction": "2026-11-21 11:59:58.5+00",
                },
                {"newest_commit": "2026-11-21T11:59:58.400000+00:00", "error": ""},
            ),
            archive_rpo.archive_entry(
                "web2",
                {
                    "backup": "20261121T020000",
                    "backup_end": "2026-11-21T02:00:30+00:00",
                    "target": "the newest point the archive holds",
                    "newest_transaction": "",
                },
                {"newest_commit": None, "error": "web2 keeps no commit times"},
            ),
        ],  # fmt: skip
        "checks": [
            {"host": "web1", "name": "health answers 200 over HTTPS", "ok": True, "detail": ""},
            {"host": "db1", "name": "db-links: row counts equal the manifest", "ok": passed, "detail": "x | y"},
        ],
        "passed": passed,
    }


@pytest.fixture
def shop(write_inventory):
    return load_environment(write_inventory())


def test_a_report_is_written_as_json_and_markdown_and_recorded_in_the_history(tmp_path):
    json_path, markdown_path = drill_report.write_report(tmp_path, report(NOW), "20261121T120000Z")

    assert json.loads(json_path.read_text())["rto_seconds"] == 56.5
    markdown = markdown_path.read_text()
    assert "# Drill of shop: PASSED" in markdown
    assert "- RTO: 56s (create hosts 2.0s, prepare 5.0s, provision 40s, restore data 6.5s, verify 3.0s)" in markdown
    assert "- RPO: 2.0h" in markdown
    assert "- not drilled: the vault's continuous archive of db1 (--dumps, or no base backup there yet);" in markdown
    assert "- !! RPO of web2's archive unknown: web2 keeps no commit times" in markdown
    assert "| db1 | db-links | r1 | not yet | abcdef01 |" in markdown
    assert "| web1 | archive | base backup 20261121T020000 | - | - | 2026-11-21T11:59:58 | 0.0s | - | - |" in markdown
    assert "| web2 | archive | base backup 20261121T020000 | - | - | 2026-11-21T02:00:30 | - | - | - |" in markdown
    assert "| db1 | db-links: row counts equal the manifest | pass | x / y |" in markdown  # a | never breaks the table
    (entry,) = drill_report.history(tmp_path, "shop")
    assert entry["passed"] and entry["report"] == str(json_path) and entry["failed_checks"] == 0


def test_history_prints_the_trend_of_the_environments_drills(tmp_path):
    drill_report.write_report(tmp_path, report(NOW - timedelta(days=7)), "a")
    drill_report.write_report(tmp_path, report(NOW, passed=False), "b")
    text = drill_report.render_history(drill_report.history(tmp_path, "shop"))
    lines = text.splitlines()
    assert lines[1].startswith("2026-11-14T12:00:00") and " passed " in lines[1]
    assert lines[2].startswith("2026-11-21T12:00:00") and "FAILED (1)" in lines[2]
    assert drill_report.history(tmp_path, "other") == []


def test_a_damaged_history_line_is_named(tmp_path):
    (tmp_path / "history.jsonl").write_text('{"environment": "shop"}\n{not json\n')
    with pytest.raises(PhoenixError, match=r"history.jsonl:2: not a JSON line"):
        drill_report.history(tmp_path)


@pytest.mark.parametrize(
    "age_days,passed,flags",
    [
        (1, True, []),
        (9, True, ["the last drill is older than 8 days"]),
        (1, False, ["the last drill FAILED"]),
    ],
)
def test_status_flags_a_failed_or_old_drill(shop, tmp_path, age_days, passed, flags):
    drill_report.write_report(tmp_path, report(NOW - timedelta(days=age_days), passed), "x")
    line, found = drill_report.last_drill(
        shop, drill_report.history(drill_report.report_dir(shop, str(tmp_path)), shop.name), NOW
    )
    assert line.startswith(f"last drill: {(NOW - timedelta(days=age_days)).strftime('%Y-%m-%d %H:%M')}")
    assert [flag.split(" (")[0] for flag in found] == flags


def test_status_flags_an_environment_never_drilled(shop, tmp_path):
    line, flags = drill_report.last_drill(
        shop, drill_report.history(drill_report.report_dir(shop, str(tmp_path)), shop.name), NOW
    )
    assert line == "last drill: never"
    assert flags == [f"no drill recorded (run `phoenix drill {shop.path.with_suffix('.py')}`)"]


def test_the_report_directory_comes_from_the_option_then_the_variable_then_the_inventory(shop, monkeypatch):
    assert str(drill_report.report_dir(shop)) == "drills"
    monkeypatch.setenv("PHOENIX_DRILL_DIR", "/var/drills")
    assert str(drill_report.report_dir(shop)) == "/var/drills"
    assert str(drill_report.report_dir(shop, "/tmp/given")) == "/tmp/given"


def test_restore_steps_are_the_slowest_hosts_and_the_rest_is_preparing():
    hosts = {
        "web1": {"steps": {"provision": 30.0, "restore data": 2.0, "start the app": 10.0}},
        "db1": {"steps": {"provision": 35.0, "restore data": 4.0, "start the app": 0.5}},
    }
    assert drill.restore_steps(55.0, hosts) == {
        "prepare": 6.0,
        "provision": 35.0,
        "restore data": 4.0,
        "start the app": 10.0,
    }
    assert drill.restore_steps(12.34, {}) == {"restore.py": 12.3}


def test_a_drill_whose_restore_fails_exits_1_records_it_and_pings_fail(
    write_inventory, tmp_path, monkeypatch, receiver
):
    url, received = receiver
    path = write_inventory(
        __import__("conftest").SHOP_INVENTORY.replace("hosts:\n", f"drill:\n  ping_url: {url}\nhosts:\n", 1)
    )
    removed = []
    monkeypatch.setattr(drill.sandbox, "up", lambda name, hosts: {"hosts": {}})
    monkeypatch.setattr(drill.sandbox, "down", lambda name: removed.append(name) or 0)
    monkeypatch.setattr(stand_in, "run_pyinfra", lambda command, variable, log, label: log.write_text("boom\n") or 1)
    monkeypatch.setattr(vault_client, "run_on_vault", unreachable_vault)

    code = drill.run(str(path), given_report_dir=str(tmp_path / "drills"))

    assert code == 1
    (entry,) = drill_report.history(tmp_path / "drills", "shop")
    assert not entry["passed"] and entry["failed_checks"] == 1
    saved = json.loads((tmp_path / "drills" / entry["report"].rsplit("/", 1)[-1]).read_text())
    assert saved["checks"] == [{"host": "-", "name": "restore.py succeeds", "ok": False, "detail": "boom"}]
    assert saved["archive_not_drilled"] == ["db1"]  # the report never passes a dump's age off as the archive's
    drill_sandbox = drill.sandbox_name(load_environment(path))
    assert drill_sandbox.startswith("drill-shop-") and removed == [drill_sandbox, drill_sandbox]  # leftovers, its own
    assert [(method, path) for method, path, _ in received] == [("GET", "/ping/abc/start"), ("POST", "/ping/abc/fail")]
    assert "restore.py succeeds" in received[1][2]
    page = (tmp_path / "drills" / entry["report"].rsplit("/", 1)[-1]).with_suffix(".html").read_text()
    assert '<div id="drill" class="failed">' in page and "<td>restore.py succeeds</td>" in page
    assert "backup status not gathered: vault1: unreachable" in page


def unreachable_vault(environment, *arguments, **options):
    raise PhoenixError("vault1: unreachable")


def test_a_check_that_raises_is_a_failed_check_and_the_others_still_run(monkeypatch):
    def broken(target, context):
        raise RuntimeError("connection refused")

    def fine(target, context):
        return drill_checks.Check(target.name, "fine", True)

    monkeypatch.setattr(drill_checks, "CHECKS", [(lambda data: True, broken), (lambda data: True, fine)])
    target = drill_checks.Target("web1", {"roles": []}, "phx-drill-shop-web1", "172.30.0.2")
    checks = drill_checks.run_checks({"web1": target})
    assert [(check.name, check.ok) for check in checks] == [("broken", False), ("fine", True)]
    assert checks[0].detail == "RuntimeError: connection refused"


def app_host(name: str, database: str, **app) -> dict:
    settings = {"database": {"host": "localhost", "name": database}, "transient_tables": [], **app}
    return {"roles": ["nginx", "app", "postgres"], "app": settings}


def test_the_live_recount_leaves_out_the_apps_transient_tables_and_still_catches_the_others(monkeypatch):
    live = {"kinto": ["public.cache\t0", "public.objects\t3"], "wiki": ["public.wiki_article\t0"]}
    monkeypatch.setattr(drill_checks, "psql", lambda target, database, query: live[database])
    restored = {"manifest_tables": {"public.cache": 1, "public.objects": 3}}
    kinto1 = drill_checks.Target(
        "kinto1", app_host("kinto1", "kinto", transient_tables=["public.cache"]), "c1", "172.30.0.2",
        {"db-kinto": {**restored, "database": "kinto"}},
    )  # fmt: skip
    wiki1 = drill_checks.Target(
        "wiki1", app_host("wiki1", "wiki"), "c2", "172.30.0.3",
        {"db-wiki": {"database": "wiki", "manifest_tables": {"public.wiki_article": 1}}},
    )  # fmt: skip
    context = {"targets": {"kinto1": kinto1, "wiki1": wiki1}, "database_host": lambda target: target.name}

    (kinto_rows,) = drill_checks.rows_equal_manifest(kinto1, context)
    (wiki_rows,) = drill_checks.rows_equal_manifest(wiki1, context)

    assert kinto_rows.ok and "(app.transient_tables left out: public.cache)" in kinto_rows.detail
    assert not wiki_rows.ok and wiki_rows.detail == "manifest, live: {'public.wiki_article': [1, 0]}"


def test_each_app_is_asked_for_a_known_record_with_its_own_query(monkeypatch):
    asked = []
    monkeypatch.setattr(drill_checks, "psql", lambda target, database, query: asked.append((database, query)) or [])
    targets = {
        name: drill_checks.Target(name, app_host(name, name, known_record_query=f"SELECT '/{name}'"), name, "")
        for name in ("kinto", "wiki")
    }
    context = {"targets": targets, "database_host": lambda target: target.name}

    checks = [drill_checks.known_record_served(target, context) for target in targets.values()]

    assert asked == [("kinto", "SELECT '/kinto'"), ("wiki", "SELECT '/wiki'")]
    assert [(check.ok, check.detail) for check in checks] == [(False, "the restored database has no record")] * 2


def test_a_second_drill_of_one_environment_refuses_at_once_naming_the_running_one(write_inventory, monkeypatch):
    path = write_inventory()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_DRILL_LOCK, str(path)], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        touched = []
        monkeypatch.setattr(drill.sandbox, "up", lambda name, hosts: touched.append(name) or {"hosts": {}})
        monkeypatch.setattr(drill.sandbox, "down", lambda name: touched.append(name) or 0)

        with pytest.raises(PhoenixError) as refused:
            drill.run(str(path))

        assert touched == []
        assert f"a drill of shop is already running (pid {holder.pid}, started " in str(refused.value)
        drill_sandbox = drill.sandbox_name(load_environment(path))
        assert f"share the sandbox {drill_sandbox}, so this one stopped before touching it" in str(refused.value)
    finally:
        holder.kill()
        holder.wait()


def test_the_drill_lock_is_free_again_after_a_drill_ends_or_its_process_dies(write_inventory):
    environment = load_environment(write_inventory())
    with drill.exclusive(environment):
        pass
    killed = subprocess.run([sys.executable, "-c", HOLD_DRILL_LOCK, str(environment.path), "die"], capture_output=True)
    assert killed.returncode == 9

    with drill.exclusive(environment):  # no stale lock: neither raises
        pass


def test_drill_sandboxes_of_two_checkouts_differ_and_one_checkouts_stays_the_same(tmp_path):
    first, second = tmp_path / "one" / ".phoenix", tmp_path / "two" / ".phoenix"
    assert drill.drill_sandbox_name("prod", first) == drill.drill_sandbox_name("prod", first)
    assert drill.drill_sandbox_name("prod", first) != drill.drill_sandbox_name("prod", second)
    assert drill.drill_sandbox_name("prod", first).startswith("drill-prod-")


def test_the_shared_history_and_the_local_one_merge_each_drill_once_oldest_first():
    local = [{"started": "2026-11-10T04:00:00+00:00", "where": "here"}, {"started": "2026-11-17T04:00:00+00:00"}]
    shared = [{"started": "2026-11-17T04:00:00+00:00", "where": "vault"}, {"started": "2026-11-14T04:00:00+00:00"}]
    merged = drill_report.merged(shared, local)
    assert [entry["started"][:10] for entry in merged] == ["2026-11-10", "2026-11-14", "2026-11-17"]
    assert merged[0]["where"] == "here" and merged[2]["where"] == "vault"


def test_a_drill_is_recorded_on_the_vault_with_its_checks(write_inventory, tmp_path, monkeypatch):
    sent = []
    monkeypatch.setattr(
        vault_client, "run_on_vault", lambda environment, *arguments, **options: sent.append((arguments, options))
    )
    vault_client.record_drill(load_environment(write_inventory()), drill_report.history_line(report(NOW), tmp_path))
    ((arguments, options),) = sent
    assert arguments == ("drill-record",)
    record = json.loads(options["stdin"])
    assert record["started"] == NOW.isoformat(timespec="seconds") and record["checks"][1]["detail"] == "x | y"
