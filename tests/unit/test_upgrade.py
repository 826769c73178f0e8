"""The upgrade's decisions (phoenix/upgrade.py) against recording fake hosts and a fake vault."""

from __future__ import annotations

import dataclasses
import json
import shlex

import pytest

from phoenix import upgrade
from phoenix.errors import PhoenixError
from phoenix.upgrade import IN_PROGRESS, Plan, Release, StepFailed, Upgrade

OLD_WHEEL = "/srv/links/releases/phoenix_links-1.0.0-py3-none-any.whl"
NEW_WHEEL = "/srv/links/releases/phoenix_links-2.0.0-py3-none-any.whl"


class FakeHost:
    """A host that answers like a real one: the installed release's version in its health answer, the pin
    it was asked for in its backup run's records. `rules` (by how a command starts) override that."""

    def __init__(self, name: str, jobs: list[str], vault: FakeVault, rules: dict | None = None):
        self.name, self.jobs, self.vault = name, jobs, vault
        self.rules = rules or {}
        self.commands: list[str] = []
        self.in_progress = ""
        self.version = "1.0.0"

    def run(self, command: str, timeout: int = 900) -> str:
        self.commands.append(command)
        for text, answer in self.rules.items():
            if command.startswith(text):
                if isinstance(answer, Exception):
                    raise answer
                return answer
        if command.startswith("pip install"):
            self.version = command.split("phoenix_links-")[1].split("-")[0]
        if command.startswith("phoenix-backup run all"):
            words = shlex.split(command)
            assert words[-1] == "--records"
            self.vault.backed_up(self.name, self.jobs, words[words.index("--pin") + 1])
            records = {job: self.vault.status(self.name, job) for job in self.jobs}
            return "[job] done\n" + json.dumps(records) + "\n"
        if command == "curl health":
            return json.dumps({"status": "ok", "version": self.version, "schema_version": "0002"})
        if command.startswith(f"cat {IN_PROGRESS}"):
            return self.in_progress
        if f"rm -f {IN_PROGRESS}" in command:
            self.in_progress = ""
        return ""

    def write(self, path: str, text: str) -> None:
        assert path == IN_PROGRESS
        self.in_progress = text

    def ran(self, text: str) -> list[str]:
        return [command for command in self.commands if text in command]


class FakeVault:
    """Holds the runs the fake hosts back up; `verified` says whether its check verifies them."""

    def __init__(self, verified: bool = True):
        self.calls: list[tuple[str, ...]] = []
        self.verified = verified
        self.check_problem = ""  # the check also found a bad run (an older one, say)
        self.runs: dict[str, list[dict]] = {}

    def backed_up(self, host: str, jobs: list[str], pin: str) -> None:
        """The host's own --pin only asks: the run is pinned once the vault is told to pin it."""
        self.runs[host] = [
            {"run": f"run-{host}-{job}", "job": job, "verified": False, "pin": "", "asked": pin} for job in jobs
        ]

    def status(self, host: str, job: str) -> dict:
        run = next(run for run in self.runs[host] if run["job"] == job)
        return {"result": "ok", "run": run["run"], "pin": run["asked"]}

    def __call__(self, *arguments: str) -> str:
        self.calls.append(arguments)
        if arguments[0] == "check":
            for run in self.runs.get(arguments[2], []):
                run["verified"] = self.verified
            if self.check_problem:
                raise PhoenixError(f"vault1: `phoenix-vault check` failed: {self.check_problem}")
        if arguments[0] == "runs":
            return json.dumps({"runs": self.runs.get(arguments[2], [])})
        if arguments[0] == "pin":
            run_id, client, reason = arguments[1], arguments[3], arguments[5]
            next(run for run in self.runs[client] if run["run"] == run_id)["pin"] = reason
        return "{}"

    def holds(self) -> list[str]:
        return [call[0] for call in self.calls if call[0] in ("hold", "release")]


