"""A data host's view of its vault while it backs up: is it answering, and did it refuse data?

restic 0.14 has no retry knobs: a vault that stops answering keeps it retrying for minutes and
ends with `Remove(<lock/...>) returned error, retrying`. So phoenix-backup probes the vault
itself, before a run (a short timeout) and during it (a watchdog that kills restic when the
vault has not answered for UNREACHABLE_AFTER_SECONDS), and says "vault unreachable: URL".

A full vault disk reaches restic as HTTP errors on saving an object (the append-only rclone
server refuses the retry of a half-written file with 403 Forbidden); `refused_storage` turns
that into words. The vault's free space is known only on the vault: backup.py asks it there.
"""

from __future__ import annotations

import re
import ssl
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

from phoenix.remote.common import REFUSED_MARKERS, Restic, log

PROBE_TIMEOUT_SECONDS = 5
PROBE_INTERVAL_SECONDS = 2
UNREACHABLE_AFTER_SECONDS = 15
DISK_FULL = "vault disk full"


def endpoint(repository: str) -> str:
    """Given a restic repository, returns its REST server's URL without the login; "" when not a REST server."""
    if not repository.startswith("rest:"):
        return ""
    parts = urlsplit(repository[len("rest:") :])
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def probe(url: str, cacert: str = "", timeout: float = PROBE_TIMEOUT_SECONDS) -> str:
    """Returns "" when the server at `url` answers HTTP at all (any status, even 401), else why not."""
    context = ssl.create_default_context(cafile=cacert or None) if url.startswith("https:") else None
    request = urllib.request.Request(url.rstrip("/") + "/config", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context):
            return ""
    except urllib.error.HTTPError:
        return ""  # it answered
    except urllib.error.URLError as error:
        if isinstance(error.reason, ssl.SSLError):
            return ""  # it answered TLS: reachable (restic will say what is wrong with the certificate)
        return str(error.reason)
    except ssl.SSLError:
        return ""
    except (TimeoutError, OSError) as error:
        return str(error) or type(error).__name__


def unreachable(url: str, reason: str) -> str:
    return f"vault unreachable: {url} ({reason})"


class Watchdog:
    """While a run talks to the vault, probes it; kills the run's restic when it stopped answering.

    `tripped` then holds the message to report instead of whatever restic said when killed."""

    def __init__(self, restic: Restic, after: float = UNREACHABLE_AFTER_SECONDS):
        self.restic = restic
        self.url = endpoint(restic.repository)
        self.after = after
        self.tripped = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Watchdog:
        if self.url:
            self._thread.start()
        return self

    def __exit__(self, *exception) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=PROBE_TIMEOUT_SECONDS + 1)

    def _watch(self) -> None:
        last_answer = time.monotonic()
        while not self._stop.wait(PROBE_INTERVAL_SECONDS):
            reason = probe(self.url, self.restic.cacert)
            if not reason:
                last_answer = time.monotonic()
                continue
            silent = time.monotonic() - last_answer
            if silent >= self.after:
                self.tripped = unreachable(
                    self.url, f"no answer for {silent:.0f}s during the backup: {reason}; restic was stopped"
                )
                log(self.tripped)
                self.restic.kill_all()
                return


def refused_storage(message: str) -> bool:
    """True when restic failed because the vault refused to store an object (a full disk, mostly)."""
    return any(marker in message for marker in REFUSED_MARKERS)


def disk_full_message(message: str) -> str:
    """Given restic's failure, returns it in words: what the vault refused, and that nothing of the run counts."""
    marker = next((marker for marker in REFUSED_MARKERS if marker in message), "an error")
    saved = re.search(r"Save\(<([a-z]+/[0-9a-f]+)>\)", message)
    what = f" on saving {saved[1]}" if saved else ""
    return (
        f"{DISK_FULL}: the vault refused to store this run's data (HTTP {marker}{what}); nothing of this run"
        " counts; phoenix status shows the vault's free space"
    )
