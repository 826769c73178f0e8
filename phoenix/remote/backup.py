"""phoenix-backup's backup commands: `run` (a job's data, then its manifest), `watch`, `status` and `runs`.

A run writes its data snapshot, then, only if that fully succeeded, a manifest snapshot (row counts
and checksum, or file count and size). `watch` runs the files job when its data paths changed since
the last run began (phoenix/remote/file_changes.py), so an upload reaches the vault within a minute.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

from phoenix.remote.backup_host import (
    COUNT_QUERY,
    END_MARKER,
    Config,
    Psql,
    list_runs,
    ping,
    relay,
    row_counts,
    status_path,
    write_status,
)
from phoenix.remote.common import (
    JobError,
    RefusedError,
    Restic,
    last_lines,
    log,
    now,
    read_json,
    redact,
    retry_while_locked,
    summary_of,
    tag_arguments,
    warn,
)
from phoenix.remote.file_changes import fingerprint, read_baseline, read_baseline_record, write_baseline
from phoenix.remote.runs import WATCH_TRIGGER, run_tags
from phoenix.remote.vault_link import Watchdog, disk_full_message, endpoint, probe, refused_storage, unreachable

LOCK_PATH = Path("/run/lock/phoenix-backup.lock")
TRIGGERS = ("scheduled", "manual", "pre-upgrade")


# --- the one-backup-at-a-time lock -----------------------------------------------------


class HostLock:
    """An flock held for a whole run; the kernel drops it when the process dies, so it is never stale."""

    def __init__(self, path: Path, description: str):
        self.path = path
        self.description = description
        self.handle = None

    def acquire(self, wait_seconds: float) -> None:
        deadline = time.monotonic() + wait_seconds
        told = False
        while not self.acquire_if_free():
            holder = self.holder()
            if time.monotonic() >= deadline:
                raise JobError(
                    f"another backup still holds {self.path} after {wait_seconds:.0f}s ({holder}); giving up,"
                    " nothing was written"
                )
            if not told:
                log(f"waiting for the backup lock, held by {holder} (at most {wait_seconds:.0f}s)")
                told = True
            time.sleep(0.5)
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"{self.description}, pid {os.getpid()}, since {now().isoformat(timespec='seconds')}\n")
        self.handle.flush()

    def acquire_if_free(self) -> bool:
        """Takes the lock when nothing holds it, without waiting or writing a holder; returns whether it did."""
        if self.handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = self.path.open("a+")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def holder(self) -> str:
        self.handle.seek(0)
        return self.handle.read().strip() or "an unknown process"

    def release(self) -> None:
        if self.handle:
            self.handle.close()
            self.handle = None


# --- the jobs ----------------------------------------------------------------------------


def new_run_id() -> str:
    return now().strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def probe_repository(restic: Restic) -> None:
    """Fails fast and clearly when the vault does not answer (restic 0.14 would retry for minutes)."""
    url = endpoint(restic.repository)
    reason = probe(url, restic.cacert) if url else ""
    if reason:
        raise JobError(f"{unreachable(url, reason)}; nothing was written")


def check_repository(restic: Restic) -> None:
    """Fails fast and clearly when the repository cannot be reached or opened; clears stale locks."""
    probe_repository(restic)
    # unlock opens the repository too: every restic command pays its key derivation, so `cat config` runs only to
    # tell a repository that cannot be opened (the job fails) from a failed unlock (a warning)
    unlock = restic.run("unlock", check=False)  # removes only locks whose process is gone
    if unlock.returncode == 0:
        return
    result = restic.run("cat", "config", check=False)
    if result.returncode != 0:
        reason = redact(last_lines(result.stderr, 3))
        raise JobError(f"cannot open the repository {redact(restic.repository)}: {reason}")
    warn(f"restic unlock failed: {redact(last_lines(unlock.stderr, 2))}")


def abandon(process: subprocess.Popen) -> None:
    """Stops restic before it saves a snapshot of a partial stream (SIGINT: it cleans up its lock)."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def backup_database(config: Config, job: dict, tags: list[str]) -> tuple[dict, dict]:
    """Streams pg_dump into restic; returns (restic summary, manifest fields). Raises JobError on any failure."""
    database = job["database"]
    psql = Psql(database)
    scratch = Path(tempfile.mkdtemp(prefix="phoenix-backup-"))
    try:
        psql.send("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;")
        exported = psql.query("SELECT pg_export_snapshot();")
        psql.send(COUNT_QUERY)  # counted while pg_dump streams, in the same snapshot
        psql.send(f"\\echo {END_MARKER}")
        summary, checksum, size = stream_dump(config, database, exported[0], tags, scratch)
        tables = row_counts(psql.read_until_marker())
    finally:
        psql.close()
        shutil.rmtree(scratch, ignore_errors=True)
    manifest = {"database": database, "format": "pg_dump custom, uncompressed", "sha256": checksum, "bytes": size}
    manifest.update(tables=tables, rows=sum(tables.values()))
    return summary, manifest


