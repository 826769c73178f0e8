"""A real app nobody here wrote, deployed from an inventory, a lock and a config template alone.

Kinto (Pyramid, PostgreSQL backend, 53 locked packages from PyPI, among them zope.* namespace
packages) in a sandbox of its own: kinto1 (nginx, Kinto, PostgreSQL) backing up to vault1.
From blank containers: deploy; records written through Kinto's own HTTP API; a backup; kinto1
destroyed; restore.py; the records served again; an upgrade.py whose migration fails rolls back to
the previous release, which serves the same records; upgrade.py to the next Kinto release.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from phoenix import sandbox, sandbox_state
from tests.e2e.conftest import REPOSITORY, SANDBOX_NAME, pyinfra_argv, run_phoenix

INVENTORY = "tests/e2e/own_apps/kinto.yml"
KINTO_SANDBOX = f"{SANDBOX_NAME}-kinto"
SERVER_NAME = "kinto.sandbox.test"
CREDENTIALS = "alice:correct-horse"
RESTORE_REPORT = "/tmp/phoenix-e2e-restore-{host}.json"  # restore.py's step timings, for the RTO figure


def sh(host: str, command: str) -> subprocess.CompletedProcess:
    name = sandbox_state.container_name(KINTO_SANDBOX, host)
    return subprocess.run(["docker", "exec", name, "bash", "-c", command], capture_output=True, text=True)


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


@pytest.fixture(scope="module")
def kinto_incident():
    """Deploys Kinto, writes records, backs up, destroys kinto1, restores it; removes the sandbox afterwards."""
    try:
        deployed = run_phoenix("up", INVENTORY, "--sandbox", KINTO_SANDBOX, timeout=1800)
        assert deployed.returncode == 0, deployed.stderr[-6000:]
        kinto("PUT", "/buckets/shop", {})
        kinto("PUT", "/buckets/shop/collections/orders", {})
        items = [f"order-{uuid.uuid4()}" for _ in range(3)]
        records = [kinto("POST", "/buckets/shop/collections/orders/records", {"data": {"item": i}}) for i in items]
        backed_up = sh("kinto1", "phoenix-backup run all --trigger scheduled")
        assert backed_up.returncode == 0, backed_up.stderr

        destroyed = sandbox_state.container_name(KINTO_SANDBOX, "kinto1")
        subprocess.run(["docker", "rm", "-f", destroyed], check=True, capture_output=True)
        sandbox.up(KINTO_SANDBOX, ["kinto1"])
        restored = subprocess.run(
            pyinfra_argv(
                *("--data", "snapshot=latest", "--data", f"restore_report={RESTORE_REPORT}"),
                *("tests/e2e/own_apps/kinto.py", "restore.py"),
            ),
            cwd=REPOSITORY,
            env=dict(os.environ, PHOENIX_SANDBOX=KINTO_SANDBOX),
            capture_output=True,
            text=True,
            timeout=1800,
        )
        yield {"deployed": deployed, "records": records, "restored": restored}
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


def test_a_deploy_after_the_restore_changes_nothing(kinto_incident):
    assert kinto_incident["restored"].returncode == 0
    deployed = subprocess.run(
        pyinfra_argv("--json", "tests/e2e/own_apps/kinto.py", "deploy.py"),
        cwd=REPOSITORY,
        env=dict(os.environ, PHOENIX_SANDBOX=KINTO_SANDBOX),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert deployed.returncode == 0, deployed.stderr[-4000:]
    results = json.loads(deployed.stdout)["results"]
    assert [operation["name"] for operation in results["operations"] if operation["success"]] == []


def upgrade(version: str) -> subprocess.CompletedProcess:
    """upgrade.py on kinto1 to release `version` of app.releases; returns the finished process."""
    return subprocess.run(
        pyinfra_argv("--limit", f"@docker/{sandbox_state.container_name(KINTO_SANDBOX, 'kinto1')}",
                     "--data", f"version={version}", "tests/e2e/own_apps/kinto.py", "upgrade.py"),
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
