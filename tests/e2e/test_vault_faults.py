"""The vault under faults and a hostile server: each error said in words, nothing lost.

- a server tags its own snapshot pin=...: no pin, `phoenix pins` does not list it, retention
  does not keep it for that, `phoenix status` says it was ignored;
- a server POSTs a garbage snapshot with its own login: the vault's check moves it aside,
  names it, and still checks (and verifies) the rest; `phoenix status` flags it;
- the vault stops answering during a backup: "vault unreachable" within seconds, the next
  backup succeeds, every earlier run is still there and checks clean;
- the vault's disk fills during a backup: "vault disk full" (backup.py adds the free space),
  `phoenix status` flags the failed run at once, and once there is room the next backup
  succeeds and everything checks clean.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time

import pytest

from tests.e2e.conftest import container, run_phoenix, run_pyinfra
from tests.e2e.helpers import (
    HOLD_TABLE_LOCK,
    LOCK_IS_HELD,
    backed_up,
    complete,
    release_table_lock,
    restic_as_client,
    sh,
    start,
    vault_runs,
    wait_for,
)

VAULT_DATA = "/var/lib/phoenix-vault"
GARBAGE = "0" * 64
CLIENT_LOGIN = (
    "web1:$(python3 -c 'import json,urllib.parse as u;"
    ' print(u.urlsplit(json.load(open("/etc/phoenix/backup.json"))["repository"][5:]).password)\')'
)


def vault_runs_by_id(client: str) -> dict[str, dict]:
    return {run["run"]: run for run in vault_runs(client)}


def checks_clean(client: str) -> None:
    check = sh("vault1", f"phoenix-vault check --client {client}", timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_pin_tag_a_server_writes_into_its_own_snapshot_is_no_pin(converged):
    target = backed_up("web1", "files")["run"]
    backed_up("web1", "files")  # a newer run: retention has no other reason to keep the target
    snapshot = next(run for run in complete("web1", "files") if run["run"] == target)["snapshots"][0]

    # the server's own login: through the append-only vault this adds a tagged copy of the snapshot
    sh("web1", restic_as_client("web1", f"tag --add pin=attacker {snapshot}"), timeout=240)

    assert "attacker" not in run_phoenix("pins", "inventories/sandbox.py").stdout
    assert any(run["pin_tag"] == "attacker" for run in complete("web1", "files"))  # the tag is there, ignored
    assert vault_runs_by_id("web1")[target]["pin"] == ""
    strict = "--keep-within-hours 0 --hourly 0 --daily 1 --weekly 0 --monthly 0 --minimum-verified 1"
    decided = sh("vault1", f"phoenix-vault retain --client web1 --dry-run {strict}")
    assert decided.returncode == 0, decided.stderr
    (line,) = [line for line in decided.stdout.splitlines() if f" {target} " in line]
    assert "pinned" not in line, line
    status = run_phoenix("status", "inventories/sandbox.py", timeout=120)
    assert f"web1/files run {target}: pin tag 'attacker' written by the server itself is ignored" in status.stdout


@pytest.fixture
def quarantine_reviewed():
    """Afterwards the admin, having reviewed what the check moved aside, deletes it (as `phoenix status` asks):
    a later test's status is not flagged by this one's garbage."""
    yield
    sh("vault1", f"rm -rf {VAULT_DATA}/quarantine/web1")


def test_a_garbage_snapshot_a_server_posts_is_quarantined_and_the_rest_still_verified(converged, quarantine_reviewed):
    fresh = backed_up("web1", "files")["run"]  # not yet verified: the check below must still get to it
    curl = f"curl -s -o /dev/null -w '%{{http_code}}' --cacert /etc/phoenix/vault.crt -u {CLIENT_LOGIN}"
    posted = sh(
        "web1", f"head -c 512 /dev/urandom | {curl} --data-binary @- https://vault1:8443/web1/snapshots/{GARBAGE}"
    )
    assert posted.stdout == "200", posted.stdout + posted.stderr

    check = sh("vault1", "phoenix-vault check --client web1", timeout=300)

    assert check.returncode == 0, check.stdout + check.stderr
    assert f"[web1] QUARANTINED snapshots/{GARBAGE}: restic cannot read it (" in check.stdout
    assert sh("vault1", f"test -e {VAULT_DATA}/repos/web1/snapshots/{GARBAGE}").returncode == 1
    moved = sh("vault1", f"ls {VAULT_DATA}/quarantine/web1/").stdout.split()
    assert [name for name in moved if name.endswith(f"-snapshots-{GARBAGE}")], moved
    assert vault_runs_by_id("web1")[fresh]["verified"]
    status = run_phoenix("status", "inventories/sandbox.py", timeout=120)
    flagged = [line for line in status.stdout.splitlines() if line.startswith("!! web1: QUARANTINED snapshots/")]
    assert flagged and "delete it there once reviewed" in flagged[0], status.stdout
    assert status.returncode == 1
    checks_clean("web1")  # and the next check, as the timer runs it, passes with nothing left to move
    backed_up("web1", "files")  # the garbage had broken the server's own backups (restic loads every snapshot)


def pause(name: str, attempts: int = 5) -> None:
    """Freezes the container `name` (docker pause); raises CalledProcessError when docker refuses.

    On a busy machine the cgroup freezer can give up ("unable to freeze") while a process is in the
    middle of a fork or an I/O: runc then thaws the container, and a second attempt freezes it.
    """
    for attempt in range(attempts):
        result = subprocess.run(["docker", "pause", name], capture_output=True, text=True)
        if result.returncode == 0:
            return
        if "unable to freeze" not in result.stderr or attempt == attempts - 1:
            raise subprocess.CalledProcessError(result.returncode, result.args, result.stdout, result.stderr)
        time.sleep(0.5)


@pytest.fixture
def vault_paused_later():
    """Unpauses the vault whatever the test did."""
    yield lambda: pause(container("vault1"))
    subprocess.run(["docker", "unpause", container("vault1")], capture_output=True)
    wait_for("web1", "curl -s -o /dev/null --cacert /etc/phoenix/vault.crt https://vault1:8443/")


def test_a_vault_that_stops_answering_mid_backup_is_named_within_seconds_and_nothing_is_lost(
    converged, vault_paused_later
):
    before = {run["run"] for run in complete("web1", "db-links")}
    holder = start("web1", HOLD_TABLE_LOCK)  # pg_dump waits on it: the backup is surely running when the vault goes
    try:
        wait_for("web1", LOCK_IS_HELD)
        backup = start("web1", "phoenix-backup run db-links --trigger manual")
        wait_for("web1", "pgrep -f '[r]estic .*--stdin-filename links[.]dump'")
        vault_paused_later()
    finally:
        release_table_lock()
        holder.wait(timeout=30)
    try:
        output, _ = backup.communicate(timeout=180)  # today: restic waits on the silent vault forever
    finally:
        backup.kill()
    subprocess.run(["docker", "unpause", container("vault1")], check=True)

    assert backup.returncode == 1, output
    assert "vault unreachable: https://vault1:8443/web1/ (no answer for " in output, output
    status = json.loads(sh("web1", "cat /var/lib/phoenix/backup/status/db-links.json").stdout)
    assert status["result"] == "failed" and status["error"].startswith("vault unreachable: https://vault1:8443/web1/")
    wait_for("web1", "curl -s -o /dev/null --cacert /etc/phoenix/vault.crt https://vault1:8443/")
    after = backed_up("web1", "db-links")["run"]
    assert before <= {run["run"] for run in complete("web1", "db-links")}
    checks_clean("web1")
    assert vault_runs_by_id("web1")[after]["verified"]


def restart_the_vault() -> str:
    """Restarts the vault's server, so that it sees a mount made since (it has its own mount namespace)."""
    return "systemctl restart phoenix-vault && until curl -sk -o /dev/null https://127.0.0.1:8443/; do sleep 0.2; done"


