"""Real apps nobody here wrote, deployed from an inventory, a lock and a config alone.

One sandbox, converged in one run: kinto1 runs Kinto (Pyramid, PostgreSQL backend, 53 locked
packages from PyPI, among them zope.* namespace packages), wiki1 runs django-wiki (Django, 21
locked packages, inside the user's small project: settings from app.environment, static files
collected for nginx), each with its own PostgreSQL, both backing up to vault1. From blank
containers: deploy; records written through Kinto's HTTP API and an article through the wiki's
pages; both app hosts destroyed before any nightly backup ran (the vault's archive streamed their
WAL); one restore.py; the records and the article served again; for each app, an upgrade.py whose
migration fails rolls back to the previous release, which serves the same data, then upgrade.py
to the next release (Kinto 26.4.0 -> 26.5.0; the wiki's project from django-wiki 0.12.2 to
0.13.0, whose django-nyt brings two migrations); last, the nightly dumps and a drill of them
(`--dumps`: the main sandbox's drill proves the archive), which restores both apps into throwaway
hosts and checks each one's own known record.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from phoenix import sandbox, sandbox_ssh, sandbox_state
from phoenix.container_shell import enter_argv
from phoenix.drill import drill_sandbox_name
from tests.e2e.conftest import REPOSITORY, SANDBOX_NAME, pyinfra_argv, run_phoenix

INVENTORY = "tests/e2e/own_apps/apps.yml"
INVENTORY_SCRIPT = "tests/e2e/own_apps/apps.py"
KINTO_SANDBOX = f"{SANDBOX_NAME}-own-apps"
SERVER_NAME = "kinto.sandbox.test"
CREDENTIALS = "alice:correct-horse"
WIKI = "https://wiki.sandbox.test"
WIKI_ADMIN = ("admin", "wiki-admin-password")
RESTORE_REPORT = "/tmp/phoenix-e2e-restore-{host}.json"  # restore.py's step timings, for the RTO figure


def sh(host: str, command: str) -> subprocess.CompletedProcess:
    name = sandbox_state.container_name(KINTO_SANDBOX, host)
    return subprocess.run(enter_argv(name, ["bash", "-c", command]), capture_output=True, text=True)


def kinto(method: str, path: str, document: dict | None = None) -> dict:
    """One request to Kinto's HTTP API through nginx on kinto1, as alice; returns the JSON answer."""
    body = f"-H 'Content-Type: application/json' -d '{json.dumps(document)}'" if document is not None else ""
    answer = sh(
        "kinto1",
        f"curl -fsS -k --max-time 20 --resolve {SERVER_NAME}:443:127.0.0.1 -u {CREDENTIALS} -X {method} {body}"
        f" https://{SERVER_NAME}/v1{path}",
    )
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout)


def wiki_page(path: str) -> subprocess.CompletedProcess:
    """An anonymous reader's GET of a wiki page through nginx on wiki1."""
    return sh("wiki1", f"curl -fsS -k --max-time 20 --resolve wiki.sandbox.test:443:127.0.0.1 {WIKI}{path}")


def write_wiki_article(title: str, content: str) -> None:
    """As the wiki's admin, through its own pages (login form, then the create-root form), as a browser does:
    cookies kept, the CSRF token sent back."""
    user, password = WIKI_ADMIN
    curl = (
        'jar=$(mktemp); c() { curl -fsS -k --max-time 20 --resolve wiki.sandbox.test:443:127.0.0.1 -b "$jar"'
        ' -c "$jar" -o /dev/null "$@"; }; token() { awk \'$6 == "csrftoken" {print $7}\' "$jar"; }'
    )
    script = (
        f"set -e; {curl}; c {WIKI}/_accounts/login/"
        f' && c -e {WIKI}/_accounts/login/ -H "X-CSRFToken: $(token)" --data-urlencode username={user}'
        f" --data-urlencode password={password} {WIKI}/_accounts/login/"
        f" && c {WIKI}/create-root/"
        f' && c -e {WIKI}/create-root/ -H "X-CSRFToken: $(token)" --data-urlencode {shlex.quote(f"title={title}")}'
        f" --data-urlencode {shlex.quote(f'content={content}')} {WIKI}/create-root/"
    )
    written = sh("wiki1", script)
    assert written.returncode == 0, written.stderr