def stream_dump(config: Config, database: str, snapshot: str, tags: list[str], scratch: Path) -> tuple[dict, str, int]:
    """Pipes pg_dump into `restic backup --stdin`, pipefail-style; returns (summary, sha256, bytes).

    When pg_dump fails, restic is interrupted before it saves anything: no snapshot of a partial dump.
    """
    dump_errors = scratch / "pg_dump.err"
    with dump_errors.open("w") as error_sink:
        dump = config.restic.watch(subprocess.Popen(
            ["runuser", "-u", "postgres", "--", "pg_dump", "--format=custom", "--compress=0",
             f"--snapshot={snapshot}", database],
            stdout=subprocess.PIPE, stderr=error_sink,
        ))  # fmt: skip
    restic, output = config.restic.start(
        "backup", "--json", "--host", config.host, "--stdin", "--stdin-filename", f"{database}.dump",
        *tag_arguments(tags),
        output_dir=scratch,
    )  # fmt: skip
    try:
        checksum, size = relay(dump, restic)
    except BrokenPipeError:
        dump.kill()
        dump.wait()
        restic.wait()
        raise JobError(f"restic stopped reading the dump: {redact(last_lines(output.read_text()))}") from None
    if dump.wait() != 0:
        abandon(restic)
        raise JobError(
            f"pg_dump of {database} failed (exit {dump.returncode}): {last_lines(dump_errors.read_text(), 3)};"
            " the partial dump was abandoned, no snapshot kept"
        )
    restic.stdin.close()
    if restic.wait() != 0:
        raise JobError(f"restic backup failed (exit {restic.returncode}): {redact(last_lines(output.read_text()))}")
    return summary_of(output.read_text()), checksum, size


def backup_files(config: Config, job: dict, tags: list[str]) -> tuple[dict, dict]:
    """Backs up the job's paths; returns (restic summary, manifest fields). Raises JobError on any failure."""
    paths = [path for path in job["paths"] if os.path.exists(path)]
    for missing in sorted(set(job["paths"]) - set(paths)):
        warn(f"{missing} does not exist; skipped")
    if not paths:
        raise JobError("none of the job's paths exist; nothing to back up")
    result = config.restic.run(
        "backup", "--json", "--host", config.host, "--exclude-caches", *tag_arguments(tags),
        *paths, check=False,
    )  # fmt: skip
    if result.returncode == 3:
        raise JobError(f"some files could not be read, the snapshot is incomplete: {last_lines(result.stderr, 3)}")
    if result.returncode != 0:
        raise JobError(f"restic backup failed (exit {result.returncode}): {redact(last_lines(result.stderr))}")
    summary = summary_of(result.stdout)
    stats = config.restic.json("stats", "--mode", "restore-size", summary["snapshot_id"])
    manifest = {"paths": paths, "files": stats["total_file_count"], "bytes": stats["total_size"]}
    manifest["counted_by"] = "restic stats --mode restore-size"
    return summary, manifest


