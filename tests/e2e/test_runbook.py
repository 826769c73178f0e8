"""The runbook's by-hand recovery, run as `phoenix runbook` prints it, against the sandbox: stock restic on
the vault dumps the newest backup of db1's database, pg_restore loads it on db1 (into a scratch database,
beside the live one), and the record written before the backup is there. This is the path an operator
takes when Phoenix itself is unavailable, and the one most likely to rot.
"""

from __future__ import annotations

import subprocess
import uuid

from phoenix import runbook
from phoenix.inventory import load_environment
from tests.e2e.conftest import REPOSITORY, container, live_host, run_phoenix
from tests.e2e.helpers import post_json, sh

SCRATCH = "runbook_check"
DUMP = "/root/runbook-links.dump"


def test_the_runbooks_by_hand_database_restore_brings_the_backed_up_record_back(converged):
    note = f"runbook-{uuid.uuid4()}"
    post_json(live_host("web2"), "/api/links", {"url": "https://example.org/runbook", "note": note})  # on db1
    assert sh("db1", "phoenix-backup run db-links --trigger scheduled").returncode == 0

    printed = run_phoenix("runbook", "inventories/sandbox.py")
    assert printed.returncode == 0, printed.stderr
    environment = load_environment(REPOSITORY / "inventories" / "sandbox.yml")
    steps = runbook.manual_database_restore(environment, "db1", "links", target=SCRATCH, dump=DUMP)
    as_printed = runbook.manual_database_restore(environment, "db1", "links")
    assert all(f"        {step.command}\n" in printed.stdout for step in as_printed)  # what the operator reads
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
