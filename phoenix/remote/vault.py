"""phoenix-vault: the vault's side of backups, where the repositories are local.

    phoenix-vault init                         make the repositories that do not exist yet
    phoenix-vault check [--client C]           restic check --read-data-subset, then each new
                                               run's manifest; a pass marks runs verified. An
                                               object restic cannot read (a snapshot or index
                                               file a client wrote as garbage) is moved to the
                                               quarantine directory and the rest checked again
    phoenix-vault check --new [--client C]     the frequent pass (minutes after a run lands): each
                                               run neither verified nor failed yet, against its
                                               manifest; a mismatch marks the run failed
    phoenix-vault retain [--client C] [--dry-run] [--now ISO] [policy overrides]
                                               log what retention would remove, then forget
                                               exactly those snapshots by id and prune
    phoenix-vault status                       per client and job: latest, verified, pins,
                                               last check (JSON)
    phoenix-vault runs --client C              every run of a client, verified, failed or neither (JSON)
    phoenix-vault pins [--client C]            every pinned run and its reason (JSON)
    phoenix-vault pin RUN --reason WHY [--by WHO] [--client C]
                                               pin one run (backup.py, upgrade.py, `phoenix pin`)
    phoenix-vault unpin RUN --reason WHY [--by WHO]
                                               release one pin; the retention log keeps who and why
    phoenix-vault space [--client C]           free space of the repositories' file system (JSON)
    phoenix-vault backups [--client C] [--per-job N]
                                               each job's newest N complete runs: when, bytes (from
                                               the manifest, read once and kept), seconds to store (JSON)
    phoenix-vault drill-record < REPORT.json   append one drill's report to the drill history
    phoenix-vault drills                       the drill history, oldest first (JSON)

The drill history (data_dir/state/drills.jsonl) is append-only: the control machine that ran a
drill sends its report, the vault appends it, and every control machine reads the same history.

Pins live in the vault's own state (data_dir/state/CLIENT.pins.json), outside the repositories the
clients write to: a `pin=` tag a server writes into its own snapshot is a request that pins
nothing (`status` lists it as ignored).

Run as root it re-runs itself as the vault's user, so every repository file stays readable by
the rclone server. check, retain and unpin take turns (one lock file); `check --new` skips its
pass while another holds it, so the weekly check never waits for it, nor it for a long check.
Exit status: 0 done, 1 something failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from phoenix.arguments import StrictParser
from phoenix.errors import PhoenixError
from phoenix.remote.common import (
    JobError,
    Restic,
    is_locked,
    log,
    now,
    parse_time,
    read_json,
    read_settings,
    retry_while_locked,
    write_json,
)
from phoenix.remote.runs import Run, as_retention_snapshots, runs_from_listing
from phoenix.retention import Policy, select

SETTINGS_PATH = "/etc/phoenix-vault/vault.json"  # written by roles/vault.py: every client's restic password
CONFIG_PATH = Path(os.environ.get("PHOENIX_VAULT_CONFIG", SETTINGS_PATH))
LOCK_WAIT_SECONDS = 1800
CHECK_HISTORY = 20
QUARANTINE_ROUNDS = 5  # restic check runs again after each quarantine, at most this often
ADOPTED = "the vault, from the run's pin tag, when pins moved into the vault's state"
# restic 0.14's words for an object it cannot load: `load <snapshot/0123456789>: ...`,
# `could not load snapshot 01234567: ...`, `error loading index 0123...: ...`
UNREADABLE_OBJECT = re.compile(
    r"load <(?P<kind>snapshot|index)/(?P<a>[0-9a-f]{6,64})>"
    r"|could not load (?P<kind2>snapshot) (?P<b>[0-9a-f]{6,64})"
    r"|error loading (?P<kind3>index) (?P<c>[0-9a-f]{6,64})"
)
FOLDERS = {"snapshot": "snapshots", "index": "index"}
BACKUPS_PER_JOB = 30
DRILL_RECORD_MAX_BYTES = 1 << 20
DRILL_RECORD_KEYS = {"environment": str, "started": str, "passed": bool, "steps": dict, "checks": list}


class Vault:
    """The vault's settings (written by the vault role) and its repositories."""

    def __init__(self, path: Path = CONFIG_PATH):
        values = read_settings(path)
        self.user = values["user"]
        self.data_dir = Path(values["data_dir"])
        self.clients: dict[str, str] = values["clients"]
        self.policy = policy_from(values["retention"])
        self.check_subset = values["check_read_data_subset"]

    def restic(self, client: str, lock: bool = True) -> Restic:
        """`lock=False` reads without restic's lock: safe only while holding the vault's work lock
        (no prune can run then, and clients only add)."""
        extra = [] if lock else ["--no-lock"]
        return Restic(repository=str(self.repository(client)), password=self.clients[client], cache=False, flags=extra)

    def repository(self, client: str) -> Path:
        return self.data_dir / "repos" / client

    def state_path(self, client: str) -> Path:
        return self.data_dir / "state" / f"{client}.json"

    def state(self, client: str) -> dict:
        return {"failed": {}, **read_json(self.state_path(client), {"verified": {}, "checks": []})}

    def quarantine_dir(self, client: str) -> Path:
        return self.data_dir / "quarantine" / client

    def save_state(self, client: str, state: dict) -> None:
        write_json(self.state_path(client), state, mode=0o640)

    def update_state(self, client: str, change: Callable[[dict], None]) -> dict:
        """Reads the client's state afresh, applies `change` and saves it, all under the state lock,
        so a long check does not write back a state read before a hold or another pass changed it."""
        with self.lock("state") as _:
            state = self.state(client)
            change(state)
            self.save_state(client, state)
        return state

    @contextmanager
    def lock(self, name: str, wait: bool = True) -> Iterator[bool]:
        """Holds the vault's lock `name` (a file under state/); yields False at once when `wait` is
        False and someone else holds it."""
        path = self.data_dir / "state" / f".{name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True

    def chosen(self, client: str) -> list[str]:
        if client and client not in self.clients:
            raise JobError(f"no client '{client}' on this vault (clients: {', '.join(self.clients)})")
        return [client] if client else sorted(self.clients)

    def runs(self, client: str, lock: bool = True) -> list[Run]:
        """Returns the client's runs, each pinned only when this vault's state records the pin."""
        runs = runs_from_listing(self.snapshot_listing(client, lock))
        pins = self.pins(client, runs)
        for run in runs:
            run.pin = pins.get(run.id, {}).get("reason", "")
        return runs

    def snapshot_listing(self, client: str, lock: bool = True) -> list[dict]:
        """Returns `restic snapshots --json` of the client's repository, asked of restic only when the repository's
        snapshot files are not the ones of the last listing (data_dir/state/CLIENT.snapshots.json): a snapshot file
        is named after its content's hash, so the same names are the same listing. Each restic command derives the
        repository's key again (a third of a second of CPU), and `check --new` lists every client every 5 minutes."""
        try:
            names = sorted(entry.name for entry in os.scandir(self.repository(client) / FOLDERS["snapshot"]))
        except OSError:  # no repository there: restic says why
            return self.restic(client, lock).json("snapshots")
        path = self.data_dir / "state" / f"{client}.snapshots.json"
        cached = read_json(path, {})
        if cached.get("files") == names:
            return cached["listing"]
        # the names are read first: a snapshot landing meanwhile is listed again next time, never left out
        listing = self.restic(client, lock).json("snapshots")
        write_json(path, {"files": names, "listing": listing}, mode=0o640)
        return listing

    def pins_path(self, client: str) -> Path:
        return self.data_dir / "state" / f"{client}.pins.json"

    def pins(self, client: str, runs: list[Run]) -> dict[str, dict]:
        """Returns the client's recorded pins {run id: {reason, by, since}}.

        A vault that has no pin record yet (its repositories predate recorded pins) adopts the
        runs' pin tags once, so that no pin made before is lost; from then on only `pin` adds one."""
        pins = read_json(self.pins_path(client))
        if pins is None:
            since = now().isoformat(timespec="seconds")
            pins = {run.id: {"reason": run.pin_tag, "by": ADOPTED, "since": since} for run in runs if run.pin_tag}
            self.save_pins(client, pins)
            if pins:
                audit(self, f"[{client}] adopted {len(pins)} pin(s) from the runs' tags", to_stderr=True)
        return pins

    def save_pins(self, client: str, pins: dict[str, dict]) -> None:
        write_json(self.pins_path(client), pins, mode=0o640)