@pytest.fixture(scope="module")
def kinto_incident():
    """Deploys Kinto, writes records, backs up, destroys kinto1, restores it; removes the sandbox afterwards."""
    try:
        deployed = run_phoenix("up", INVENTORY, "--sandbox", KINTO_SANDBOX, timeout=1800)
        assert deployed.returncode == 0, deployed.stderr[-6000:]
        kinto("PUT", "/buckets/shop", {"permissions": {"read": ["system.Everyone"]}})  # a public catalogue
        kinto("PUT", "/buckets/shop/collections/orders", {})
        items = [f"order-{uuid.uuid4()}" for _ in range(3)]
        records = [kinto("POST", "/buckets/shop/collections/orders/records", {"data": {"item": i}}) for i in items]
        # the wiki's admin, made on the server as Django's docs say
        user, password = WIKI_ADMIN
        admin = sh(
            "wiki1",
            "set -a && . /etc/wiki/environment && cd /srv/wiki && runuser -u wiki -- env"
            f" DJANGO_SUPERUSER_USERNAME={user} DJANGO_SUPERUSER_PASSWORD={password}"
            " DJANGO_SUPERUSER_EMAIL=admin@wiki.sandbox.test /srv/wiki/venv/bin/python -m django createsuperuser"
            " --noinput",
        )
        assert admin.returncode == 0, admin.stderr
        article = f"Ship order {uuid.uuid4()} on Monday"
        write_wiki_article("Orders", article)
        # no backup run: both servers are lost before their first nightly one, the archive alone has their data
        for host in ("kinto1", "wiki1"):
            destroyed = sandbox_state.container_name(KINTO_SANDBOX, host)
            subprocess.run(["docker", "rm", "-f", destroyed], check=True, capture_output=True)
        sandbox.up(KINTO_SANDBOX, ["kinto1", "wiki1"])
        restored = subprocess.run(
            pyinfra_argv(
                # the runbook's line for lost servers: only them, as root, the only login of a blank box
                *("--limit", "kinto1", "--limit", "wiki1", "--data", "ssh_user=root"),
                *("--data", "snapshot=latest", "--data", f"restore_report={RESTORE_REPORT}"),
                *(INVENTORY_SCRIPT, "restore.py"),
            ),
            cwd=REPOSITORY,
            env=dict(os.environ, PHOENIX_SANDBOX=KINTO_SANDBOX),
            capture_output=True,
            text=True,
            timeout=1800,
        )
        yield {"deployed": deployed, "records": records, "article": article, "restored": restored}
    finally:
        if not os.environ.get("PHOENIX_E2E_KEEP"):
            sandbox.down(KINTO_SANDBOX)


def test_kinto_deploys_from_its_inventory_lock_and_template(kinto_incident):
    heartbeat = kinto("GET", "/__heartbeat__")
    assert heartbeat["storage"] is True and heartbeat["permission"] is True
    # an isolated venv: nothing of Debian's site-packages is on the app's path to shadow its zope.* packages
    python = "/srv/kinto/venv/bin/python -c 'import sys, zope.interface, zope.sqlalchemy; print(sys.path)'"
    paths = sh("kinto1", python)
    assert paths.returncode == 0, paths.stderr
    assert "/usr/lib/python3/dist-packages" not in paths.stdout
    releases = sh("kinto1", "ls /srv/kinto/releases/").stdout.split()
    assert len(releases) == 1 and releases[0].startswith("kinto-26.4.0-") and releases[0].endswith(".tar")


def test_kinto_records_are_served_again_after_restore(kinto_incident):
    restored = kinto_incident["restored"]
    assert restored.returncode == 0, restored.stderr[-6000:]
    served = kinto("GET", "/buckets/shop/collections/orders/records")["data"]
    assert {record["data"]["item"] for record in kinto_incident["records"]} <= {record["item"] for record in served}