def write_manifest(config: Config, manifest: dict, tags: list[str]) -> str:
    """Stores the manifest as the run's second snapshot; returns its id."""
    result = config.restic.run(
        "backup", "--json", "--host", config.host, "--stdin", "--stdin-filename", "manifest.json",
        *tag_arguments(tags),
        input=json.dumps(manifest, indent=2, sort_keys=True),
    )  # fmt: skip
    return summary_of(result.stdout)["snapshot_id"]


def run_job(config: Config, name: str, trigger: str, pin: str, deadline: float, before: str = "") -> dict:
    """Runs one job; returns its status record (result ok). Raises JobError when it fails. `before`: the watched
    paths' fingerprint already taken under this lock hold (the watch's look), else it is taken here."""
    job = config.job(name)
    run_id = new_run_id()
    record = {"job": name, "kind": job["kind"], "host": config.host, "trigger": trigger, "run": run_id, "pin": pin}
    record.update(started=now().isoformat(), result="running")
    began = time.monotonic()
    watched = job.get("watch_paths", [])
    before = before or (fingerprint(watched) if watched else "")  # under the lock: no restore is writing them now
    log(f"[{name}] run {run_id} ({trigger}{', pin asked: ' + pin if pin else ''}): checking the repository")
    check_repository(config.restic)
    with Watchdog(config.restic) as watchdog:
        try:
            summary, fields, manifest_id = _store_run(config, job, trigger, run_id, pin, deadline)
        except JobError as error:
            if watchdog.tripped:
                raise JobError(f"{watchdog.tripped}; nothing of this run counts (no manifest)") from error
            if refused_storage(str(error)):
                raise JobError(disk_full_message(str(error))) from error
            raise
    record.update(
        result="ok",
        finished=now().isoformat(),
        snapshot=summary["snapshot_id"],
        manifest_snapshot=manifest_id,
        bytes_added=summary.get("data_added", 0),
        bytes_processed=summary.get("total_bytes_processed", 0),
        duration_seconds=round(time.monotonic() - began, 2),
    )
    if watched:  # what changes after `before` was taken makes the watch run the job again
        write_baseline(config.state_dir, name, before, f"run {run_id}")
    if job["kind"] == "db":
        what = f"{fields['rows']} rows in {len(fields['tables'])} tables"
    else:
        what = f"{fields['files']} files"
    log(
        f"[{name}] done: snapshot {summary['snapshot_id'][:8]} + manifest {manifest_id[:8]}, {what},"
        f" {summary.get('total_bytes_processed', 0)} bytes read, {summary.get('data_added', 0)} added,"
        f" {record['duration_seconds']}s"
    )
    return record


def _store_run(config: Config, job: dict, trigger: str, run_id: str, pin: str, deadline: float):
    """Stores the run's data, then its manifest; returns (data summary, manifest fields, manifest id)."""
    name = job["name"]
    kind_backup = backup_database if job["kind"] == "db" else backup_files
    data_tags = run_tags(config.host, job, trigger, run_id, "data", pin)
    summary, fields = retry_while_locked(lambda: kind_backup(config, job, data_tags), deadline, f"[{name}]")
    manifest = {"run": run_id, "job": name, "kind": job["kind"], "host": config.host, "trigger": trigger}
    manifest.update(fields, data_snapshot=summary["snapshot_id"], created=now().isoformat())
    manifest_tags = run_tags(config.host, job, trigger, run_id, "manifest", pin)
    manifest_id = retry_while_locked(lambda: write_manifest(config, manifest, manifest_tags), deadline, f"[{name}]")
    return summary, fields, manifest_id


def command_run(config: Config, arguments: argparse.Namespace) -> int:
    """Runs the jobs; with --records, ends its output with their final status records (one JSON line): what these
    runs did, which the status file stops saying as soon as the next run (the watch's) begins."""
    names = list(config.jobs) if arguments.job == ["all"] else arguments.job
    for name in names:
        config.job(name)
    records = run_jobs(config, names, arguments.trigger, (arguments.pin or "").strip())
    if arguments.records:
        print(json.dumps(records, sort_keys=True), flush=True)
    return exit_status(records)