def policy_from(settings: dict) -> Policy:
    return Policy(
        keep_within=timedelta(seconds=settings["keep_within_seconds"]),
        hourly=settings["hourly"],
        daily=settings["daily"],
        weekly=settings["weekly"],
        monthly=settings["monthly"],
        minimum_verified=settings["minimum_verified"],
    )


def audit(vault: Vault, line: str, to_stderr: bool = False) -> None:
    """Logs a line to the journal and to the vault's retention log, which outlives the journal.

    `to_stderr` keeps stdout for a command's JSON answer.
    """
    if to_stderr:
        print(line, file=sys.stderr, flush=True)
    else:
        log(line)
    path = vault.data_dir / "log" / "retention.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(f"{now().isoformat(timespec='seconds')} {line}\n")


def command_init(vault: Vault, arguments: argparse.Namespace) -> int:
    for client in vault.chosen(""):
        if (vault.repository(client) / "config").exists():
            continue
        vault.repository(client).parent.mkdir(parents=True, exist_ok=True)
        vault.restic(client).run("init")
        vault.save_pins(client, {})  # a new repository has no pin tags to adopt
        log(f"created the repository of {client}")
    return 0


def verify_run(restic: Restic, run: Run) -> str:
    """Returns "" when the run's data matches its manifest, else what is wrong."""
    manifest = json.loads(restic.run("dump", run.manifest["id"], "/manifest.json").stdout)
    if run.kind != "db":
        # restic 0.14's backup summary gives the short id; `restic tag` (unpin) rewrites a snapshot
        # under a new id and keeps the first one as "original"
        named = manifest.get("data_snapshot") or "-"
        matches = any(snapshot_id.startswith(named) for snapshot_id in (run.data["id"], run.data.get("original") or ""))
        return "" if matches else "manifest names another snapshot"
    paths = run.data.get("paths") or []
    digest = hashlib.sha256()
    size = 0
    process = restic.popen_dump(run.data["id"], paths[0] if paths else f"/{manifest['database']}.dump")
    while chunk := process.stdout.read(1 << 20):
        digest.update(chunk)
        size += len(chunk)
    if process.wait() != 0:
        return f"restic dump failed (exit {process.returncode})"
    if digest.hexdigest() != manifest["sha256"] or size != manifest["bytes"]:
        return f"checksum mismatch: stored {size} bytes, manifest says {manifest['bytes']}"
    return ""


