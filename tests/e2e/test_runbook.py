"""The runbook's by-hand recovery, run as `phoenix runbook` prints it, against the sandbox: stock restic on
the vault dumps the newest backup of db1's database, pg_restore loads it on db1 (into a scratch database,
beside the live one), and the record written before the backup is there; stock restic on the vault
restores web1's newest files run (into a scratch directory), and it holds what web1 holds, the file a
user uploaded before the backup included. This is the path an operator takes when Phoenix itself is
unavailable, and the one most likely to rot. (The runbook's Phoenix commands are run by the tests of
what they do: test_recovery, test_upgrade, test_drill, test_pins.)
"""

from __future__ import annotations

import hashlib
import subprocess
import uuid

from phoenix import backup_plan, runbook
from phoenix.inventory import load_environment
from tests.e2e.conftest import REPOSITORY, container, live_host, printed_runbook
from tests.e2e.helpers import post_json, sh, upload

SCRATCH = "runbook_check"
DUMP = "/root/runbook-links.dump"
FILES_TARGET = "/root/runbook-restore-web1"


def checksums(host: str, directory: str) -> dict[str, str]:
    """Every file under `directory` on a sandbox host: {path relative to it: sha256}."""
    listed = sh(host, f"cd {directory} && find . -type f -print0 | sort -z | xargs -0 -r sha256sum")
    assert listed.returncode == 0, listed.stderr
    return {path: digest for digest, path in (line.split(maxsplit=1) for line in listed.stdout.splitlines())}


def test_the_runbooks_by_hand_database_restore_brings_the_backed_up_record_back(converged):
    note = f"runbook-{uuid.uuid4()}"
    post_json(live_host("web2"), "/api/links", {"url": "https://example.org/runbook", "note": note})  # on db1
    assert sh("db1", "phoenix-backup run db-links --trigger scheduled").returncode == 0

    environment = load_environment(REPOSITORY / "inventories" / "sandbox.yml")
    steps = runbook.manual_database_restore(environment, "db1", "links", target=SCRATCH, dump=DUMP)
    as_printed = runbook.manual_database_restore(environment, "db1", "links")
    assert all(f"        {step.command}\n" in printed_runbook() for step in as_printed)  # what the operator reads
    try:
        for step in steps[:2]:
            assert step.host == "vault1"
            done = sh("vault1", step.command)
            assert done.returncode == 0, (step.command, done.stderr[-2000:])
        # the runbook's "copy the dump from vault1 to db1 (scp)"
        copy = f"docker exec {container('vault1')} cat {DUMP} | docker exec -i {container('db1')} sh -c 'cat > {DUMP}'"
        assert subprocess.run(copy, shell=True, timeout=120).returncode == 0
        for step in steps[2:]:
            assert step.host == "db1"
            done = sh("db1", step.command)
            assert done.returncode == 0, (step.command, done.stderr[-2000:])
        query = f"SELECT count(*) FROM links WHERE note = '{note}'"
        found = sh("db1", f'runuser -u postgres -- psql -d {SCRATCH} -tAc "{query}"')
        assert found.stdout.strip() == "1", found.stderr
    finally:
        sh("db1", f"runuser -u postgres -- dropdb --if-exists {SCRATCH}; rm -f {DUMP}")
        sh("vault1", f"rm -f {DUMP}")


def test_the_runbooks_by_hand_files_restore_brings_web1s_uploads_back(converged):
    web1 = live_host("web1")
    link = post_json(web1, "/api/links", {"url": "https://example.org/runbook-files", "note": "runbook files"})
    content = uuid.uuid4().bytes * 1024
    upload(web1, link["id"], content)
    assert sh("web1", "phoenix-backup run files --trigger scheduled").returncode == 0

    environment = load_environment(REPOSITORY / "inventories" / "sandbox.yml")
    hosts = environment.hosts
    jobs = backup_plan.jobs(hosts["web1"], backup_plan.databases_served("web1", hosts))
    (paths,) = [backup_plan.restorable_paths(job) for job in jobs if job["kind"] == "files"]
    as_printed = runbook.manual_files_restore(environment, "web1", paths)
    assert all(f"        {step.command}\n" in printed_runbook() for step in as_printed)  # what the operator reads
    try:
        for step in runbook.manual_files_restore(environment, "web1", paths, target=FILES_TARGET):
            assert step.host == "vault1"
            done = sh("vault1", step.command)
            assert done.returncode == 0, (step.command, done.stderr[-2000:])
        for path in paths:  # what the operator would copy back to web1 is what web1 holds
            restored = checksums("vault1", f"{FILES_TARGET}{path}")
            assert restored and restored == checksums("web1", path), path
        uploaded = sh("vault1", f"sha256sum < {FILES_TARGET}/var/lib/links/uploads/{link['id']}/report.bin")
        assert uploaded.stdout.split()[0] == hashlib.sha256(content).hexdigest()
    finally:
        sh("vault1", f"rm -rf {FILES_TARGET}")
