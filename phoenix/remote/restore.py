"""Restoring runs on the host they came from: the database, the data directories, a scratch check.

Every restore is compared with the run's manifest before it counts: the dump's checksum and
each table's row count, or every restored file's presence and size. Reports are printed as
JSON and kept in /var/lib/phoenix/restore/<job>.json for restore.py to show.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from phoenix.remote.backup_host import (
    COUNT_QUERY,
    Config,
    Psql,
    choose_run,
    list_runs,
    read_manifest,
    relay,
    row_counts,
)
from phoenix.remote.common import JobError, RefusedError, last_lines, now, write_json
from phoenix.remote.file_changes import RESTORED, remove_baseline, write_baseline
from phoenix.remote.restore_progress import RestoreProgress
from phoenix.remote.runs import Run

POSTGRES = ["runuser", "-u", "postgres", "--"]
REPORT_DIRECTORY = Path("/var/lib/phoenix/restore")
SCRATCH_DIRECTORY = Path("/var/lib/phoenix/restore-scratch")  # a run's dump, restored as a file (root only)
SCRATCH_MARGIN = 256 * 1024 * 1024  # free bytes left beside the dump's file, else the dump is streamed
# The steps a restore records before running each (restore_progress.py): a killed one names its step.
DATABASE_STEPS = [
    "restic dump of the run's manifest",
    "psql counting the live rows",
    "restic restore of the dump, pg_restore --clean",
    "psql ANALYZE",
    "psql counting the restored rows",
]
FILES_STEPS = ["restic ls of the run's files", "restic restore", "chown of the restored paths", "stat of every file"]


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)  # stdout carries the JSON report


def database_exists(database: str) -> bool:
    result = subprocess.run(
        [*POSTGRES, "psql", "-X", "-tA", "-c", f"SELECT 1 FROM pg_database WHERE datname = '{database}'"],
        capture_output=True,
        text=True,
    )
    return result.stdout.strip() == "1"


def live_rows(database: str) -> dict[str, int]:
    """Returns the row count of every user table of `database` (empty when it does not exist)."""
    if not database_exists(database):
        return {}
    psql = Psql(database)
    try:
        return row_counts(psql.query(COUNT_QUERY))
    finally:
        psql.close()


def restore_dump(config: Config, run: Run, database: str, extra: list[str], dump_bytes: int) -> tuple[str, int]:
    """Restores the run's dump (of `dump_bytes`, from its manifest) into `database` with pg_restore; returns
    (sha256, bytes) of the dump. restic restores it into a file first and pg_restore reads the file while its
    checksum is computed beside: restic restore fetches the dump's blobs in parallel, where `restic dump` takes
    them one at a time and the pipe kept pg_restore waiting (775 MiB: 2.8 s against 6.3 s, then 9.4 s of
    pg_restore against 15.9 s for both through the pipe). Without room for the file, the dump is streamed."""
    SCRATCH_DIRECTORY.mkdir(mode=0o700, parents=True, exist_ok=True)
    if shutil.disk_usage(SCRATCH_DIRECTORY).free < dump_bytes + SCRATCH_MARGIN:
        progress(f"[{run.job}] no room for the dump's {dump_bytes} bytes in {SCRATCH_DIRECTORY}: streaming it")
        return stream_restore(config, run, database, extra)
    scratch = SCRATCH_DIRECTORY / database
    shutil.rmtree(scratch, ignore_errors=True)  # a killed restore's
    try:
        dump_path = (run.data.get("paths") or [f"/{database}.dump"])[0]
        config.restic.run("restore", run.data["id"], "--target", str(scratch), "--include", dump_path)
        with ThreadPoolExecutor(max_workers=1) as pool, open(scratch / dump_path.lstrip("/"), "rb") as dump:
            digest = pool.submit(file_digest, scratch / dump_path.lstrip("/"))
            restore = subprocess.run(
                [*POSTGRES, "pg_restore", "--exit-on-error", *extra, "-d", database], stdin=dump, stderr=subprocess.PIPE
            )
            checksum, size = digest.result()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if restore.returncode != 0:
        failure = last_lines(restore.stderr.decode(), 3)
        raise JobError(f"restore of {database} failed: pg_restore exit {restore.returncode} {failure}")
    return checksum, size


def file_digest(path: Path) -> tuple[str, int]:
    """Returns (sha256, bytes) of a file."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as file:
        while chunk := file.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def stream_restore(config: Config, run: Run, database: str, extra: list[str]) -> tuple[str, int]:
    """Pipes `restic dump` of the run's dump into pg_restore; returns (sha256, bytes) of the stream."""
    dump_path = (run.data.get("paths") or [f"/{database}.dump"])[0]
    dump = subprocess.Popen(
        config.restic.command("dump", run.data["id"], dump_path),
        env=config.restic.environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    restore = subprocess.Popen(
        [*POSTGRES, "pg_restore", "--exit-on-error", *extra, "-d", database],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        checksum, size = relay(dump, restore)
    except BrokenPipeError:
        checksum, size = "", 0
    restore.stdin.close()
    if dump.wait() != 0 or restore.wait() != 0:
        raise JobError(
            f"restore of {database} failed: restic dump exit {dump.returncode}"
            f" {last_lines(dump.stderr.read().decode(), 2)}; pg_restore exit {restore.returncode}"
            f" {last_lines(restore.stderr.read().decode(), 3)}"
        )
    return checksum, size


def compare(manifest: dict, checksum: str, size: int, restored: dict[str, int]) -> dict:
    """Returns the verification part of a database report: checksum and row counts against the manifest."""
    tables = set(manifest["tables"]) | set(restored)
    mismatched = {
        t: [manifest["tables"].get(t), restored.get(t)]
        for t in sorted(tables)
        if manifest["tables"].get(t) != restored.get(t)
    }  # noqa: E501
    result = {
        "checksum_matches": checksum == manifest["sha256"] and size == manifest["bytes"],
        "bytes": size,
        "tables": len(restored),
        "rows": sum(restored.values()),
        "manifest_rows": manifest["rows"],
        "manifest_tables": manifest["tables"],
        "mismatched_tables": mismatched,
    }
    result["ok"] = result["checksum_matches"] and not mismatched
    return result


def run_report(run: Run) -> dict:
    return {
        "run": run.id,
        "job": run.job,
        "snapshot": run.data["id"],
        "snapshot_time": run.time.isoformat(),
        "age_seconds": round((now() - run.time).total_seconds()),
        "trigger": run.trigger,
    }


def finish(report: dict, began: float, name: str, in_place: bool = True) -> int:
    """Keeps and prints the report; returns 0 when it matched its manifest, else says so on stderr
    (for a restore in place, with what to do: restore.py stops on this host before the app starts)."""
    report["seconds"] = round(time.monotonic() - began, 2)
    write_json(REPORT_DIRECTORY / f"{name}.json", report)
    print(json.dumps(report, indent=2, sort_keys=True))
    if report["ok"]:
        return 0
    line = f"run {report['run']} of {report['job']} was restored but DOES NOT match its manifest: {mismatch(report)}"
    if in_place:
        line += (
            "; the restored data may be damaged, so the app is not started. Have the vault check the run"
            " (`phoenix-vault check`), then restore an older run on purpose:"
            " restore.py --data snapshot=RUN force_restore=yes (runs: `phoenix status`)"
        )
    print(f"phoenix-backup: {line}", file=sys.stderr, flush=True)
    return 1


def mismatch(report: dict) -> str:
    """Given a restore report that does not match its manifest, returns what differs, briefly."""
    if "missing_or_different" in report:
        missing = report["missing_or_different"]
        count = f"{len(missing)}{'+' if len(missing) >= 20 else ''}"
        return f"{count} file(s) missing or of another size ({missing[0]}, ...)"
    problems = [] if report["checksum_matches"] else ["the dump's checksum differs"]
    if report["mismatched_tables"]:
        problems.append(f"row counts differ in {', '.join(sorted(report['mismatched_tables']))}")
    return "; ".join(problems)


def command_verify_restore(config: Config, arguments: argparse.Namespace) -> int:
    """Restores a database run into a scratch database and compares it with the manifest."""
    job = _database_job(config, arguments.job)
    run = choose_run(list_runs(config, arguments.job), arguments.run)
    manifest = read_manifest(config.restic, run)
    scratch = f"phoenix_verify_{job['database']}"[:63]
    progress(f"[{arguments.job}] restoring run {run.id} ({run.time.isoformat()}) into {scratch}")
    began = time.monotonic()
    subprocess.run([*POSTGRES, "dropdb", "--if-exists", scratch], check=True, stderr=subprocess.DEVNULL)
    subprocess.run([*POSTGRES, "createdb", scratch], check=True)
    try:
        checksum, size = restore_dump(config, run, scratch, ["--no-owner", "--no-acl"], manifest["bytes"])
        restored = live_rows(scratch)
    finally:
        subprocess.run([*POSTGRES, "dropdb", "--if-exists", scratch], check=False)
    report = {**run_report(run), **compare(manifest, checksum, size, restored)}
    return finish(report, began, f"verify-{arguments.job}", in_place=False)


def command_restore_db(config: Config, arguments: argparse.Namespace) -> int:
    """Restores a database run over the live database, which must hold no rows unless --force.

    A restore killed after pg_restore began left the database half restored: the next one replaces it
    without --force, since those rows are the killed restore's own.
    """
    job = _database_job(config, arguments.job)
    database = job["database"]
    run = choose_run(list_runs(config, arguments.job), arguments.run)
    with RestoreProgress(arguments.job, run.id, DATABASE_STEPS) as steps:
        steps.step(DATABASE_STEPS[0])
        manifest = read_manifest(config.restic, run)
        steps.step(DATABASE_STEPS[1])
        live = live_rows(database)
        half_restored = steps.interrupted_at_or_after(DATABASE_STEPS[2])
        if sum(live.values()) and not arguments.force and not half_restored:
            raise RefusedError(
                f"database {database} on {config.host} holds data ({sum(live.values())} rows in"
                f" {sum(1 for rows in live.values() if rows)} tables); not restoring run {run.id} over it"
                " (to replace it: --data force_restore=yes)"
            )
        began = time.monotonic()
        if not database_exists(database):
            raise JobError(f"database {database} does not exist on {config.host}: the postgres role makes it first")
        progress(f"[{arguments.job}] restoring run {run.id} ({run.time.isoformat()}) into {database}")
        steps.step(DATABASE_STEPS[2])
        _disconnect_others(database)
        dropped = drop_tables_the_run_lacks(database, live, manifest)
        if dropped:
            progress(f"[{arguments.job}] dropped the tables made after run {run.id}: {', '.join(dropped)}")
        checksum, size = restore_dump(config, run, database, ["--clean", "--if-exists"], manifest["bytes"])
        steps.step(DATABASE_STEPS[3])
        subprocess.run([*POSTGRES, "psql", "-X", "-q", "-d", database, "-c", "ANALYZE"], check=True)
        steps.step(DATABASE_STEPS[4])
        restored = live_rows(database)
        replaced = 0 if half_restored else sum(live.values())
        report = {**run_report(run), "database": database, "replaced_rows": replaced, "dropped_tables": dropped}
        report["previous_restore"] = steps.previous_outcome()
        return finish({**report, **compare(manifest, checksum, size, restored)}, began, arguments.job)


def command_restore_files(config: Config, arguments: argparse.Namespace) -> int:
    """Restores the given paths of a files run in place and checks every file against the snapshot."""
    run = choose_run(list_runs(config, "files"), arguments.run)
    began = time.monotonic()
    with RestoreProgress("files", run.id, FILES_STEPS) as steps:
        steps.step(FILES_STEPS[0])
        expected = _snapshot_files(config, run, arguments.paths)
        progress(f"[files] restoring {', '.join(arguments.paths)} from run {run.id} ({run.time.isoformat()})")
        steps.step(FILES_STEPS[1])
        remove_baseline(config.state_dir, "files")  # the watch takes a half-restored tree for no data, not news
        includes = [argument for path in arguments.paths for argument in ("--include", path)]
        config.restic.run("restore", run.data["id"], "--target", "/", *includes)
        steps.step(FILES_STEPS[2])
        if arguments.owner:
            for path in arguments.paths:
                if os.path.exists(path):
                    subprocess.run(["chown", "-R", f"{arguments.owner}:{arguments.owner}", path], check=True)
        steps.step(FILES_STEPS[3])
        missing = sorted(path for path, size in expected.items() if not _has_size(path, size))
        report = {
            **run_report(run),
            "paths": arguments.paths,
            "files": len(expected),
            "bytes": sum(expected.values()),
            "missing_or_different": missing[:20],
            "ok": not missing,
            "previous_restore": steps.previous_outcome(),
        }
        if report["ok"]:
            write_baseline(config.state_dir, "files", RESTORED, f"restore of run {run.id}")
        return finish(report, began, "files")


def _snapshot_files(config: Config, run: Run, paths: list[str]) -> dict[str, int]:
    """Returns {path: size} of the regular files under `paths` in the run's snapshot."""
    # restic 0.14's `ls SNAPSHOT DIR` stops below DIR's first level, so the whole tree is listed and filtered here
    listing = config.restic.run("ls", "--json", run.data["id"]).stdout
    files = {}
    for line in listing.splitlines():
        node = json.loads(line)
        path = node.get("path", "")
        wanted = any(path == root or path.startswith(root.rstrip("/") + "/") for root in paths)
        if wanted and node.get("struct_type") == "node" and node.get("type") == "file":
            files[path] = node.get("size", 0)
    return files


def _has_size(path: str, size: int) -> bool:
    try:
        return os.stat(path).st_size == size
    except FileNotFoundError:
        return False


def drop_table_statement(live: dict[str, int], manifest: dict) -> tuple[list[str], str]:
    """Given the live database's tables and a run's manifest, returns the tables the run has no trace of (made
    after it, e.g. by a newer release's migration) and the statement that drops them ('' when none):
    pg_restore --clean replaces only what the dump holds, and would leave them beside the run's data."""
    extra = sorted(set(live) - set(manifest["tables"]))
    return extra, (f"DROP TABLE IF EXISTS {', '.join(extra)} CASCADE" if extra else "")


def drop_tables_the_run_lacks(database: str, live: dict[str, int], manifest: dict) -> list[str]:
    """Drops the live tables the run's manifest does not name (drop_table_statement); returns them."""
    extra, statement = drop_table_statement(live, manifest)
    if statement:
        subprocess.run(
            [*POSTGRES, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", statement],
            check=True,
            capture_output=True,
        )
    return extra


def _disconnect_others(database: str) -> None:
    sql = f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}' AND pid <> pg_backend_pid()"  # noqa: E501
    subprocess.run([*POSTGRES, "psql", "-X", "-q", "-tA", "-c", sql], check=False, capture_output=True)


def _database_job(config: Config, name: str) -> dict:
    job = config.job(name)
    if job["kind"] != "db":
        raise JobError(f"{name} is a {job['kind']} job, not a database one")
    return job


COMMANDS = {
    "verify-restore": command_verify_restore,
    "restore-db": command_restore_db,
    "restore-files": command_restore_files,
}