def command_check(vault: Vault, arguments: argparse.Namespace) -> int:
    if arguments.new:
        return check_new_runs(vault, arguments.client)
    failed = 0
    subset = arguments.subset or vault.check_subset
    with vault.lock("work"):
        for client in vault.chosen(arguments.client):
            failed += _check_client(vault, client, subset)
    return 1 if failed else 0


def _check_client(vault: Vault, client: str, subset: str) -> int:
    """The weekly check of one client: restic check (an object restic cannot read is quarantined and
    the check run again without it), then every run not verified yet (runs that failed a check are
    tried again); returns 1 when something failed."""
    restic = vault.restic(client)
    started = now()
    log(f"[{client}] restic check --read-data-subset={subset}")
    restic.run("unlock", check=False)  # stale locks only (a killed client's, say)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    quarantined = []
    for _ in range(QUARANTINE_ROUNDS):
        result = retry_while_locked(
            lambda restic=restic: _checked(restic, subset), deadline, f"[{client}] check", pause=10
        )
        unreadable = [] if result.returncode == 0 else unreadable_objects(vault.repository(client), result)
        if not unreadable:
            break
        quarantined += [quarantine(vault, client, path, problem) for path, problem in unreadable]
        log(f"[{client}] checking again without the quarantined object(s)")
    record = {"time": started.isoformat(), "ok": result.returncode == 0, "subset": subset}
    if quarantined:
        record["quarantined"] = quarantined
    outcome: dict = {}
    if result.returncode != 0:
        record["message"] = (result.stdout + result.stderr).strip().splitlines()[-5:]
        log(f"[{client}] check FAILED: {' | '.join(record['message'])}")
    else:
        outcome = _verify_new_runs(restic, vault.runs(client), vault.state(client), retry_failed=True)
        record.update(verified_runs=sorted(outcome["verified"]), problems=outcome["failed"])
        counts = f"{len(outcome['verified'])} run(s) newly verified, {len(outcome['failed'])} problem(s)"
        log(f"[{client}] check passed; {counts}")

    def change(state: dict) -> None:
        _record_outcome(state, outcome)
        if quarantined:
            state["quarantined"] = [*state.get("quarantined", []), *quarantined]
        state["checks"] = [record, *state["checks"]][:CHECK_HISTORY]

    vault.update_state(client, change)
    return int(not record["ok"] or bool(outcome.get("failed")))


