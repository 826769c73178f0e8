"""What the end-to-end test files share: running commands on sandbox hosts, requests through nginx,
and the backup runs a host has. Test files import from here and conftest.py only, never from
each other.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time

from phoenix.container_shell import enter_argv
from phoenix.drill_checks import SniHTTPSConnection
from phoenix.remote.backup_host import SETTINGS_PATH
from tests.e2e.conftest import container

SERVER_NAME = "links.sandbox.test"


# --- commands on sandbox hosts ------------------------------------------------------------


def sh(host: str, command: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs a shell command as root on a sandbox host."""
    return subprocess.run(
        enter_argv(container(host), ["bash", "-c", command]),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start(host: str, command: str) -> subprocess.Popen:
    """Starts a shell command on a sandbox host without waiting for it."""
    return subprocess.Popen(
        enter_argv(container(host), ["bash", "-c", command]),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def poll_output(host: str, command: str, seconds: float = 60) -> str:
    """Runs `command` until it exits 0; returns what it printed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = sh(host, command)
        if result.returncode == 0:
            return result.stdout.strip()
        time.sleep(0.3)
    raise AssertionError(f"{host}: `{command}` did not succeed within {seconds}s")


def wait_for(host: str, condition: str, seconds: float = 60) -> None:
    poll_output(host, condition, seconds)


# --- the app, through nginx --------------------------------------------------------------


# the sandbox's declared worker (inventories/sandbox.yml app.processes): its main PID, "" or "0" when it is down
WORKER_PID = {
    "web1": "supervisorctl pid links-worker",  # app.processes under supervisor
    "web2": "systemctl show -p MainPID --value links-worker",  # and under systemd
}


def worker_pid(host: str) -> str:
    """Given a web host, returns the PID of its running links-worker; fails the test when it is not running."""
    pid = sh(host, WORKER_PID[host]).stdout.strip()
    assert pid.isdigit() and pid != "0", f"{host}: links-worker is not running ({pid!r})"
    return pid


def request(host: dict, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """Sends one HTTPS request through nginx, trusting only the host's own certificate."""
    certificate = host["testinfra"].file(f"/etc/ssl/phoenix/{SERVER_NAME}.crt").content_string
    context = ssl.create_default_context(cadata=certificate)
    connection = SniHTTPSConnection(host["address"], SERVER_NAME, context)
    connection.request(method, path, body=body, headers={"Host": SERVER_NAME, **(headers or {})})
    response = connection.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def post_json(host: dict, path: str, document: dict) -> dict:
    status, _, body = request(
        host, "POST", path, body=json.dumps(document).encode(), headers={"Content-Type": "application/json"}
    )
    assert status == 201, body
    return json.loads(body)


def upload(host: dict, link_id: int, content: bytes) -> None:
    boundary = "phoenixboundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="report.bin"\r\n\r\n'
    form = head.encode() + content + f"\r\n--{boundary}--\r\n".encode()
    status, _, body = request(
        host, "POST", f"/api/links/{link_id}/file", body=form,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )  # fmt: skip
    assert status == 201, body


# --- backups ----------------------------------------------------------------------------


HOLD_TABLE_LOCK = (
    "runuser -u postgres -- psql -X -d links -c "
    "'BEGIN; LOCK TABLE links IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120);'"
)


LOCK_IS_HELD = (
    "runuser -u postgres -- psql -XtAc"
    " \"SELECT 1 FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND relation = 'links'::regclass\" links | grep -q 1"
)


def release_table_lock(host: str = "web1") -> None:
    """Ends the session HOLD_TABLE_LOCK opened (killing the command that started it would not: that runs in a
    session of its own)."""
    sql = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%' AND pid <> pg_backend_pid()"  # noqa: E501
    sh(host, f'runuser -u postgres -- psql -XtAc "{sql}" links')


def runs(host: str, job: str = "") -> list[dict]:
    """The host's runs in its repository, as phoenix-backup lists them (oldest first)."""
    result = sh(host, f"phoenix-backup runs {'--job ' + job if job else ''}")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def complete(host: str, job: str) -> list[dict]:
    return [run for run in runs(host, job) if run["complete"]]


def backed_up(host: str, job: str, trigger: str = "scheduled") -> dict:
    """Runs one backup job on the host now (as its timer would, by default); returns the run's final status
    record, from the run's own output: the status file may already be the next run's (the files watch's)."""
    result = sh(host, f"phoenix-backup run {job} --trigger {trigger} --records", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.splitlines()[-1])[job]


def vault_runs(client: str) -> list[dict]:
    """The client's runs as the vault lists them (oldest first), pins as the vault records them."""
    result = sh("vault1", f"phoenix-vault runs --client {client}")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["runs"]


def vault_pins(client: str) -> dict[str, str]:
    """The client's pins as the vault records them: {run: reason}."""
    result = sh("vault1", f"phoenix-vault pins --client {client}")
    assert result.returncode == 0, result.stderr
    return {pin["run"]: pin["pin"] for pin in json.loads(result.stdout)["pins"]}


def restic_as_client(host: str, arguments: str) -> str:
    """Returns a shell command running restic with the host's own repository URL and password."""
    environment = (
        'eval "$(python3 -c \'import json, shlex; c = json.load(open("' + SETTINGS_PATH + '"));'
        ' print("export RESTIC_REPOSITORY=%s RESTIC_PASSWORD=%s" % (shlex.quote(c["repository"]),'
        ' shlex.quote(c["password"])))\')"'
    )
    return f"{environment}; restic --cacert /etc/phoenix/vault.crt {arguments}"