def test_the_wiki_article_is_served_again_after_restore(kinto_incident):
    assert kinto_incident["restored"].returncode == 0, kinto_incident["restored"].stderr[-6000:]
    page = wiki_page("/")
    assert page.returncode == 0, page.stderr
    assert kinto_incident["article"] in page.stdout and "Orders" in page.stdout


def test_django_gets_its_settings_from_an_environment_file_only_its_group_reads(kinto_incident):
    assert kinto_incident["restored"].returncode == 0
    owner = sh("wiki1", "stat -c '%U:%G %a' /etc/wiki/environment").stdout.split()
    assert owner == ["root:wiki", "640"]
    secret = sh("wiki1", "sed -n \"s/^DJANGO_SECRET_KEY='\\(.*\\)'$/\\1/p\" /etc/wiki/environment").stdout.strip()
    assert len(secret) > 20
    deployed = kinto_incident["deployed"]
    assert secret not in deployed.stdout + deployed.stderr
    assert secret not in kinto_incident["restored"].stdout + kinto_incident["restored"].stderr
    # app.workers: gunicorn's master and three workers, as the wiki's user
    assert sh("wiki1", "pgrep -u wiki -c -f gunicorn").stdout.strip() == "4"


def test_the_wiki_static_files_are_collected_and_served_by_nginx(kinto_incident):
    assert kinto_incident["restored"].returncode == 0
    # Django serves no static files with DEBUG off: an answer here comes from nginx, out of what collectstatic wrote
    css = wiki_page("/static/wiki/bootstrap/css/wiki-bootstrap.min.css")
    assert css.returncode == 0, css.stderr
    assert len(css.stdout) > 10000
    assert "/static/wiki/bootstrap/css/wiki-bootstrap.min.css" in wiki_page("/").stdout