def check_new_runs(vault: Vault, client: str = "") -> int:
    """The frequent pass: verifies each complete run neither verified nor failed yet against its
    manifest, reading without restic's lock (backups go on meanwhile). Skipped while a check,
    retention or unpin holds the vault's work lock; returns 1 when a run failed."""
    failed = 0
    with vault.lock("work", wait=False) as mine:
        if not mine:
            log("check --new: another check, retention or unpin is running; this pass is skipped")
            return 0
        for chosen in vault.chosen(client):
            restic, runs = vault.restic(chosen, lock=False), vault.runs(chosen, lock=False)
            outcome = _verify_new_runs(restic, runs, vault.state(chosen))
            if outcome["verified"] or outcome["failed"]:
                vault.update_state(chosen, lambda state, outcome=outcome: _record_outcome(state, outcome, new=True))
                log(f"[{chosen}] {len(outcome['verified'])} new run(s) verified, {len(outcome['failed'])} failed")
            failed += bool(outcome["failed"])
    return 1 if failed else 0


def _record_outcome(state: dict, outcome: dict, new: bool = False) -> None:
    state["verified"].update(outcome.get("verified", {}))
    for run_id in outcome.get("verified", {}):
        state["failed"].pop(run_id, None)
    for run_id, problem in outcome.get("failed", {}).items():
        state["failed"][run_id] = {"time": now().isoformat(), "problem": problem}
    if new:
        state["last_new_check"] = {"time": now().isoformat(), **{key: sorted(value) for key, value in outcome.items()}}


def unreadable_objects(repository: Path, result) -> list[tuple[Path, str]]:
    """Given a failed `restic check`, returns the snapshot and index files it could not load, with
    restic's words for each; empty when the failure is of another kind (damaged data stays a failure)."""
    found: dict[Path, str] = {}
    for line in (result.stdout + "\n" + result.stderr).splitlines():
        match = UNREADABLE_OBJECT.search(line)
        if not match:
            continue
        kind = match["kind"] or match["kind2"] or match["kind3"]
        prefix = match["a"] or match["b"] or match["c"]
        candidates = sorted((repository / FOLDERS[kind]).glob(f"{prefix}*"))
        if len(candidates) == 1:
            found.setdefault(candidates[0], line.strip().removeprefix("error: "))
    return list(found.items())


def quarantine(vault: Vault, client: str, path: Path, problem: str) -> dict:
    """Moves one unreadable object out of the client's repository into the vault's quarantine
    directory (outside anything the rclone server serves); logs and returns what was moved."""
    moment = now()
    target = vault.quarantine_dir(client) / f"{moment.strftime('%Y%m%dT%H%M%SZ')}-{path.parent.name}-{path.name}"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(path, target)
    what = f"{path.parent.name}/{path.name}"
    audit(vault, f"[{client}] QUARANTINED {what}: restic cannot read it ({problem}); moved to {target}")
    return {"object": what, "problem": problem, "time": moment.isoformat(timespec="seconds"), "path": str(target)}


def _checked(restic: Restic, subset: str):
    result = restic.run("check", f"--read-data-subset={subset}", check=False)
    if result.returncode != 0 and is_locked(result.stderr):
        raise JobError(result.stderr)
    return result


def _verify_new_runs(restic: Restic, runs: list[Run], state: dict, retry_failed: bool = False) -> dict:
    """Verifies each complete run not verified yet (nor failed, unless `retry_failed`); returns
    {"verified": {run: time}, "failed": {run: problem}}."""
    verified, failed = {}, {}
    for run in runs:
        if not run.complete or run.id in state["verified"] or (run.id in state["failed"] and not retry_failed):
            continue
        problem = verify_run(restic, run)
        if problem:
            failed[run.id] = problem
            log(f"run {run.id} ({run.job}) NOT verified: {problem}")
            continue
        verified[run.id] = now().isoformat()
    return {"verified": verified, "failed": failed}


def effective_policy(vault: Vault, arguments: argparse.Namespace) -> Policy:
    overrides = {
        name: getattr(arguments, name)
        for name in ("hourly", "daily", "weekly", "monthly", "minimum_verified")
        if getattr(arguments, name) is not None
    }
    if arguments.keep_within_hours is not None:
        overrides["keep_within"] = timedelta(hours=arguments.keep_within_hours)
    return replace(vault.policy, **overrides)


def command_retain(vault: Vault, arguments: argparse.Namespace) -> int:
    with vault.lock("work"):
        return _retain(vault, arguments)


