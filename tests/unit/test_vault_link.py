"""phoenix-backup's view of the vault: unreachable within seconds, a refused write said in words."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
import time

import pytest

from phoenix.remote import vault_link
from phoenix.remote.common import Restic


@pytest.fixture
def answering_server():
    """A loopback HTTP server that answers every request 401, as the vault does without a login."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(401)
            self.end_headers()

        def log_message(self, *arguments):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers: a paused vault."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()


def free_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return probe_socket.getsockname()[1]


def test_the_endpoint_drops_the_login():
    assert vault_link.endpoint("rest:https://web1:s3cr%2Ft@vault1:8443/web1/") == "https://vault1:8443/web1/"
    assert vault_link.endpoint("/srv/restic-repo") == ""


def test_a_vault_answering_even_401_is_reachable_and_a_closed_or_silent_one_is_not(answering_server, silent_port):
    assert vault_link.probe(f"http://127.0.0.1:{answering_server.server_port}/web1/") == ""
    assert "refused" in vault_link.probe(f"http://127.0.0.1:{free_port()}/web1/", timeout=2)
    began = time.monotonic()
    assert "timed out" in vault_link.probe(f"http://127.0.0.1:{silent_port}/web1/", timeout=1)
    assert time.monotonic() - began < 10


def test_the_watchdog_stops_restic_when_the_vault_goes_silent_and_says_so(answering_server, monkeypatch):
    monkeypatch.setattr(vault_link, "PROBE_INTERVAL_SECONDS", 0.1)
    monkeypatch.setattr(vault_link, "PROBE_TIMEOUT_SECONDS", 1)
    url = f"http://127.0.0.1:{answering_server.server_port}/web1/"
    restic = Restic(repository=f"rest:{url}", password="x")
    stand_in = restic.watch(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]))

    with vault_link.Watchdog(restic, after=1) as watchdog:
        time.sleep(0.5)
        assert not watchdog.tripped and stand_in.poll() is None  # the vault answers: nothing happens
        answering_server.shutdown()
        answering_server.server_close()
        assert stand_in.wait(timeout=30) != 0  # the watchdog killed it

    assert watchdog.tripped.startswith(f"vault unreachable: {url} (no answer for ")
    assert "restic was stopped" in watchdog.tripped


def test_a_refused_write_is_reported_as_a_full_vault_disk():
    restic_said = (
        "restic backup failed (exit 1): Fatal: unable to save snapshot: server response unexpected: 403 Forbidden (403)"  # noqa: E501
    )
    assert vault_link.refused_storage(restic_said)
    assert vault_link.disk_full_message(restic_said).startswith("vault disk full: the vault refused to store")
    assert not vault_link.refused_storage("restic backup failed (exit 3): some files could not be read")


def test_a_lock_the_vault_refused_to_store_is_not_mistaken_for_a_lock_held_by_another():
    from phoenix.remote.common import is_locked

    assert is_locked("unable to create lock in backend: repository is already locked by PID 12 on web1")
    assert not is_locked("unable to create lock in backend: server response unexpected: 403 Forbidden (403)")
