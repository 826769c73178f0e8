"""The blueprint on a fresh sandbox: web1 (supervisor, local db), web2 (systemd, db on db1), db1."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import uuid

import pytest

from phoenix.container_shell import enter_argv
from tests.e2e.conftest import container, converge, run_pyinfra
from tests.e2e.helpers import SERVER_NAME, WORKER_PID, request, sh, wait_for, worker_pid

WEB_HOSTS = ["web1", "web2"]


def test_first_converge_succeeds_on_every_host(first_converge):
    results, _ = first_converge
    assert results["results"]["failed_hosts"] == []
    assert results["results"]["totals"]["success"] > 0


def test_second_converge_changes_nothing(second_converge):
    results, _ = second_converge
    changed = [op["name"] for op in results["results"]["operations"] if op["success"]]
    assert changed == []
    assert results["results"]["totals"]["success"] == 0
    assert results["results"]["failed_hosts"] == []


def test_a_managed_file_changed_by_hand_is_put_back_by_the_next_converge(converged):
    # drift an admin might cause at 3 a.m.: an edited nginx site and a secrets file opened to everyone
    site, settings = "/etc/nginx/sites-available/links.conf", "/etc/phoenix/backup.json"
    before = sh("web2", f"sha256sum {site} {settings} && stat -c '%a %U:%G' {settings}").stdout
    drifted = sh("web2", f"echo '# edited by hand' >> {site} && chmod 0644 {settings} && nginx -t")
    assert drifted.returncode == 0, drifted.stderr
    results, _ = converge("--limit", "web2")
    changed = {op["name"].split(" | ")[-1] for op in results["results"]["operations"] if op["success"]}
    assert {"nginx site", "Backup settings and passwords"} <= changed  # names without their role's prefix
    assert sh("web2", f"sha256sum {site} {settings} && stat -c '%a %U:%G' {settings}").stdout == before


@pytest.mark.parametrize("name", ["web1", "web2", "db1"])
def test_base_services_active_and_enabled(converged, name):
    server = converged[name]["testinfra"]
    for service in ("ssh", "nftables"):
        assert server.service(service).is_running, service
        assert server.service(service).is_enabled, service


@pytest.mark.parametrize("name", WEB_HOSTS)
def test_web_services_active_and_enabled(converged, name):
    server = converged[name]["testinfra"]
    assert server.service("nginx").is_running and server.service("nginx").is_enabled
    assert server.socket("tcp://0.0.0.0:443").is_listening
    assert server.socket("tcp://0.0.0.0:80").is_listening
    assert server.socket("tcp://127.0.0.1:6543").is_listening
    assert not server.socket("tcp://0.0.0.0:6543").is_listening


def test_app_runs_under_supervisor_on_web1(converged):
    server = converged["web1"]["testinfra"]
    assert server.service("supervisor").is_running and server.service("supervisor").is_enabled
    status = server.run("supervisorctl status links")
    assert "RUNNING" in status.stdout
    assert not server.file("/etc/systemd/system/links.service").exists


def test_app_runs_under_systemd_on_web2(converged):
    server = converged["web2"]["testinfra"]
    assert server.service("links").is_running and server.service("links").is_enabled
    assert not server.file("/etc/supervisor/conf.d/links.conf").exists
    assert server.run("systemctl show -p User --value links").stdout.strip() == "links"


def test_declared_worker_runs_as_the_app_user_and_restarts_with_the_app(converged):
    before = {name: worker_pid(name) for name in WORKER_PID}
    for name, pid in before.items():
        assert sh(name, f"ps -o user= -p {pid}").stdout.strip() == "links", name
        assert "/srv/links/venv/bin/python" in sh(name, f"ps -o args= -p {pid}").stdout, name
    # a config change (here: an edit the deploy puts back) restarts the app, and its worker with it
    for name in WORKER_PID:
        assert sh(name, "echo '# edited by hand' >> /etc/links/production.ini").returncode == 0
    results, _ = converge("--limit", "web1", "--limit", "web2")
    assert results["results"]["failed_hosts"] == []
    after = {name: worker_pid(name) for name in WORKER_PID}
    assert all(after[name] != before[name] for name in WORKER_PID), (before, after)
    assert "RUNNING" in sh("web1", "supervisorctl status links-worker").stdout
    assert sh("web2", "systemctl is-active links-worker").stdout.strip() == "active"


def test_a_systemd_worker_stops_and_starts_with_the_app(converged):
    assert sh("web2", "systemctl stop links").returncode == 0
    assert sh("web2", "systemctl is-active links-worker").stdout.strip() == "inactive"
    assert sh("web2", "systemctl start links").returncode == 0
    wait_for("web2", "systemctl is-active --quiet links-worker")  # its start job follows the app's (After=)


@pytest.mark.parametrize("name", WEB_HOSTS)
def test_declared_periodic_command_is_scheduled_and_runs_as_the_app_user(converged, name):
    unit = "links-schema-check"
    assert sh(name, f"systemctl is-active {unit}.timer").stdout.strip() == "active"
    assert sh(name, f"systemctl show -p NextElapseUSecRealtime --value {unit}.timer").stdout.strip()
    ran = sh(name, f"systemctl start {unit}.service")  # what the timer does when it elapses
    assert ran.returncode == 0, ran.stderr
    assert sh(name, f"systemctl show -p Result --value {unit}.service").stdout.strip() == "success"
    assert sh(name, f"systemctl show -p User --value {unit}.service").stdout.strip() == "links"


def test_the_files_watch_runs_on_the_hosts_with_data_paths_and_only_there(converged):
    for name in WEB_HOSTS:  # the uploads directory
        assert sh(name, "systemctl is-active phoenix-backup-files-watch.timer").stdout.strip() == "active", name
        assert sh(name, "systemctl show -p NextElapseUSecRealtime --value phoenix-backup-files-watch.timer").stdout
    # db1's files job holds /etc alone, which the blueprint rebuilds: nothing to watch
    assert sh("db1", "systemctl cat phoenix-backup-files-watch.timer").returncode != 0


@pytest.mark.parametrize("name", ["web1", "db1"])
def test_postgres_active_and_enabled(converged, name):
    server = converged[name]["testinfra"]
    assert server.service("postgresql@15-main").is_running
    assert server.service("postgresql@15-main").is_enabled


@pytest.mark.parametrize("name", WEB_HOSTS)
def test_tls_serves_the_expected_certificate(converged, name):
    host = converged[name]
    expected = host["testinfra"].file(f"/etc/ssl/phoenix/{SERVER_NAME}.crt").content_string
    served = ssl.get_server_certificate((host["address"], 443))
    assert ssl.PEM_cert_to_DER_cert(served) == ssl.PEM_cert_to_DER_cert(expected)
    status, headers, _ = request(host, "GET", "/health")  # verifies chain and host name
    assert status == 200
    assert headers["Strict-Transport-Security"] == "max-age=31536000"


@pytest.mark.parametrize("name", WEB_HOSTS)
def test_http_redirects_to_https(converged, name):
    connection = http.client.HTTPConnection(converged[name]["address"], 80, timeout=10)
    connection.request("GET", "/api/links?x=1", headers={"Host": SERVER_NAME})
    response = connection.getresponse()
    assert response.status == 301
    assert response.getheader("Location") == f"https://{SERVER_NAME}/api/links?x=1"


@pytest.mark.parametrize("name", WEB_HOSTS)
def test_health_reports_database_and_schema(app_at_inventory_release, name):
    status, _, body = request(app_at_inventory_release[name], "GET", "/health")
    health = json.loads(body)
    assert status == 200
    assert health["database"] == "ok" and health["schema_version"] == "0001"


@pytest.mark.parametrize("name,database_host", [("web1", "web1"), ("web2", "db1")])
def test_record_round_trips_through_postgres(converged, name, database_host):
    note = f"e2e-{uuid.uuid4()}"
    status, _, body = request(
        converged[name], "POST", "/api/links",
        body=json.dumps({"url": "https://example.org/", "note": note}).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert status == 201, body
    link_id = json.loads(body)["id"]
    stored = converged[database_host]["testinfra"].run(
        f'runuser -u postgres -- psql -d links -tAc "SELECT note FROM links WHERE id = {link_id}"'
    )
    assert stored.stdout.strip() == note
    status, _, body = request(converged[name], "GET", f"/api/links/{link_id}")
    assert status == 200 and json.loads(body)["note"] == note


def test_upload_round_trips_through_nginx(converged):
    host = converged["web1"]
    _, _, body = request(
        host, "POST", "/api/links", body=json.dumps({"url": "https://example.org/f"}).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    link_id = json.loads(body)["id"]
    content = uuid.uuid4().bytes * 1000
    boundary = "phoenixboundary"
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="data.bin"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, _, body = request(
        host, "POST", f"/api/links/{link_id}/file", body=form,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )  # fmt: skip
    assert status == 201, body
    status, _, downloaded = request(host, "GET", f"/api/links/{link_id}/file")
    assert status == 200 and downloaded == content
    stored = host["testinfra"].file(f"/var/lib/links/uploads/{link_id}/data.bin")
    assert stored.user == "links" and not stored.mode & 0o007


def test_static_files_served_by_nginx(converged):
    status, headers, body = request(converged["web1"], "GET", "/static/style.css")
    assert status == 200 and body
    assert "Expires" in headers  # set by nginx's location, not by the app


def test_firewall_admits_database_only_from_its_app_host_and_the_archiving_vault(converged):
    probe = "timeout 3 bash -c '</dev/tcp/db1/5432' && echo open || echo closed"
    from_app_host = converged["web2"]["testinfra"].run(probe).stdout.strip()
    from_other_host = converged["web1"]["testinfra"].run(probe).stdout.strip()
    from_vault = converged["vault1"]["testinfra"].run(probe).stdout.strip()  # its Barman pulls WAL and backups
    assert (from_app_host, from_other_host, from_vault) == ("open", "closed", "open")
    rules = converged["db1"]["testinfra"].run("nft list table inet phoenix").stdout
    assert "policy drop" in rules


def test_firewall_drops_unlisted_ports(converged):
    web1 = converged["web1"]["testinfra"]
    web1.run("nohup python3 -m http.server 8099 >/dev/null 2>&1 &")
    try:
        # something really listens on the port (else "closed" would prove nothing about the firewall)
        answered = "curl -s -o /dev/null http://127.0.0.1:8099/"
        listening = f"for i in $(seq 100); do {answered} && exit 0; sleep 0.1; done; exit 1"
        assert web1.run(listening).rc == 0
        probe = "timeout 3 bash -c '</dev/tcp/web1/8099' && echo open || echo closed"
        assert converged["web2"]["testinfra"].run(probe).stdout.strip() == "closed"
        assert converged["web2"]["testinfra"].run(probe.replace("8099", "443")).stdout.strip() == "open"
    finally:
        web1.run("pkill -f 'http.server 8099'")


@pytest.mark.parametrize("name", ["web1", "db1"])
def test_sshd_refuses_root_and_passwords(converged, name):
    settings = converged[name]["testinfra"].run("sshd -T").stdout
    assert "permitrootlogin no" in settings
    assert "passwordauthentication no" in settings
    assert "kbdinteractiveauthentication no" in settings


def test_admin_user_has_key_and_sudo(converged):
    server = converged["web1"]["testinfra"]
    assert "sudo" in server.user("deploy").groups
    keys = server.file("/home/deploy/.ssh/authorized_keys")
    assert "deploy@sandbox" in keys.content_string


@pytest.mark.parametrize("name", WEB_HOSTS)
def test_secret_files_are_not_world_readable(converged, name):
    server = converged[name]["testinfra"]
    config = server.file("/etc/links/production.ini")
    assert (config.user, config.group, config.mode) == ("root", "links", 0o640)
    key = server.file(f"/etc/ssl/phoenix/{SERVER_NAME}.key")
    assert (key.user, key.mode) == ("root", 0o600)
    assert server.file("/etc/ssl/phoenix").mode == 0o750
    backup_settings = server.file("/etc/phoenix/backup.json")  # the restic and vault passwords
    assert (backup_settings.user, backup_settings.mode) == ("root", 0o600)


# What a real server gets over SSH: every file the blueprint writes, with its owner and mode, as
# stat prints them. Through the docker connector a file without an explicit mode landed as 0600.
MANAGED_FILES = [
    ("web1", "/etc/ssh/sshd_config.d/phoenix.conf", "root root 644"),
    ("web1", "/etc/apt/apt.conf.d/20auto-upgrades", "root root 644"),
    ("web1", "/etc/systemd/journald.conf.d/phoenix.conf", "root root 644"),
    ("web1", "/etc/timezone", "root root 644"),
    ("web1", "/etc/sudoers.d/phoenix-admins", "root root 440"),
    ("web1", "/etc/nftables.conf", "root root 700"),
    ("web1", "/etc/nginx/sites-available/links.conf", "root root 644"),
    ("web1", "/etc/supervisor/conf.d/links.conf", "root root 644"),
    ("web1", "/etc/postgresql/15/main/conf.d/phoenix.conf", "postgres postgres 644"),
    ("web1", "/etc/postgresql/15/main/pg_hba.conf", "postgres postgres 640"),
    ("web1", "/etc/links/production.ini", "root links 640"),
    ("web1", "/srv/links/.installed-release", "root root 644"),
    ("web1", "/etc/ssl/phoenix/links.sandbox.test.crt", "root root 644"),
    ("web1", "/etc/ssl/phoenix/links.sandbox.test.key", "root root 600"),
    ("web1", "/etc/phoenix/backup.json", "root root 600"),
    ("web1", "/etc/phoenix/vault.crt", "root root 644"),
    ("web1", "/etc/systemd/system/phoenix-backup-db-links.service", "root root 644"),
    ("web1", "/etc/systemd/system/phoenix-backup-db-links.timer", "root root 644"),
    ("web1", "/etc/systemd/system/phoenix-backup-files-watch.service", "root root 644"),
    ("web1", "/etc/systemd/system/phoenix-backup-files-watch.timer", "root root 644"),
    ("web1", "/usr/local/lib/phoenix/phoenix/remote/file_changes.py", "root root 644"),
    ("web1", "/usr/local/sbin/phoenix-backup", "root root 755"),
    ("web1", "/usr/local/lib/phoenix/phoenix/remote/restore.py", "root root 644"),
    ("web2", "/etc/systemd/system/links.service", "root root 644"),
    ("web2", "/etc/nginx/sites-available/links.conf", "root root 644"),
    ("db1", "/etc/postgresql/15/main/conf.d/phoenix.conf", "postgres postgres 644"),
    ("vault1", "/etc/systemd/system/phoenix-vault.service", "root root 644"),
    ("vault1", "/etc/systemd/system/phoenix-vault-check.timer", "root root 644"),
    ("vault1", "/etc/phoenix-vault/tls.crt", "root phoenix-vault 644"),
]


@pytest.mark.parametrize("name", sorted({name for name, _, _ in MANAGED_FILES}))
def test_managed_files_have_the_owner_and_mode_a_real_server_gets(converged, name):
    expected = {path: wanted for host, path, wanted in MANAGED_FILES if host == name}
    listing = converged[name]["testinfra"].run("stat -c '%n %U %G %a' " + " ".join(expected)).stdout
    found = dict(line.split(" ", 1) for line in listing.splitlines())
    assert found == expected


def test_vault_secrets_are_readable_only_by_root_and_the_vault_user(converged):
    server = converged["vault1"]["testinfra"]
    for name in ("vault.json", "htpasswd", "tls.key"):
        secret = server.file(f"/etc/phoenix-vault/{name}")
        assert (secret.user, secret.group, secret.mode) == ("root", "phoenix-vault", 0o640), name
    assert server.file("/var/lib/phoenix-vault/repos").mode == 0o750


def test_secrets_never_reach_the_output(
    first_converge, second_converge, generated_secrets, app_at_inventory_release, converged
):
    password = generated_secrets.database_password("links")
    assert password in converged["web1"]["testinfra"].file("/etc/links/production.ini").content_string
    converged["web1"]["testinfra"].run("rm /etc/links/production.ini")
    diff_run = run_pyinfra("--diff", "--limit", "web1", "inventories/sandbox.py", "deploy.py")
    assert diff_run.returncode == 0, diff_run.stderr[-3000:]
    assert "production.ini" in diff_run.stderr  # the file was really re-uploaded
    assert f"[@sandbox/{container('web1')}]" in diff_run.stderr  # --limit's short name: web1, and web1 alone
    assert not any(container(other) in diff_run.stderr for other in ("web2", "db1", "vault1"))
    secrets = [
        password,
        generated_secrets.get("session_secret"),
        generated_secrets.get("restic_passwords.web1"),
        generated_secrets.get("vault_credentials.web1"),
    ]
    for process in (first_converge[1], second_converge[1], diff_run):
        for secret in secrets:
            assert secret not in process.stdout + process.stderr


def test_a_limit_matching_no_host_stops_before_connecting(sandbox_hosts):
    result = run_pyinfra("--limit", "web9", "inventories/sandbox.py", "deploy.py")

    assert result.returncode == 2
    assert "phoenix: inventory not loaded, no host was touched:" in result.stderr
    assert "--limit 'web9' matches no host of inventories/sandbox.py: expected a host's short name" in result.stderr
    assert "(web1, web2, db1, vault1), a group (@sandbox, all, sandbox, servers)" in result.stderr
    assert f"or a pyinfra host name (@sandbox/{container('web1')}, " in result.stderr
    assert "Connecting to hosts" not in result.stderr


def test_a_deploy_over_an_app_that_does_not_answer_fails(app_at_inventory_release):
    # web2's database on db1 is down: nothing in web2's blueprint changes, yet its app answers 503
    subprocess.run(enter_argv(container("db1"), ["systemctl", "stop", "postgresql"]), check=True)
    try:
        process = run_pyinfra("--limit", "web2", "inventories/sandbox.py", "deploy.py")
    finally:
        subprocess.run(enter_argv(container("db1"), ["systemctl", "start", "postgresql"]), check=True)
    assert process.returncode != 0
    assert "app did not answer http://127.0.0.1:6543/health within 30s" in process.stderr


def test_sandbox_down_removes_only_its_own_containers(sandbox_hosts):
    from phoenix import sandbox

    stranger = f"phx-stranger-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "create", "--name", stranger, sandbox_hosts["image"]], check=True, capture_output=True)
    try:
        other = f"e2e-other-{uuid.uuid4().hex[:6]}"
        sandbox.up(other, ["solo"])
        assert other in sandbox.list_sandboxes()
        assert sandbox.down(other) == 1
        assert other not in sandbox.list_sandboxes()
        assert subprocess.run(["docker", "inspect", stranger], capture_output=True).returncode == 0
        assert set(sandbox.list_sandboxes().get(sandbox_hosts["sandbox"], [])) != set()
    finally:
        subprocess.run(["docker", "rm", "-f", stranger], capture_output=True)