def _retain(vault: Vault, arguments: argparse.Namespace) -> int:
    policy = effective_policy(vault, arguments)
    moment = datetime.fromisoformat(arguments.now) if arguments.now else now()
    for client in vault.chosen(arguments.client):
        state = vault.state(client)
        hold = state.get("hold")
        if hold and arguments.scheduled:
            audit(vault, f"[{client}] on hold since {hold['since']} ({hold['reason']}): scheduled retention skipped")
            continue
        runs = vault.runs(client)
        by_id = {run.id: run for run in runs}
        decision = select(as_retention_snapshots(runs, set(state["verified"])), policy, moment)
        audit(vault, f"[{client}] retention dry run at {moment.isoformat(timespec='seconds')}, {policy.describe()}")
        for run in runs:
            reasons = decision.reasons(run.id)
            verdict = f"keep ({'; '.join(reasons)})" if reasons else "would forget"
            audit(vault, f"[{client}]   {run.id} {run.job} {run.time.isoformat(timespec='seconds')}: {verdict}")
        doomed = [by_id[snapshot.id] for snapshot in decision.forget]
        if arguments.dry_run or not doomed:
            audit(vault, f"[{client}] {len(doomed)} run(s) to forget; {'dry run only' if doomed else 'nothing to do'}")
            continue
        ids = [snapshot_id for run in doomed for snapshot_id in run.snapshot_ids]
        restic = vault.restic(client)
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        restic.run("unlock", check=False)
        retry_while_locked(lambda restic=restic, ids=ids: restic.run("forget", *ids), deadline, f"[{client}] forget")
        audit(vault, f"[{client}] forgot {len(doomed)} run(s): {' '.join(ids)}")
        retry_while_locked(lambda restic=restic: restic.run("prune"), deadline, f"[{client}] prune")
        audit(vault, f"[{client}] pruned")
        vault.update_state(client, lambda state, doomed=doomed: _forget_marks(state, [run.id for run in doomed]))
    return 0


def _forget_marks(state: dict, run_ids: list[str]) -> None:
    for run_id in run_ids:
        state["verified"].pop(run_id, None)
        state["failed"].pop(run_id, None)


def client_status(vault: Vault, client: str) -> dict:
    state = vault.state(client)
    runs = vault.runs(client)
    jobs: dict[str, dict] = {}
    for run in runs:
        entry = jobs.setdefault(
            run.job,
            {
                "kind": run.kind, "host": run.host, "latest": None, "latest_verified": None, "latest_failed": None,
                "unverified_since": None, "pins": [], "incomplete": 0,
            },
        )  # fmt: skip
        summary = {"run": run.id, "time": run.time.isoformat(), "trigger": run.trigger}
        if not run.complete:
            entry["incomplete"] += 1
            continue
        entry["latest"] = summary
        if run.id in state["verified"]:
            entry["latest_verified"] = summary
            entry["unverified_since"] = entry["latest_failed"] = None  # only what is newer matters to a restore
        else:
            # the time of the oldest complete run newer than the latest verified one: how long data waits
            entry["unverified_since"] = entry["unverified_since"] or summary["time"]
            if run.id in state["failed"]:
                entry["latest_failed"] = {**summary, "problem": state["failed"][run.id]["problem"]}
        if run.pin:
            entry["pins"].append({**summary, "reason": run.pin})
    last_check = state["checks"][0] if state["checks"] else None
    ignored = [{**run.summary(), "tag": run.pin_tag} for run in runs if run.pin_tag and not run.pin]
    quarantined = [entry for entry in state.get("quarantined", []) if Path(entry["path"]).exists()]
    return {
        "jobs": jobs,
        "last_check": last_check,
        "last_new_check": state.get("last_new_check"),
        "runs": len(runs),
        "ignored_pin_tags": ignored,
        "quarantined": quarantined,
    }


def disk_space(path: Path) -> dict:
    """Returns the free and total bytes of the file system that holds `path`."""
    usage = shutil.disk_usage(path)
    return {"path": str(path), "free_bytes": usage.free, "total_bytes": usage.total}


def command_space(vault: Vault, arguments: argparse.Namespace) -> int:
    """Prints the free space where the client's repository is (or all repositories, without --client)."""
    (client,) = vault.chosen(arguments.client) if arguments.client else ("",)
    print(json.dumps(disk_space(vault.repository(client) if client else vault.data_dir / "repos")))
    return 0


def command_status(vault: Vault, arguments: argparse.Namespace) -> int:
    report = {"now": now().isoformat(), "clients": {}, "disk": disk_space(vault.data_dir / "repos")}
    for client in vault.chosen(arguments.client):
        try:
            report["clients"][client] = client_status(vault, client)
        except JobError as error:
            report["clients"][client] = {"error": str(error)}
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0


def command_pins(vault: Vault, arguments: argparse.Namespace) -> int:
    """Prints every pinned run of every client (or one), oldest first, with its reason."""
    pins = []
    for client in vault.chosen(arguments.client):
        pins += [{"client": client, **run.summary()} for run in vault.runs(client) if run.pin]
    print(json.dumps({"now": now().isoformat(), "pins": pins}, indent=2))
    return 0