def exit_status(records: dict[str, dict]) -> int:
    """1 when any job failed, else 0."""
    return 1 if any(record["result"] == "failed" for record in records.values()) else 0


def command_watch(config: Config, arguments: argparse.Namespace) -> int:
    """Runs the files job when its data paths changed since its last run began; silent when they did not.

    Without a baseline (a new server, or a restore began since) it backs up only when the repository holds no
    complete run of the job yet (a new server's first backup); otherwise it records the data as they are and backs
    nothing up: a replacement server's empty or half-restored directories must never become the newest run.
    The paths are looked at holding the host's backup lock, so a restore or a backup running now is waited for."""
    name = arguments.job
    job = config.job(name)
    if not job.get("watch_paths"):
        raise JobError(f"job '{name}' has no data paths to watch (/etc is rebuilt by the blueprint)")
    refuse_stand_in(config)
    lock = HostLock(LOCK_PATH, f"{name} (watch)")
    try:
        lock.acquire(config.lock_wait_seconds)
        baseline, current = read_baseline(config.state_dir, name), fingerprint(job["watch_paths"])
        if not baseline and has_complete_run(config, name):
            write_baseline(config.state_dir, name, current, "the watch's first look")
            log(f"[{name}] watching {', '.join(job['watch_paths'])}: what changes from now on is backed up")
            return 0
        if not baseline:
            log(f"[{name}] no run of this job in the repository yet: backing up {', '.join(job['watch_paths'])}")
        elif current == baseline:
            return 0
        else:
            log(f"[{name}] {', '.join(job['watch_paths'])} changed since the last run began: backing up")
        return exit_status(run_holding_lock(config, [name], WATCH_TRIGGER, "", before=current))
    except JobError as error:  # the lock was not obtained, or the repository could not be asked for its runs
        log(f"[{name}] FAILED: {error}")
        ping(job.get("ping_url", ""), "failure", str(error), timeout=config.ping_timeout)
        return 1
    finally:
        lock.release()


def has_complete_run(config: Config, job: str) -> bool:
    """Returns whether the repository holds a complete run of the job from this host; raises JobError when it
    cannot be asked. Only asks: no lock taken, no stale lock cleared (the run that may follow does that)."""
    probe_repository(config.restic)
    return any(run.complete for run in list_runs(config, job, lock=False))


def command_watch_state(config: Config, arguments: argparse.Namespace) -> int:
    """Prints, as JSON, whether a files job's data paths are as its last successful run found them when it began
    (the drill's real RPO of the files: nothing lost when they are and that run is the one restored)."""
    job = config.job(arguments.job)
    record = read_baseline_record(config.state_dir, arguments.job)
    watched = job.get("watch_paths", [])
    unchanged = bool(watched) and record.get("fingerprint") == fingerprint(watched)
    print(json.dumps({"job": arguments.job, "baseline": record.get("source", ""), "unchanged": unchanged}))
    return 0


def refuse_stand_in(config: Config) -> None:
    if config.stand_in:
        raise RefusedError(
            f"this host stands in for {config.stand_in} (a drill or a dev copy): it restores from"
            " that host's repository and never backs up into it"
        )


def run_jobs(config: Config, names: list[str], trigger: str, pin: str) -> dict[str, dict]:
    """Runs the jobs under the host's backup lock; returns each one's final status record (every job failed
    when the lock was not obtained)."""
    refuse_stand_in(config)
    lock = HostLock(LOCK_PATH, f"{'+'.join(names)} ({trigger})")
    started = now().isoformat()
    try:
        lock.acquire(config.lock_wait_seconds)
        return run_holding_lock(config, names, trigger, pin)
    except JobError as error:  # the lock was not obtained: every job failed
        records = {}
        for name in names:
            log(f"[{name}] FAILED: {error}")
            ping(config.jobs[name].get("ping_url", ""), "failure", str(error), timeout=config.ping_timeout)
            records[name] = failed_record(config, name, trigger, started, str(error))
        return records
    finally:
        lock.release()