def moved_with_the_vault_stopped(moves: str) -> str:
    """Runs the shell line moving a repository with the vault stopped: a backup the files watch starts meanwhile
    fails cleanly (vault unreachable) instead of writing into a copy half made."""
    return f"systemctl stop phoenix-vault && {moves} && {restart_the_vault()}"


@pytest.fixture
def small_vault_disk():
    """Moves web1's repository onto a tmpfs with 4 MiB left (a real ENOSPC); returns a function that
    makes room. Afterwards everything written there goes back to the vault's disk."""
    repository, saved = f"{VAULT_DATA}/repos/web1", f"{VAULT_DATA}/fault-web1"
    used_kib = int(sh("vault1", f"du -sk {repository}").stdout.split()[0])
    mount = (
        f"mkdir -p {saved} && cp -a {repository}/. {saved}/ && mount -t tmpfs -o size={used_kib + 4096}k,mode=0750"
        f",uid=$(id -u phoenix-vault),gid=$(id -g phoenix-vault) tmpfs {repository} && cp -a {saved}/. {repository}/"
    )
    mounted = sh("vault1", moved_with_the_vault_stopped(mount), timeout=120)
    assert mounted.returncode == 0, mounted.stderr
    yield lambda: sh("vault1", f"mount -o remount,size={used_kib + 262144}k {repository}")
    back = f"cp -a {repository}/. {saved}/ && umount {repository} && cp -a {saved}/. {repository}/ && rm -rf {saved}"
    restored = sh("vault1", moved_with_the_vault_stopped(back), timeout=120)
    assert restored.returncode == 0, restored.stderr