def _matches(run: Run, wanted: str) -> bool:
    return run.id == wanted or any(snapshot.startswith(wanted) for snapshot in run.snapshot_ids)


def command_pin(vault: Vault, arguments: argparse.Namespace) -> int:
    """Pins one complete run: the vault records it in its own state, which no client can write.
    Only the control machine asks (backup.py --data pin=..., upgrade.py, `phoenix pin`)."""
    reason = arguments.reason.strip()
    if not reason:
        raise JobError("pin: --reason is required: say why this run must be kept")
    matches = [
        (client, run) for client in vault.chosen(arguments.client) for run in vault.runs(client)
        if _matches(run, arguments.run)
    ]  # fmt: skip
    if len(matches) != 1:
        found = "no run" if not matches else f"{len(matches)} runs"
        raise JobError(f"pin: {found} matches '{arguments.run}' (`phoenix-vault runs --client C` lists them)")
    client, run = matches[0]
    if not run.complete:
        raise JobError(f"pin: run {run.id} of {client} has no manifest: it did not finish, so it cannot be pinned")
    who = arguments.by or "unknown"
    pins = vault.pins(client, [])
    pins[run.id] = {"reason": reason, "by": who, "since": now().isoformat(timespec="seconds")}
    vault.save_pins(client, pins)
    audit(vault, f"pinned {client}/{run.job} run {run.id} ('{reason}') by {who}", to_stderr=True)
    print(json.dumps({"client": client, "run": run.id, "pin": reason, "by": who}))
    return 0


def command_unpin(vault: Vault, arguments: argparse.Namespace) -> int:
    """Releases one pin, the only way a pin ever goes: the vault's record goes (and the run's pin
    tag, if any), and the retention log says who released it and why. The run itself stays until
    retention decides."""
    reason = arguments.reason.strip()
    if not reason:
        raise JobError("unpin: --reason is required: say why this snapshot may be forgotten")
    matches = [
        (client, run)
        for client in vault.chosen(arguments.client)
        for run in vault.runs(client)
        if run.pin and _matches(run, arguments.run)
    ]
    if len(matches) != 1:
        found = "no pinned run" if not matches else f"{len(matches)} pinned runs"
        raise JobError(f"unpin: {found} matches '{arguments.run}' (`phoenix-vault pins` lists them)")
    client, run = matches[0]
    with vault.lock("work"):  # `restic tag` rewrites the snapshots a `check --new` may be reading
        pins = vault.pins(client, [])
        pins.pop(run.id, None)
        vault.save_pins(client, pins)
        if run.pin_tag:  # else `status` would list the left-over request as an ignored pin tag
            restic = vault.restic(client)
            deadline = time.monotonic() + LOCK_WAIT_SECONDS
            for snapshot in run.snapshot_ids:
                retry_while_locked(
                    lambda snapshot=snapshot: restic.run("tag", "--remove", f"pin={run.pin_tag}", snapshot),
                    deadline,
                    "unpin",
                )
    who = arguments.by or "unknown"
    audit(vault, f"unpinned {client}/{run.job} run {run.id} (pin '{run.pin}') by {who}: {reason}", to_stderr=True)
    print(json.dumps({"client": client, "run": run.id, "released_pin": run.pin, "by": arguments.by, "reason": reason}))
    return 0


def command_hold(vault: Vault, arguments: argparse.Namespace) -> int:
    """Puts a client on hold (upgrade.py, for the upgrade's duration): scheduled retention skips it."""
    (client,) = vault.chosen(arguments.client)
    hold = {"reason": arguments.reason, "since": now().isoformat(timespec="seconds")}
    state = vault.update_state(client, lambda state: state.update(hold=hold))
    audit(vault, f"[{client}] on hold: {arguments.reason}", to_stderr=True)
    print(json.dumps({"client": client, "hold": state["hold"]}))
    return 0


def command_release(vault: Vault, arguments: argparse.Namespace) -> int:
    """Ends a client's hold; scheduled retention covers it again."""
    (client,) = vault.chosen(arguments.client)
    released = []
    vault.update_state(client, lambda state: released.append(state.pop("hold", None)))
    hold = released[0]
    if hold:
        audit(vault, f"[{client}] hold released ({hold['reason']})", to_stderr=True)
    print(json.dumps({"client": client, "released": hold}))
    return 0


def command_runs(vault: Vault, arguments: argparse.Namespace) -> int:
    """Prints every run of one client, oldest first, with whether it is verified and, when a check
    found it bad, what is wrong with it (restore.py picks from these)."""
    (client,) = vault.chosen(arguments.client)
    state = vault.state(client)
    runs = [
        {
            **run.summary(),
            "verified": run.complete and run.id in state["verified"],
            "failed": state["failed"].get(run.id, {}).get("problem", ""),
        }
        for run in vault.runs(client)
    ]
    print(json.dumps({"now": now().isoformat(), "runs": runs}, indent=2))
    return 0


