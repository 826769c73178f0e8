"""Unit-test fixtures: each test gets its own age identity path and state directory, never the operator's."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from shop_inventory import SHOP_ENVIRONMENT

# A real (not throwaway) environment reached over SSH: web1 serves the site, db1 its database,
# vault1 keeps both hosts' backups.
SHOP_INVENTORY = (
    SHOP_ENVIRONMENT
    + """\
hosts:
  web1:
    roles: [nginx, app]
    address: 10.0.0.2
    ssh:
      host: 192.0.2.10
    app:
      database:
        host: db1
  db1:
    roles: [postgres]
    address: 10.0.0.3
    ssh:
      host: 192.0.2.20
  vault1:
    roles: [vault]
    ssh:
      host: 198.51.100.30
"""
)


@pytest.fixture(autouse=True)
def private_phoenix_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOENIX_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PHOENIX_AGE_IDENTITY", str(tmp_path / "identity" / "age-identity.txt"))
    for variable in ("PHOENIX_SANDBOX", "VISUAL", "EDITOR"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def shop_inventory_text() -> str:
    """Returns the YAML of a valid real environment "shop": web1 (nginx, app) using db1 (postgres), vault1."""
    return SHOP_INVENTORY


@pytest.fixture
def write_inventory(tmp_path: Path) -> Callable[..., Path]:
    """Returns a function that writes YAML text to <tmp>/inventories/<name>.yml and returns that path."""

    def write(text: str = SHOP_INVENTORY, name: str = "shop") -> Path:
        path = tmp_path / "inventories" / f"{name}.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return write


@pytest.fixture
def receiver():
    """A loopback HTTP server recording (method, path, body) of each request."""
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def record(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            received.append((self.command, self.path, body))
            self.send_response(200)
            self.end_headers()

        do_GET = do_POST = record

        def log_message(self, *arguments):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/ping/abc", received
    server.shutdown()


@pytest.fixture
def vault_config(tmp_path: Path) -> Callable[..., Path]:
    """Returns a function that writes a vault's settings (as the vault role does) for `clients` and returns the path.

    The vault's data directory is tmp_path; retention keeps one daily run and one verified run.
    """

    def write(*clients: str) -> Path:
        settings = {
            "user": "phoenix-vault",
            "data_dir": str(tmp_path),
            "clients": {client: "secret" for client in clients or ("web1",)},
            "retention": {
                "keep_within_seconds": 0, "hourly": 0, "daily": 1, "weekly": 0, "monthly": 0, "minimum_verified": 1,
            },
            "check_read_data_subset": "5%",
        }  # fmt: skip
        path = tmp_path / "vault.json"
        path.write_text(json.dumps(settings))
        return path

    return write