def settled_status(host: str, job: str, seconds: float = 180) -> dict:
    """The job's status record once no run of it is under way (the files watch may have begun one)."""
    deadline = time.monotonic() + seconds
    while True:
        status = json.loads(sh(host, f"cat /var/lib/phoenix/backup/status/{job}.json").stdout)
        if status["result"] != "running" or time.monotonic() > deadline:
            return status
        time.sleep(1)


def test_a_full_vault_disk_is_named_with_its_free_space_and_the_next_backup_after_room_is_made_succeeds(
    converged, small_vault_disk
):
    before = {run["run"] for run in complete("web1", "files")}
    paths = json.loads(sh("web1", "cat /etc/phoenix/backup.json").stdout)
    directory = next(job["paths"][-1] for job in paths["jobs"] if job["name"] == "files")  # the app's data
    big = f"{directory.rstrip('/')}/vault-fault-test.bin"
    sh("web1", f"head -c 24M /dev/urandom > {shlex.quote(big)}")  # does not fit in the 4 MiB left
    try:
        limited = run_pyinfra("--limit", f"@sandbox/{container('web1')}", "inventories/sandbox.py", "backup.py")

        assert limited.returncode != 0
        # the host's own words (what its status file and failure ping carry), then the vault's free space
        said = (
            "web1/files: vault disk full: the vault refused to store this run's data (HTTP 403 Forbidden on saving"
            " data/"
        )
        assert said in limited.stderr, limited.stderr[-3000:]
        assert "\nvault disk full: " in limited.stderr and " free of " in limited.stderr, limited.stderr[-3000:]
        assert "on the vault's /var/lib/phoenix-vault/repos/web1" in limited.stderr
        # the watch retries the changed uploads: each of its runs fails the same way until there is room
        status = settled_status("web1", "files")
        assert status["result"] == "failed" and status["error"].startswith("vault disk full: "), status
        # the admin's monitoring says so now, not once the last good run is a day old
        flagged = run_phoenix("status", "inventories/sandbox.py", timeout=120)
        assert flagged.returncode == 1
        failed_line = r"^!! web1/files: its (newest|last finished) run FAILED at .*: vault disk full: "
        assert re.search(failed_line, flagged.stdout, re.M), flagged.stdout

        small_vault_disk()  # the admin makes room
        after = backed_up("web1", "files")
        assert not re.search(failed_line, run_phoenix("status", "inventories/sandbox.py").stdout, re.M)
        assert before <= {run["run"] for run in complete("web1", "files")}
        checks_clean("web1")
        assert vault_runs_by_id("web1")[after["run"]]["verified"]
    finally:
        sh("web1", f"rm -f {shlex.quote(big)}")