def stored_seconds(run: Run) -> float:
    """Given a complete run, returns how long storing its data took: from the data snapshot's start to
    the manifest snapshot's (written right after the data was stored)."""
    return round((parse_time(run.manifest["time"]) - parse_time(run.data["time"])).total_seconds(), 1)


def newest_complete(runs: list[Run], per_job: int) -> list[Run]:
    """Given runs oldest first, returns each job's newest `per_job` complete runs, oldest first."""
    kept: dict[str, list[Run]] = {}
    for run in runs:
        if run.complete:
            kept.setdefault(run.job, []).append(run)
    return sorted((run for job_runs in kept.values() for run in job_runs[-per_job:]), key=lambda run: run.time)


def command_backups(vault: Vault, arguments: argparse.Namespace) -> int:
    """Prints each job's newest complete runs with their size and how long they took to store (the
    dashboard's plots). A run's size is its manifest's, read once and kept in state/CLIENT.sizes.json."""
    found = []
    for client in vault.chosen(arguments.client):
        restic, runs = vault.restic(client), newest_complete(vault.runs(client), arguments.per_job)
        path = vault.data_dir / "state" / f"{client}.sizes.json"
        sizes = read_json(path, {})
        missing = [run for run in runs if run.id not in sizes]
        for run in missing:
            try:
                sizes[run.id] = json.loads(restic.run("dump", run.manifest["id"], "/manifest.json").stdout)["bytes"]
            except (JobError, ValueError, KeyError) as error:
                print(f"[{client}] run {run.id}: manifest unreadable ({error}); size left out", file=sys.stderr)
                sizes[run.id] = None
        if missing:
            write_json(path, sizes, mode=0o640)
        found += [
            {
                "client": client, "job": run.job, "kind": run.kind, "run": run.id, "time": run.time.isoformat(),
                "bytes": sizes[run.id], "seconds": stored_seconds(run),
            }
            for run in runs
        ]  # fmt: skip
    print(json.dumps({"now": now().isoformat(), "backups": found}, indent=2))
    return 0


def drill_record_problem(record: object) -> str:
    """Given what a control machine sent as a drill's report, returns "" when it can be recorded, else why not."""
    if not isinstance(record, dict):
        return "a drill record is a JSON object"
    for key, kind in DRILL_RECORD_KEYS.items():
        if not isinstance(record.get(key), kind):
            return f"a drill record needs '{key}' ({kind.__name__})"
    try:
        datetime.fromisoformat(record["started"])
    except ValueError:
        return f"'started' is not an ISO 8601 time: {record['started']!r}"
    return ""


def drills_path(vault: Vault) -> Path:
    return vault.data_dir / "state" / "drills.jsonl"


def command_drill_record(vault: Vault, arguments: argparse.Namespace) -> int:
    """Appends one drill's report (JSON on stdin) to the drill history; nothing is ever rewritten."""
    text = sys.stdin.read(DRILL_RECORD_MAX_BYTES + 1)
    if len(text) > DRILL_RECORD_MAX_BYTES:
        raise JobError(f"drill-record: the report is larger than {DRILL_RECORD_MAX_BYTES} bytes")
    try:
        record = json.loads(text)
    except ValueError as error:
        raise JobError(f"drill-record: stdin is not JSON: {error}") from error
    problem = drill_record_problem(record)
    if problem:
        raise JobError(f"drill-record: {problem}")
    path = drills_path(vault)
    path.parent.mkdir(parents=True, exist_ok=True)
    with vault.lock("drills"), path.open("a") as handle:
        os.chmod(path, 0o640)
        handle.write(json.dumps({**record, "recorded": now().isoformat(timespec="seconds")}, sort_keys=True) + "\n")
    print(f"recorded the drill of {record['environment']} started {record['started']}", file=sys.stderr)
    print(json.dumps({"recorded": record["started"]}))
    return 0


def command_drills(vault: Vault, arguments: argparse.Namespace) -> int:
    """Prints the drill history, oldest first; a damaged line is skipped and named on stderr."""
    drills = []
    path = drills_path(vault)
    lines = path.read_text().splitlines() if path.exists() else []
    for number, line in enumerate(lines, start=1):
        try:
            drills.append(json.loads(line))
        except ValueError:
            print(f"phoenix-vault: {path}:{number} is not a JSON line; skipped", file=sys.stderr)
    print(json.dumps({"now": now().isoformat(), "drills": drills}))
    return 0