def test_a_deploy_after_the_restore_changes_nothing(kinto_incident):
    assert kinto_incident["restored"].returncode == 0
    deployed = subprocess.run(
        pyinfra_argv("--json", INVENTORY_SCRIPT, "deploy.py"),
        cwd=REPOSITORY,
        env=dict(os.environ, PHOENIX_SANDBOX=KINTO_SANDBOX),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert deployed.returncode == 0, deployed.stderr[-4000:]
    results = json.loads(deployed.stdout)["results"]
    assert [operation["name"] for operation in results["operations"] if operation["success"]] == []


def upgrade(version: str, host: str = "kinto1") -> subprocess.CompletedProcess:
    """upgrade.py on `host` to release `version` of its app.releases; returns the finished process."""
    return subprocess.run(
        pyinfra_argv("--limit", host, "--data", f"version={version}", INVENTORY_SCRIPT, "upgrade.py"),
        cwd=REPOSITORY, env=dict(os.environ, PHOENIX_SANDBOX=KINTO_SANDBOX),
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip


def test_an_upgrade_whose_migration_fails_rolls_back_and_the_previous_release_serves_the_records(kinto_incident):
    assert kinto_incident["restored"].returncode == 0
    failed = upgrade("26.5.0-no-driver")  # its lock lacks psycopg2-binary: `kinto migrate` cannot connect
    assert failed.returncode != 0
    assert "kinto1: upgrade to 26.5.0 ROLLED BACK to 26.4.0" in failed.stderr, failed.stderr[-4000:]
    assert (
        "app kinto: the migrate command `/srv/kinto/venv/bin/kinto migrate --ini {config}` (app.migrate_command)"
        " failed: ModuleNotFoundError: No module named 'psycopg2': correct the command" in failed.stderr
    )
    version = sh("kinto1", "/srv/kinto/venv/bin/python -c 'import kinto; print(kinto.__version__)'")
    assert version.stdout.strip() == "26.4.0"
    served = kinto("GET", "/buckets/shop/collections/orders/records")["data"]
    assert {record["data"]["item"] for record in kinto_incident["records"]} <= {record["item"] for record in served}
    last = json.loads(sh("kinto1", "tail -n 1 /var/lib/phoenix/upgrade/history.jsonl").stdout)
    assert (last["outcome"], last["rolled_back_to"]) == ("rolled back", "26.4.0")


def test_upgrade_to_the_next_kinto_release_keeps_the_records(kinto_incident):
    assert kinto_incident["restored"].returncode == 0
    upgraded = upgrade("26.5.0")
    assert upgraded.returncode == 0, upgraded.stderr[-4000:]
    assert "kinto 26.4.0 -> 26.5.0" in upgraded.stderr
    version = sh("kinto1", "/srv/kinto/venv/bin/python -c 'import kinto; print(kinto.__version__)'")
    assert version.stdout.strip() == "26.5.0"
    served = kinto("GET", "/buckets/shop/collections/orders/records")["data"]
    assert {record["data"]["item"] for record in kinto_incident["records"]} <= {record["item"] for record in served}
    releases = sorted(sh("kinto1", "ls /srv/kinto/releases/").stdout.split())
    # the previous one kept for rollback (and the broken 26.5.0 of the rolled-back upgrade)
    assert [name.split("-")[1] for name in releases] == ["26.4.0", "26.5.0", "26.5.0"]


def as_wiki(command: str) -> subprocess.CompletedProcess:
    """A command of the wiki's venv on wiki1, as its user with its environment (as the docs say)."""
    return sh("wiki1", f"set -a && . /etc/wiki/environment && cd /srv/wiki && runuser -u wiki -- {command}")


def wiki_release() -> str:
    """The django-wiki release installed in the wiki's venv."""
    found = as_wiki("/srv/wiki/venv/bin/python -c 'from importlib.metadata import version; print(version(\"wiki\"))'")
    assert found.returncode == 0, found.stderr
    return found.stdout.strip()


def nyt_migrations() -> str:
    """Which of django-nyt's migrations the installed release knows and the database has ([X])."""
    listed = as_wiki("/srv/wiki/venv/bin/python -m django showmigrations django_nyt")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


def test_a_wiki_upgrade_whose_migration_fails_rolls_back_and_the_previous_release_serves_the_article(
    kinto_incident,
):
    assert kinto_incident["restored"].returncode == 0
    assert wiki_release() == "0.12.2"
    failed = upgrade("wiki-0.13.0-no-driver", host="wiki1")  # its lock lacks psycopg: migrate cannot connect
    assert failed.returncode != 0
    assert "wiki1: upgrade to 1.0.0 ROLLED BACK to 1.0.0" in failed.stderr, failed.stderr[-4000:]
    assert "Error loading psycopg2 or psycopg module" in failed.stderr
    assert wiki_release() == "0.12.2"
    assert "0011_" not in nyt_migrations()  # 0.12.2's django-nyt 1.4 stops at 0010
    page = wiki_page("/")
    assert page.returncode == 0 and kinto_incident["article"] in page.stdout
    last = json.loads(sh("wiki1", "tail -n 1 /var/lib/phoenix/upgrade/history.jsonl").stdout)
    assert (last["outcome"], last["rolled_back_to"]) == ("rolled back", "1.0.0")


def test_upgrade_to_the_next_django_wiki_release_migrates_and_keeps_the_article(kinto_incident):
    assert kinto_incident["restored"].returncode == 0
    upgraded = upgrade("wiki-0.13.0", host="wiki1")
    assert upgraded.returncode == 0, upgraded.stderr[-4000:]
    assert wiki_release() == "0.13.0"
    migrations = nyt_migrations()
    assert "[X] 0011_add_interval_to_disable_email_notifications" in migrations, migrations
    assert "[X] 0012_alter_big_auto_field" in migrations, migrations
    page = wiki_page("/")
    assert page.returncode == 0 and kinto_incident["article"] in page.stdout
    # django-wiki 0.13.0's own static files, collected again for nginx
    assert wiki_page("/static/wiki/bootstrap/css/wiki-bootstrap.min.css").returncode == 0


def ssh_as(user: str, host: str, command: str) -> subprocess.CompletedProcess:
    """`command` on sandbox host `host` over SSH as `user`, with the sandbox's key, its host key checked."""
    address = sandbox_state.read(KINTO_SANDBOX)["hosts"][host]["address"]
    known_hosts = sandbox_ssh.known_hosts_file(KINTO_SANDBOX)
    return subprocess.run(
        ["ssh", "-i", str(sandbox_ssh.key_file(KINTO_SANDBOX)), "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}", f"{user}@{address}", command],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_every_host_is_reached_over_ssh_as_a_real_server_and_refuses_root_once_built(kinto_incident):
    assert kinto_incident["restored"].returncode == 0
    for host in ("kinto1", "wiki1", "vault1"):
        logins = sh(host, "journalctl -u ssh --no-pager -o cat").stdout
        # the admin: deploy.py and upgrade.py on every host; restore.py's questions to the vault and to kinto1
        assert "Accepted publickey for deploy" in logins, (host, logins[-2000:])
        assert "Accepted publickey for root" in logins, (host, logins[-2000:])  # the blank box's first converge
        refused = ssh_as("root", host, "true")
        assert refused.returncode == 255 and "Permission denied" in refused.stderr, (host, refused.stderr)
        assert ssh_as("deploy", host, "sudo -n true").returncode == 0
    # phoenix status asks the vault's Barman over SSH too: an answer, and WAL received, for both archived hosts
    status = subprocess.run(
        [str(Path(sys.executable).with_name("phoenix")), "status", INVENTORY_SCRIPT, "--json"],
        cwd=REPOSITORY, env=dict(os.environ, PHOENIX_SANDBOX=KINTO_SANDBOX),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    archive = {entry["server"]: entry for entry in json.loads(status.stdout)["archive"]}
    assert sorted(archive) == ["kinto1", "wiki1"], status.stderr
    for entry in archive.values():
        assert "barman check gave no answer" not in entry["failed_checks"], entry
        assert entry["received_seconds_ago"] is not None, entry


def test_a_weekly_drill_restores_both_apps_from_their_nightly_dumps_and_checks_each_ones_record(
    kinto_incident, tmp_path
):
    assert kinto_incident["restored"].returncode == 0
    for host in ("kinto1", "wiki1"):  # what the nightly timers have done by the time a weekly drill runs
        dumped = sh(host, "phoenix-backup run all --trigger scheduled")
        assert dumped.returncode == 0, dumped.stderr[-2000:]
    drilled = subprocess.run(
        [str(Path(sys.executable).with_name("phoenix")), "drill", INVENTORY_SCRIPT, "--dumps", "--report-dir",
         str(tmp_path)],
        cwd=REPOSITORY, env=dict(os.environ, PHOENIX_SANDBOX=KINTO_SANDBOX),
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    (report,) = [json.loads(path.read_text()) for path in tmp_path.glob("own-apps-*.json")]
    checks = {(check["host"], check["name"]): check for check in report["checks"]}
    failed = [check for check in report["checks"] if not check["ok"]]
    assert drilled.returncode == 0 and report["passed"] and not failed, (failed, drilled.stderr[-3000:])
    assert report["from"] == "dumps" and report["archive_not_drilled"] == ["kinto1", "wiki1"]  # --dumps: both archived
    newest = kinto_incident["records"][-1]["data"]["id"]
    assert checks[("kinto1", "a known record is served over HTTPS")]["detail"] == (
        f"GET /v1/buckets/shop/collections/orders/records/{newest}: HTTP 200"
    )
    assert checks[("wiki1", "a known record is served over HTTPS")]["detail"] == "GET /: HTTP 200"
    (kinto_rows,) = [check for (host, name), check in checks.items() if host == "kinto1" and "row counts" in name]
    assert kinto_rows["detail"].endswith("(app.transient_tables left out: public.cache)")
    assert sandbox.labelled("container", drill_sandbox_name("own-apps", sandbox_state.state_root())) == []
