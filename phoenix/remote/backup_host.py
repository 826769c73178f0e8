"""The data host's side of the backups, shared by phoenix-backup's commands (phoenix/remote/backup.py
and phoenix/remote/restore.py): the host's settings, its runs in the repository, psql sessions, the
stream between two processes, and the healthchecks.io-style ping.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

from phoenix.remote.common import JobError, Restic, last_lines, read_json, read_settings, redact, warn, write_json
from phoenix.remote.runs import Run, runs_from_listing

SETTINGS_PATH = "/etc/phoenix/backup.json"  # written by roles/backup.py: the restic password, the vault login
CONFIG_PATH = Path(os.environ.get("PHOENIX_BACKUP_CONFIG", SETTINGS_PATH))
CHUNK = 1 << 20
END_MARKER = "__phoenix_end__"

# Exact row counts of every user table, in the transaction whose snapshot pg_dump also uses.
COUNT_QUERY = r"""
SELECT format('%I.%I', n.nspname, c.relname),
       (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM ONLY %I.%I', n.nspname, c.relname),
                                            false, true, '')))[1]::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
 ORDER BY 1;
"""


class Config:
    """The host's backup settings, written by the backup role (mode 0600: it holds the passwords)."""

    def __init__(self, path: Path = CONFIG_PATH):
        values = read_settings(path)
        self.host = values["host"]
        self.jobs = {job["name"]: job for job in values["jobs"]}
        self.lock_wait_seconds = values["lock_wait_seconds"]
        self.state_dir = Path(values["state_dir"])
        self.ping_timeout = values.get("ping_timeout_seconds", 10)
        self.stand_in = values.get("stand_in", "")
        self.restic = Restic(
            repository=values["repository"],
            password=values["password"],
            cacert=values.get("cacert", ""),
            extra_environment=values.get("environment", {}),
        )

    def job(self, name: str) -> dict:
        if name not in self.jobs:
            raise JobError(f"no backup job '{name}' on {self.host} (jobs: {', '.join(self.jobs)})")
        return self.jobs[name]


# --- pings and status -------------------------------------------------------------------


def ping(url: str, event: str, body: str = "", timeout: float = 10) -> None:
    """Pings a healthchecks.io-style URL: <url>/start, <url>, <url>/fail. A failed ping only warns."""
    if not url:
        return
    target = url.rstrip("/") + {"start": "/start", "success": "", "failure": "/fail"}[event]
    data = body.encode()[:10000] if event == "failure" else None
    for attempt in range(2):
        try:
            with urllib.request.urlopen(urllib.request.Request(target, data=data), timeout=timeout):
                return
        except OSError as error:
            if attempt:
                warn(f"ping {event} to {redact(target)} failed: {error}")
            else:
                time.sleep(1)


def status_path(config: Config, job: str) -> Path:
    return config.state_dir / "status" / f"{job}.json"


def write_status(config: Config, job: str, record: dict) -> None:
    """Writes the job's newest record, keeping its last success and, while a run is under way, the failure of the
    run before it (the files watch retries a failed run within a minute: the failure must stay in sight)."""
    previous = read_json(status_path(config, job), {})
    if record["result"] == "ok":
        record["last_success"] = {key: record[key] for key in ("run", "finished", "snapshot", "trigger")}
    elif previous.get("last_success"):
        record["last_success"] = previous["last_success"]
    if record["result"] == "failed":
        record["last_failure"] = {key: record[key] for key in ("finished", "trigger", "error")}
    elif record["result"] == "running" and previous.get("last_failure"):
        record["last_failure"] = previous["last_failure"]
    write_json(status_path(config, job), record)


# --- the database and the streams --------------------------------------------------------


class Psql:
    """A psql session on one database, as the postgres superuser, fed line by line."""

    def __init__(self, database: str):
        self.process = subprocess.Popen(
            ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-tA", "-F", "\t", "-v", "ON_ERROR_STOP=1",
             "-d", database],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def send(self, sql: str) -> None:
        self.process.stdin.write(sql + "\n")
        self.process.stdin.flush()

    def read_until_marker(self) -> list[str]:
        lines = []
        for line in self.process.stdout:
            if line.strip() == END_MARKER:
                return lines
            lines.append(line.rstrip("\n"))
        raise JobError(f"psql ended early: {last_lines(self.process.stderr.read())}")

    def query(self, sql: str) -> list[str]:
        self.send(sql)
        self.send(f"\\echo {END_MARKER}")
        return self.read_until_marker()

    def close(self) -> None:
        try:
            self.send("COMMIT;")
            self.process.stdin.close()
        except OSError:
            pass
        self.process.wait(timeout=60)


def row_counts(lines: list[str]) -> dict[str, int]:
    counts = {}
    for line in lines:
        table, count = line.split("\t")
        counts[table] = int(count)
    return counts


def relay(source: subprocess.Popen, sink: subprocess.Popen) -> tuple[str, int]:
    """Copies source's stdout into sink's stdin; returns (sha256, bytes). Leaves sink's stdin open."""
    digest = hashlib.sha256()
    size = 0
    while chunk := source.stdout.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        sink.stdin.write(chunk)
    return digest.hexdigest(), size


# --- the runs in the repository ----------------------------------------------------------


def list_runs(config: Config, job: str = "", lock: bool = True) -> list[Run]:
    """Returns the host's runs (of `job`, when given); without `lock`, restic lists without writing a lock."""
    arguments = ["snapshots", "--host", config.host] + (["--tag", f"job={job}"] if job else [])
    arguments += [] if lock else ["--no-lock"]
    return runs_from_listing(config.restic.json(*arguments))


def read_manifest(restic: Restic, run: Run) -> dict:
    return json.loads(restic.run("dump", run.manifest["id"], "/manifest.json").stdout)


def choose_run(runs: list[Run], run_id: str) -> Run:
    complete = [run for run in runs if run.complete]
    if run_id:
        chosen = next((run for run in runs if run.id == run_id), None)
        if chosen is None:
            raise JobError(f"no run {run_id} in the repository")
        if not chosen.complete:
            raise JobError(f"run {run_id} has no manifest: it did not finish, it cannot be trusted")
        return chosen
    if not complete:
        raise JobError("the repository holds no complete run of this job")
    return complete[-1]