def parser() -> argparse.ArgumentParser:
    top = StrictParser(prog="phoenix-vault", description="The vault's repositories.")
    verbs = top.add_subparsers(dest="verb", required=True)
    verbs.add_parser("init", help="make missing repositories")
    check = verbs.add_parser("check", help="integrity check; a pass marks runs verified")
    check.add_argument("--client", default="")
    check.add_argument("--new", action="store_true", help="only the runs not checked yet, against their manifests")
    check.add_argument("--subset", default="", help="restic --read-data-subset (default: from the inventory)")
    retain = verbs.add_parser("retain", help="apply the retention policy (logged dry run, then forget and prune)")
    retain.add_argument("--client", default="")
    retain.add_argument("--dry-run", action="store_true", help="only log what would be forgotten")
    retain.add_argument("--now", default="", help="decide as of this ISO time (what-if)")
    retain.add_argument("--keep-within-hours", type=float)
    for name in ("hourly", "daily", "weekly", "monthly"):
        retain.add_argument(f"--{name}", type=int)
    retain.add_argument("--minimum-verified", type=int)
    retain.add_argument("--scheduled", action="store_true", help="as the timer runs it: skip clients on hold")
    hold = verbs.add_parser("hold", help="scheduled retention skips this client until `release` (upgrade.py)")
    hold.add_argument("--client", required=True)
    hold.add_argument("--reason", required=True)
    release = verbs.add_parser("release", help="end a client's hold")
    release.add_argument("--client", required=True)
    runs = verbs.add_parser("runs", help="every run of one client, with its verified mark (JSON)")
    runs.add_argument("--client", required=True)
    status = verbs.add_parser("status", help="latest, verified and pinned runs per client and job (JSON)")
    status.add_argument("--client", default="")
    pins = verbs.add_parser("pins", help="every pinned run, with its reason (JSON)")
    pins.add_argument("--client", default="")
    pin = verbs.add_parser("pin", help="pin one complete run (recorded in the vault's state, logged)")
    pin.add_argument("run", help="run id or snapshot id (prefix)")
    pin.add_argument("--reason", required=True, help="why the run must be kept (logged)")
    pin.add_argument("--by", default="", help="who pins it (logged)")
    pin.add_argument("--client", default="")
    space = verbs.add_parser("space", help="free space of the repositories' file system (JSON)")
    space.add_argument("--client", default="", help="where this client's repository is")
    backups = verbs.add_parser("backups", help="each job's newest complete runs: time, bytes, seconds (JSON)")
    backups.add_argument("--client", default="")
    backups.add_argument("--per-job", type=int, default=BACKUPS_PER_JOB, help="runs per job (default: %(default)s)")
    verbs.add_parser("drill-record", help="append one drill's report (JSON on stdin) to the drill history")
    verbs.add_parser("drills", help="the drill history, oldest first (JSON)")
    unpin = verbs.add_parser("unpin", help="release one pin (logged with who and why)")
    unpin.add_argument("run", help="run id or snapshot id (prefix)")
    unpin.add_argument("--reason", required=True, help="why the pin may go (logged)")
    unpin.add_argument("--by", default="", help="who releases it (logged)")
    unpin.add_argument("--client", default="")
    return top


COMMANDS = {
    "init": command_init,
    "check": command_check,
    "retain": command_retain,
    "status": command_status,
    "runs": command_runs,
    "pins": command_pins,
    "pin": command_pin,
    "unpin": command_unpin,
    "space": command_space,
    "hold": command_hold,
    "release": command_release,
    "backups": command_backups,
    "drill-record": command_drill_record,
    "drills": command_drills,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser().parse_args(argv)  # --help and usage errors need no vault
    try:
        vault = Vault()
    except (JobError, PhoenixError) as error:
        print(f"phoenix-vault: {error}", file=sys.stderr)
        return 1
    if os.geteuid() == 0:
        # as the vault user, so that files restic writes stay readable by the rclone server
        python_path = f"PYTHONPATH={os.environ.get('PYTHONPATH', '')}"
        module = [sys.executable, "-m", "phoenix.remote.vault", *argv]
        os.execvp("runuser", ["runuser", "-u", vault.user, "--", "env", python_path, *module])
    return main_with(vault, argv)


def main_with(vault: Vault, argv: list[str]) -> int:
    """Runs one command against a given vault (main, as the vault user; tests)."""
    arguments = parser().parse_args(argv)
    try:
        return COMMANDS[arguments.verb](vault, arguments)
    except (JobError, PhoenixError) as error:
        print(f"phoenix-vault: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