def make_upgrade(
    web_rules=None, db_rules=None, verified=True, static=False
) -> tuple[Upgrade, FakeHost, FakeHost, FakeVault]:
    vault = FakeVault(verified)
    rules = {
        "sha256sum": f"{'1' * 64}  {OLD_WHEEL}",
        "print installed-wheel": OLD_WHEEL,
        "alembic heads": "0002 (head)",
        "cat /srv/links/.static-release": "static-1",
    }
    web = FakeHost("web2", ["files"], vault, {**rules, **(web_rules or {})})
    db = FakeHost("db1", ["db-links"], vault, db_rules)
    plan = Plan(
        host="web2",
        app={"name": "links"},
        target=Release("2.0.0", NEW_WHEEL, "2" * 64, "migrated-2", "static-2" if static else ""),
        reason="pre-upgrade web2",
        timers={"web2": ["phoenix-backup-files.timer"], "db1": ["phoenix-backup-db-links.timer"]},
        database_host="db1",
        database_job="db-links",
        file_paths=["/var/lib/links/uploads"],
        smoke_commands={"health": "curl health", "smoke": "curl smoke"},
        expected_schema_command="alembic heads",
        commands={
            "install": "pip install {wheel}",
            "migrate": "alembic upgrade head",
            "start": "systemctl restart links",
            "stop": "systemctl stop links",
            "health_wait": "wait-for-health",
            "installed_wheel": "print installed-wheel",
            **({"static": "collectstatic"} if static else {}),
        },
        markers={
            "installed": "/srv/links/.installed-release",
            "migrated": "/srv/links/.migrated-release",
            **({"static": "/srv/links/.static-release"} if static else {}),
        },
    )
    lines: list[str] = []
    runner = Upgrade(plan=plan, shells={"web2": web, "db1": db}, vault=vault, say=lines.append)
    runner.lines = lines
    return runner, web, db, vault


def history_records(host: FakeHost) -> list[dict]:
    records = []
    for command in host.ran(upgrade.HISTORY):
        text = command.split("printf '%s\\n' ", 1)[1].rsplit(" >> ", 1)[0]
        records.append(json.loads(text.strip("'")))
    return records


def test_an_upgrade_pauses_backs_up_pins_waits_for_the_vault_then_installs_migrates_and_resumes():
    runner, web, db, vault = make_upgrade()
    record = runner.run()
    assert record["outcome"] == "upgraded"
    order = [c for c in web.commands if c.split()[0] in ("systemctl", "phoenix-backup", "pip", "alembic")]
    assert order[:3] == ["systemctl stop phoenix-backup-files.timer", "systemctl stop links", order[2]]
    assert order[2].startswith("phoenix-backup run all --trigger pre-upgrade --pin")
    assert web.ran(f"pip install {NEW_WHEEL}") and web.ran("alembic upgrade head")
    assert db.ran("systemctl stop phoenix-backup-db-links.timer") and db.ran("systemctl start phoenix-backup-db-links")
    assert web.ran("systemctl start phoenix-backup-files.timer")
    assert vault.holds() == ["hold", "hold", "release", "release"]
    assert ("check", "--client", "db1") in vault.calls
    assert record["pinned_runs"] == {"web2/files": "run-web2-files", "db1/db-links": "run-db1-db-links"}
    pinned = [call[:4] for call in vault.calls if call[0] == "pin"]  # by the vault, asked from here
    assert pinned == [("pin", "run-web2-files", "--client", "web2"), ("pin", "run-db1-db-links", "--client", "db1")]
    assert web.in_progress == "" and history_records(web)[-1]["outcome"] == "upgraded"


def test_without_a_verified_pre_upgrade_backup_nothing_is_installed_and_the_old_release_runs_again():
    runner, web, db, vault = make_upgrade(verified=False)
    with pytest.raises(StepFailed, match="not verified"):
        runner.run()
    assert not web.ran("pip install") and not web.ran("alembic upgrade")
    assert web.ran("systemctl restart links")
    assert runner.record["outcome"] == "not upgraded"
    assert web.ran("systemctl start phoenix-backup-files.timer") and db.ran("systemctl start phoenix-backup-db-links")
    assert vault.holds()[-1] == "release" and web.in_progress == ""


def test_a_problem_the_check_finds_in_an_older_run_does_not_block_verified_pre_upgrade_runs():
    runner, web, db, vault = make_upgrade()
    vault.check_problem = "run 2026-old NOT verified: manifest names another snapshot"
    assert runner.run()["outcome"] == "upgraded"


