"""The templates, rendered as the roles render them (pyinfra's StrictUndefined Jinja2), say what a user relies on."""

from __future__ import annotations

import configparser
import re
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote, urlsplit

import pytest
from pyinfra.api.util import get_template
from shop_inventory import SHOP_ENVIRONMENT

from phoenix.inventory import load_environment, pyinfra_hosts
from phoenix.secrets import Secrets
from roles.app import database_url, paths, render_config, server_command
from roles.firewall import open_ports
from roles.tls import certificate_paths

REPOSITORY = Path(__file__).resolve().parents[2]

# web1 has everything on one box; web2 and web3 use db1's PostgreSQL over the private network;
# vault1 keeps their backups.
INVENTORY = (
    SHOP_ENVIRONMENT
    + """\
hosts:
  web1:
    roles: [nginx, app, postgres]
    ssh: {host: 192.0.2.10}
    app:
      process_manager: supervisor
  web2:
    roles: [nginx, app]
    address: 10.0.0.2
    ssh: {host: 192.0.2.11}
    app:
      port: 7000
      static_dir: /srv/links/static
      database: {host: db1}
    site:
      hsts_max_age: 600
      client_max_body_size: 25m
  web3:
    roles: [app]
    address: 10.0.0.4
    ssh: {host: 192.0.2.12}
    app:
      name: shop
      database: {host: db1, name: shop, user: shop}
  db1:
    roles: [postgres]
    address: 10.0.0.3
    ssh: {host: 192.0.2.13}
  vault1:
    roles: [vault]
    ssh: {host: 198.51.100.30}
"""
)
SECRETS = Secrets(
    {"database_passwords": {"links": "p@ss%word/:", "shop": "s3cret"}, "session_secret": "50%-off"}, "test secrets"
)


@pytest.fixture
def hosts(write_inventory) -> dict[str, dict]:
    """Returns each host's pyinfra data, as inventories/<env>.py gives it to the roles."""
    return dict(pyinfra_hosts(load_environment(write_inventory(INVENTORY)), SECRETS))


def render(template: str, **variables) -> str:
    return get_template(str(REPOSITORY / "templates" / template)).render(variables)


def nginx_site(data: dict) -> str:
    certificate, key = certificate_paths(data["site"]["server_name"])
    return render(
        "nginx/etc/nginx/sites-available/app.conf.j2",
        site=data["site"],
        app=data["app"],
        certificate=certificate,
        key=key,
    )


def server_blocks(config: str) -> list[str]:
    return config.split("\nserver {")[1:]


def nftables(data: dict) -> str:
    return render("firewall/etc/nftables.conf.j2", ports=open_ports(SimpleNamespace(**data)))


def test_nginx_redirects_plain_http_to_https(hosts):
    plain, secure = server_blocks(nginx_site(hosts["web1"]))

    assert "listen 80 default_server;" in plain
    assert "return 301 https://$host$request_uri;" in plain
    assert "proxy_pass" not in plain
    assert "listen 443 ssl http2 default_server;" in secure
    assert "ssl_certificate /etc/ssl/phoenix/shop.example.com.crt;" in secure
    assert "ssl_certificate_key /etc/ssl/phoenix/shop.example.com.key;" in secure


def test_nginx_sends_hsts_with_the_configured_max_age(hosts):
    assert 'add_header Strict-Transport-Security "max-age=600" always;' in nginx_site(hosts["web2"])
    assert 'add_header Strict-Transport-Security "max-age=31536000" always;' in nginx_site(hosts["web1"])


def test_nginx_sends_no_hsts_when_max_age_is_zero(hosts):
    data = {**hosts["web2"], "site": {**hosts["web2"]["site"], "hsts_max_age": 0}}

    assert "Strict-Transport-Security" not in nginx_site(data)


def test_nginx_limits_request_bodies_to_the_configured_size(hosts):
    assert "client_max_body_size 25m;" in nginx_site(hosts["web2"])
    assert "client_max_body_size 10m;" in nginx_site(hosts["web1"])


