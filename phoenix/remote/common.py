"""What the server-side programs share: restic invocation, JSON files, locks, log lines."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

LOCKED_MARKERS = ("repository is already locked", "unable to create lock")
# the REST server refused to store an object: a full vault disk, mostly (never a lock held by another)
REFUSED_MARKERS = ("403 Forbidden", "500 Internal Server Error", "507 Insufficient Storage")


class JobError(Exception):
    """A failure with a message for the operator: what failed, and what was (not) kept."""


class RefusedError(JobError):
    """A request refused to protect data (a restore over a live database without --force)."""


def log(message: str) -> None:
    """Prints one line to stdout (the journal, under systemd)."""
    print(message, flush=True)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def now() -> datetime:
    return datetime.now(UTC)


def redact(text: str) -> str:
    """Returns `text` with the password of any URL in it replaced by ***."""
    return re.sub(r"(//[^:/@\s]+):[^@\s]*@", r"\1:***@", text)


def read_json(path: Path, default=None):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


def read_settings(path: Path) -> dict:
    """Returns the settings a role wrote to `path`; raises JobError when the host was never deployed."""
    values = read_json(path)
    if values is None:
        raise JobError(f"{path} not found: deploy the blueprint (deploy.py) on this host first")
    return values


def tag_arguments(tags: list[str]) -> list[str]:
    """Returns restic's `--tag T` arguments, one pair per tag (a tag may hold spaces, never commas)."""
    return [argument for tag in tags for argument in ("--tag", tag)]


def write_json(path: Path, value, mode: int = 0o644) -> None:
    """Writes `value` as JSON to `path` atomically (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(descriptor, "w") as handle:
        json.dump(value, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def last_lines(text: str, count: int = 5) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-count:] if line.strip())


@dataclass
class Restic:
    """Runs restic against one repository; the password and URL travel in the environment, never in argv."""

    repository: str
    password: str
    cacert: str = ""
    extra_environment: dict = field(default_factory=dict)
    cache: bool = True
    flags: list[str] = field(default_factory=list)  # global flags for every command (--no-lock)
    running: set = field(default_factory=set, repr=False, compare=False)  # for kill_all

    def kill_all(self) -> None:
        """Kills every process of a run still going: the restic this object started and what feeds
        them (a watchdog's last resort: SIGINT would make restic retry removing its lock from a
        vault that does not answer)."""
        for process in list(self.running):
            if process.poll() is None:
                process.kill()

    def watch(self, process: subprocess.Popen) -> subprocess.Popen:
        """Returns `process`, which kill_all will also stop (a pg_dump feeding restic, say)."""
        self.running = {known for known in self.running if known.poll() is None} | {process}
        return process

    def command(self, *arguments: str) -> list[str]:
        base = ["restic", *self.flags]
        if self.cacert:
            base += ["--cacert", self.cacert]
        if not self.cache:
            base.append("--no-cache")
        return [*base, *arguments]

    def environment(self) -> dict:
        return {
            **os.environ,
            **self.extra_environment,
            "RESTIC_REPOSITORY": self.repository,
            "RESTIC_PASSWORD": self.password,
        }

    def run(self, *arguments: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        """Runs restic to completion; raises JobError naming the command when it fails and `check`."""
        process = self.watch(
            subprocess.Popen(
                self.command(*arguments),
                env=self.environment(),
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
        stdout, stderr = process.communicate(input)
        result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        if check and result.returncode != 0:
            reason = redact(last_lines(result.stderr))
            raise JobError(f"restic {arguments[0]} failed (exit {result.returncode}): {reason}")
        return result

    def json(self, *arguments: str):
        return json.loads(self.run(*arguments, "--json").stdout or "null")

    def popen_dump(self, snapshot_id: str, path: str) -> subprocess.Popen:
        """Starts `restic dump`, the file's bytes on the process's stdout."""
        return self.watch(
            subprocess.Popen(
                self.command("dump", snapshot_id, path),
                env=self.environment(),
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        )

    def start(self, *arguments: str, output_dir: Path) -> tuple[subprocess.Popen, Path]:
        """Starts restic reading stdin, its output going to a file in `output_dir` (a full pipe would stall it)."""
        output = output_dir / "restic.out"
        with output.open("w") as sink:
            process = subprocess.Popen(
                self.command(*arguments),
                env=self.environment(),
                stdin=subprocess.PIPE,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        return self.watch(process), output


def is_locked(message: str) -> bool:
    """True when restic failed because another process holds the repository lock."""
    refused = any(marker in message for marker in REFUSED_MARKERS)  # a lock it could not write
    return not refused and any(marker in message for marker in LOCKED_MARKERS)


def summary_of(output: str) -> dict:
    """Given `restic backup --json` output, returns its summary message."""
    for line in reversed(output.splitlines()):
        line = line.strip()
        if line.startswith("{") and '"summary"' in line:
            return json.loads(line)
    raise JobError(f"restic printed no backup summary: {redact(last_lines(output))}")


def retry_while_locked(action, deadline: float, what: str, pause: float = 30.0):
    """Runs action() again while restic reports a locked repository, until `deadline` (monotonic)."""
    while True:
        try:
            return action()
        except JobError as error:
            if not is_locked(str(error)) or time.monotonic() + pause > deadline:
                raise
            log(f"{what}: the repository is locked (a check or prune on the vault?); trying again in {pause:.0f}s")
            time.sleep(pause)


def parse_time(text: str) -> datetime:
    """Parses restic's timestamps (nanoseconds, any offset) into an aware datetime."""
    if "." in text:
        head, rest = text.split(".", 1)
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