def test_unverified_pre_upgrade_runs_stop_the_upgrade_with_what_the_check_said():
    runner, web, db, vault = make_upgrade(verified=False)
    vault.check_problem = "restic check failed: pack abc is damaged"
    with pytest.raises(StepFailed, match="not verified and pinned there; the vault's check: .*pack abc is damaged"):
        runner.run()


def test_a_failed_migration_reinstalls_the_old_release_and_restores_the_pinned_runs():
    failure = StepFailed("web2: `alembic upgrade head` failed:\nRuntimeError: broken halfway")
    runner, web, db, vault = make_upgrade(web_rules={"alembic upgrade head": failure})
    with pytest.raises(StepFailed, match="ROLLED BACK to 1.0.0: .*broken halfway"):
        runner.run()
    installs = web.ran("pip install")
    assert installs == [f"pip install {NEW_WHEEL}", f"pip install {OLD_WHEEL}"]
    assert db.ran("phoenix-backup restore-db db-links --run run-db1-db-links --force")
    assert web.ran("phoenix-backup restore-files --run run-web2-files --paths /var/lib/links/uploads --owner links")
    record = history_records(web)[-1]
    assert (record["outcome"], record["rolled_back_to"]) == ("rolled back", "1.0.0")
    assert "broken halfway" in record["error"]
    assert web.ran("systemctl start phoenix-backup-files.timer") and vault.holds()[-1] == "release"
    assert "ROLLED BACK" in "\n".join(runner.lines)


def test_an_unexpected_error_while_installing_still_rolls_back_to_the_old_release():
    runner, web, db, vault = make_upgrade(web_rules={"alembic upgrade head": TypeError("an argument too many")})
    with pytest.raises(StepFailed, match="ROLLED BACK to 1.0.0: TypeError: an argument too many"):
        runner.run()
    assert web.ran(f"pip install {OLD_WHEEL}") and web.ran("systemctl restart links")
    assert history_records(web)[-1]["outcome"] == "rolled back" and web.in_progress == ""


def test_a_failed_rollback_keeps_the_in_progress_record_for_the_next_run():
    runner, web, db, vault = make_upgrade(
        web_rules={"alembic upgrade head": StepFailed("migration failed")},
        db_rules={"phoenix-backup restore-db": StepFailed("db1: restore-db failed")},
    )
    with pytest.raises(StepFailed, match="restore-db failed"):
        runner.run()
    kept = json.loads(web.in_progress)
    assert kept["phase"] == "upgrading" and kept["pinned_runs"]["db1/db-links"] == "run-db1-db-links"
    assert history_records(web)[-1]["outcome"] == "failed"
    assert web.ran("systemctl start phoenix-backup-files.timer")  # timers resume even so


def test_the_next_run_rolls_back_an_upgrade_killed_while_installing_then_upgrades():
    runner, web, db, vault = make_upgrade()
    web.in_progress = json.dumps(
        {
            "host": "web2",
            "app": "links",
            "from": "1.0.0",
            "to": "2.0.0",
            "from_wheel": OLD_WHEEL,
            "from_sha256": "1" * 64,
            "previous_migrated_marker": "migrated-1",
            "started": "2026-11-21T09:00:00+00:00",
            "phase": "upgrading",
            "timers": {"web2": ["phoenix-backup-files.timer"], "db1": ["phoenix-backup-db-links.timer"]},
            "pinned_runs": {"web2/files": "killed-files", "db1/db-links": "killed-db"},
            "steps": {},
        }
    )
    record = runner.run()
    outcomes = [entry["outcome"] for entry in history_records(web)]
    assert outcomes == ["rolled back after an interruption", "upgraded"]
    assert db.ran("restore-db db-links --run killed-db --force")
    first_start = web.commands.index("systemctl start phoenix-backup-files.timer")
    assert first_start < web.commands.index(web.ran("phoenix-backup run all")[0])  # resumed before anything else
    assert record["outcome"] == "upgraded"


def test_the_same_release_again_changes_nothing():
    runner, web, db, vault = make_upgrade(web_rules={"sha256sum": f"{'2' * 64}  {OLD_WHEEL}"})
    assert runner.run()["outcome"] == "unchanged"
    assert vault.calls == [] and not web.ran("systemctl")