def test_nginx_proxies_to_the_app_on_loopback_at_its_port(hosts):
    config = nginx_site(hosts["web2"])

    upstream = re.search(r"upstream (\w+) \{\n\s+server ([\d.:]+);", config)
    assert upstream.group(2) == "127.0.0.1:7000"
    assert f"proxy_pass http://{upstream.group(1)};" in config
    assert "proxy_read_timeout 60s;" in config


def test_nginx_serves_static_files_only_when_static_dir_is_set(hosts):
    assert "location /static/ {\n        alias /srv/links/static/;" in nginx_site(hosts["web2"])
    assert "location /static/" not in nginx_site(hosts["web1"])


def test_firewall_opens_ssh_http_and_https_on_nginx_hosts(hosts):
    rules = nftables(hosts["web1"])

    assert "tcp dport { 22, 80, 443 } accept" in rules
    assert "policy drop;" in rules
    # its database is local: only the vault's Barman reaches PostgreSQL, to archive it
    assert [line.strip() for line in rules.splitlines() if "5432" in line] == [
        "ip saddr { 198.51.100.30 } tcp dport 5432 accept"
    ]


def test_firewall_opens_only_ssh_to_everyone_on_a_database_only_host(hosts):
    rules = nftables(hosts["db1"])

    assert re.findall(r"tcp dport \{ ([^}]*) \} accept", rules) == ["22"]


def test_firewall_allows_the_database_port_only_from_its_app_hosts_and_the_archiving_vault(hosts):
    rules = nftables(hosts["db1"])

    assert [line.strip() for line in rules.splitlines() if "5432" in line] == [
        "ip saddr { 10.0.0.2, 10.0.0.4, 198.51.100.30 } tcp dport 5432 accept"
    ]


def test_firewall_adds_extra_ports_and_follows_the_ssh_port(hosts):
    data = {**hosts["db1"], "ssh": {**hosts["db1"]["ssh"], "port": 2222}, "firewall": {"extra_tcp_ports": [8443]}}

    assert "tcp dport { 2222, 8443 } accept" in nftables(data)


@pytest.mark.parametrize("name", ["web1", "web2", "web3", "db1"])
def test_firewall_never_flushes_other_tables(hosts, name):
    rules = nftables(hosts[name])

    assert "flush ruleset" not in rules
    assert "delete table inet phoenix" in rules


def pg_hba(data: dict) -> str:
    return render(
        "postgres/etc/postgresql/main/pg_hba.conf.j2",
        clients=data["postgres_clients"],
        archive_from=data["archive_vault_address"],
        archive_role="phoenix_archive",
    )


def test_pg_hba_has_one_scram_line_per_client_and_no_trust(hosts):
    access = pg_hba(hosts["db1"])

    host_lines = [line.split() for line in access.splitlines() if line.startswith("host")]
    assert host_lines == [
        ["host", "links", "links", "10.0.0.2/32", "scram-sha-256"],
        ["host", "shop", "shop", "10.0.0.4/32", "scram-sha-256"],
        # the vault's Barman, over TLS only: base backups and the WAL stream
        ["hostssl", "postgres", "phoenix_archive", "198.51.100.30/32", "scram-sha-256"],
        ["hostssl", "replication", "phoenix_archive", "198.51.100.30/32", "scram-sha-256"],
    ]
    assert "trust" not in access


def test_pg_hba_of_a_one_box_host_allows_its_app_over_loopback(hosts):
    access = pg_hba({**hosts["web1"], "archive_vault_address": ""})

    assert [line.split() for line in access.splitlines() if line.startswith("host")] == [
        ["host", "links", "links", "127.0.0.1/32", "scram-sha-256"]
    ]