def failed_record(config: Config, name: str, trigger: str, started: str, message: str) -> dict:
    return {
        "job": name, "kind": config.jobs[name]["kind"], "host": config.host, "trigger": trigger,
        "result": "failed", "error": message, "started": started, "finished": now().isoformat(),
    }  # fmt: skip


def run_holding_lock(config: Config, names: list[str], trigger: str, pin: str, before: str = "") -> dict[str, dict]:
    """Runs the jobs one after the other, each with its status record and pings; returns each one's final record.
    `before`: the fingerprint run_job would take (a single watched job's, taken by the watch's look)."""
    deadline = time.monotonic() + config.lock_wait_seconds
    records = {}
    for name in names:
        job = config.jobs[name]
        started = now().isoformat()
        ping(job.get("ping_url", ""), "start", timeout=config.ping_timeout)
        running = {"job": name, "result": "running", "started": started, "trigger": trigger, "pid": os.getpid()}
        write_status(config, name, running)
        try:
            records[name] = run_job(config, name, trigger, pin, deadline, before)
        except JobError as error:
            message = str(error)
            log(f"[{name}] FAILED: {message}")
            records[name] = failed_record(config, name, trigger, started, message)
            write_status(config, name, records[name])
            ping(job.get("ping_url", ""), "failure", message, timeout=config.ping_timeout)
            continue
        write_status(config, name, records[name])
        ping(job.get("ping_url", ""), "success", timeout=config.ping_timeout)
    return records


INTERRUPTED = "it stopped before it finished (killed, or the host went down); the next run starts afresh"


def command_status(config: Config, arguments: argparse.Namespace) -> int:
    """Prints each job's newest record; a run recorded as running that no process runs any more (killed: a reboot,
    the OOM killer) is shown as interrupted. Writes nothing."""
    print(json.dumps(read_statuses(config, LOCK_PATH), indent=2, sort_keys=True))
    return 0


def read_statuses(config: Config, lock_path: Path) -> dict[str, dict]:
    """Returns each job's newest record; one still "running" that no process runs any more is shown interrupted.
    Its process is looked for by the pid the record names (run_is_alive). The host's backup lock is tried for a
    moment too, for a record without a pid: a run writes its last record before it lets the lock go, so a record
    still "running" while the lock is free is a run that was killed."""
    lock = HostLock(lock_path, "phoenix-backup status")
    try:
        free = lock.acquire_if_free()
        records = _statuses(config)
    finally:
        lock.release()
    for record in records.values():
        if record.get("result") == "running" and (free or not run_is_alive(record)):
            record.update(result="interrupted", error=INTERRUPTED)
    return records


def run_is_alive(record: dict) -> bool:
    """Whether the process that wrote "running" record `record` still runs: its pid is a Phoenix process that began
    before the record was written (a pid the kernel gave again, after a reboot or a container's restart, to a
    later process is not it). A record without a pid (written before runs recorded theirs) counts as alive."""
    pid = record.get("pid")
    if not isinstance(pid, int):
        return True
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
        after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(
            int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime ")
        )
        written = datetime.fromisoformat(record["started"]).timestamp()
        began = boot + int(after_name[19]) / os.sysconf("SC_CLK_TCK")  # stat's 22nd field: clock ticks after boot
    except (OSError, StopIteration, ValueError, KeyError, IndexError):
        return False
    # `phoenix-backup` execs `python3 -m phoenix.remote.backup_job`
    return b"phoenix" in command and began <= written + 5  # btime is a whole second; clocks slew


def _statuses(config: Config) -> dict[str, dict]:
    return {name: read_json(status_path(config, name), {"result": "never run"}) for name in config.jobs}


def command_runs(config: Config, arguments: argparse.Namespace) -> int:
    print(json.dumps([run.summary() for run in list_runs(config, arguments.job)], indent=2))
    return 0


COMMANDS = {
    "run": command_run,
    "watch": command_watch,
    "watch-state": command_watch_state,
    "status": command_status,
    "runs": command_runs,
}