def test_describe_says_what_happened_and_why_in_a_few_lines():
    record = {
        "host": "web1",
        "app": "links",
        "from": "1.0.0",
        "to": "2.1.0",
        "outcome": "rolled back",
        "pin": "pre-upgrade web1",
        "pinned_runs": {"web1/db-links": "R1"},
        "error": "web1: `alembic upgrade head` failed:\n  File x\nRuntimeError: broken",
        "steps": {"install 2.1.0": 1.0, "migrate the database": 0.5},
    }
    text = upgrade.describe(record)
    assert text.splitlines()[0] == (
        "web1: ROLLED BACK: the upgrade of links to 2.1.0 failed; 1.0.0 runs again on the pre-upgrade data"
    )
    assert "reason: web1: `alembic upgrade head` failed: ... RuntimeError: broken" in text
    assert "web1/db-links run R1" in text and "total: 1.5s" in text


def test_an_upgrade_collects_the_new_release_static_files_before_it_starts_and_a_rollback_the_old_ones():
    runner, web, db, vault = make_upgrade(static=True)
    assert runner.run()["outcome"] == "upgraded"
    after_install = web.commands[web.commands.index(f"pip install {NEW_WHEEL}") :]
    assert after_install.index("alembic upgrade head") < after_install.index("collectstatic")
    assert after_install.index("collectstatic") < after_install.index("systemctl restart links")
    assert any("static-2" in command and ".static-release" in command for command in web.commands)

    failure = StepFailed("web2: `alembic upgrade head` failed")
    runner, web, db, vault = make_upgrade(web_rules={"alembic upgrade head": failure}, static=True)
    with pytest.raises(StepFailed, match="ROLLED BACK"):
        runner.run()
    after_reinstall = web.commands[web.commands.index(f"pip install {OLD_WHEEL}") :]
    assert "collectstatic" in after_reinstall  # the old release's files, not the failed one's
    assert any("static-1" in command and ".static-release" in command for command in after_reinstall)


def test_an_app_without_a_static_command_collects_nothing():
    runner, web, db, vault = make_upgrade()
    runner.run()
    assert not web.ran("collectstatic") and not web.ran(".static-release")


def test_an_app_whose_health_check_answers_plain_text_upgrades_on_its_status_alone():
    runner, web, _, _ = make_upgrade(web_rules={"curl health": "ok\n"})
    record = runner.run()
    assert record["outcome"] == "upgraded"
    assert upgrade.health_document("ok\n") == {} and upgrade.health_document("[1]") == {}
    assert upgrade.health_document('{"version": "2.0.0"}') == {"version": "2.0.0"}


def test_an_install_command_with_shell_braces_of_its_own_gets_the_archive_path():
    # a module:callable app's install command ends with the WSGI target check, `{ problem=$(...) || {...}; }`
    runner, web, _, _ = make_upgrade()
    runner.plan.commands["install"] = "pip install {wheel} && { problem=$(check) || { echo no; false; }; }"
    assert runner.run()["outcome"] == "upgraded"
    assert web.ran(f"pip install {NEW_WHEEL} && {{ problem=$(check) || {{ echo no; false; }}; }}")


def test_an_archived_database_gets_a_restore_point_named_after_the_upgrade_right_after_the_pinned_backup():
    runner, web, db, vault = make_upgrade()
    runner.plan = dataclasses.replace(runner.plan, restore_point=True)

    record = runner.run()

    name = record["restore_point"]
    assert name.startswith("pre-upgrade-web2-") and name.endswith("Z")
    created = db.ran("pg_create_restore_point")
    sql = f"SELECT pg_create_restore_point('{name}')"
    assert created == [f"runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 -tA -c {shlex.quote(sql)}"]
    # after the app stopped and the pinned backup ran: the moment the data were pinned
    assert db.commands.index(created[0]) > db.commands.index(db.ran("phoenix-backup run all")[0])
    assert f"db1: restore point {name} names the moment the upgrade began" in runner.lines
    assert f"restore.py --data restore_point={name}" in upgrade.describe(record)


def test_a_database_not_archived_gets_no_restore_point():
    runner, web, db, vault = make_upgrade()

    assert "restore_point" not in runner.run() and not db.ran("pg_create_restore_point")