def test_sshd_refuses_root_and_password_logins(hosts):
    config = render("base/etc/ssh/sshd_config.d/phoenix.conf.j2", port=hosts["web1"]["ssh"]["port"])

    assert "Port 22\n" in config
    assert "PermitRootLogin no\n" in config
    assert "PasswordAuthentication no\n" in config
    assert "KbdInteractiveAuthentication no\n" in config


def test_supervisor_program_runs_the_app_as_its_user_with_its_config(hosts):
    app = hosts["web1"]["app"]
    program = render(
        "supervisor/etc/supervisor/conf.d/program.conf.j2",
        program=app["name"],
        command=server_command(app),
        environment={"PHOENIX_APP_CONFIG": paths(app)["config"]},
        directory=f"/srv/{app['name']}",
        program_user=app["name"],
        marker="",
    )
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(program)

    section = parser["program:links"]
    assert section["command"] == (
        "/srv/links/venv/bin/python -m gunicorn --bind 127.0.0.1:6543 --workers 2 --paste /etc/links/production.ini"
    )
    assert section["user"] == "links"
    assert section["environment"] == 'PHOENIX_APP_CONFIG="/etc/links/production.ini"'


def test_systemd_unit_runs_the_app_as_its_user_with_its_config(hosts):
    app = hosts["web3"]["app"]
    where = paths(app)
    unit = render(
        "app/etc/systemd/system/app.service.j2",
        app=app,
        command=server_command(app),
        environment={"PHOENIX_APP_CONFIG": where["config"]},
        environment_file="",
        home=where["home"],
    )

    assert "EnvironmentFile" not in unit
    assert f"ExecStart={server_command(app)}\n" in unit
    assert "--bind 127.0.0.1:6543" in server_command(app)
    assert "User=shop\n" in unit and "Group=shop\n" in unit
    assert "Environment=PHOENIX_APP_CONFIG=/etc/shop/production.ini\n" in unit
    assert "WorkingDirectory=/srv/shop\n" in unit


def test_app_config_carries_the_database_url_of_a_remote_database(hosts):
    data = hosts["web3"]
    parser = configparser.ConfigParser()
    parser.read_string(render_config(data["app"], data["database_address"], SECRETS))

    assert parser["app:main"]["sqlalchemy.url"] == "postgresql://shop:s3cret@10.0.0.3:5432/shop"
    assert parser["alembic"]["sqlalchemy.url"] == "postgresql://shop:s3cret@10.0.0.3:5432/shop"


def test_app_config_reads_back_passwords_with_special_characters_exactly(hosts):
    data = hosts["web1"]
    parser = configparser.ConfigParser()  # with interpolation, as PasteDeploy and alembic read it
    parser.read_string(render_config(data["app"], data["database_address"], SECRETS))

    url = parser["app:main"]["sqlalchemy.url"]
    assert url == "postgresql://links:p%40ss%25word%2F%3A@127.0.0.1:5432/links"
    assert unquote(urlsplit(url).password) == "p@ss%word/:"
    assert parser["alembic"]["sqlalchemy.url"] == url
    assert parser["app:main"]["links.session_secret"] == "50%-off"
    assert parser["app:main"]["links.upload_dir"] == "/var/lib/links/uploads"


def test_database_url_quotes_user_and_password_and_uses_loopback_for_localhost():
    url = database_url({"user": "links", "name": "links"}, "localhost", "p@ss%word/:")

    assert url == "postgresql://links:p%40ss%25word%2F%3A@127.0.0.1:5432/links"


def test_barmans_cron_service_may_be_started_as_often_as_the_first_base_backup_asks():
    # the first base backup of each archived host starts `barman cron` every few seconds until WAL arrives:
    # under systemd's default start limit (5 in 10 s) the vault's first converge failed with two hosts
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string(
        render(
            "vault/etc/systemd/system/phoenix-barman.service.j2",
            description="WAL streaming",
            command="/usr/bin/barman -q cron",
            keep_children=True,
        )
    )
    assert unit["Unit"]["StartLimitIntervalSec"] == "0"
