"""A safe upgrade of one app host (upgrade.py), run from the control machine.

The order, and why:
1. Leftovers of an interrupted upgrade are dealt with first: its paused timers and the vault's
   hold are resumed, and when it had begun installing, it is rolled back (the pinned runs
   hold the data as it was before it).
2. The host's backup timers (and its database host's) are stopped and the vault holds
   scheduled retention for them, so no job runs against a half-migrated database.
3. The app is stopped, then every job of those hosts is backed up, tagged pre-upgrade and
   pinned. Stopping first means no write can fall between the snapshot and the migration.
4. The vault checks the new runs; only when each is verified does the upgrade go on.
   Otherwise the app starts again on its old release and nothing else has changed.
5. Install, migrate, start, verify (health, schema version, a request through nginx).
6. Any failure in 5: reinstall the previous release, restore the pinned runs, start,
   verify again; the outcome is "rolled back" with the reason.
7. Always: timers and the vault's hold resumed, the record appended to the host's
   history (/var/lib/phoenix/upgrade/history.jsonl) and printed.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from phoenix.commands import (
    make_backup_run_command,
    make_marker_write_command,
    make_private_file_write_command,
    make_restore_db_command,
    make_restore_files_command,
    make_restore_point_command,
    make_vault_pin_arguments,
    restore_point_name,
    split_run_records,
)
from phoenix.errors import PhoenixError
from phoenix.inventory import environment_of
from phoenix.units import duration, step_durations
from phoenix.vault_client import run_on_vault
from phoenix.wheel import wheel_version

STATE_DIRECTORY = "/var/lib/phoenix/upgrade"
IN_PROGRESS = f"{STATE_DIRECTORY}/in-progress.json"
HISTORY = f"{STATE_DIRECTORY}/history.jsonl"
PHASE_STOPPED = "stopped"  # app stopped, pre-upgrade backup under way: nothing changed yet
PHASE_UPGRADING = "upgrading"  # the new release is being installed: a rollback is needed


class StepFailed(PhoenixError):
    """A step of the upgrade failed; the message says which and why."""


class Shell:
    """Runs shell commands as root on one host of the pyinfra run."""

    def __init__(self, name: str, pyinfra_host):
        self.name = name
        self.host = pyinfra_host

    def run(self, command: str, timeout: int = 900) -> str:
        if not self.host.connected:
            self.host.connect(reason="upgrade", raise_exceptions=True)
        ok, output = self.host.run_shell_command(
            command, _sudo=bool(self.host.data.get("_sudo")), _timeout=timeout, _get_pty=False
        )
        if not ok:
            tail = "\n".join(output.stderr_lines[-4:] or output.stdout_lines[-4:])
            raise StepFailed(f"{self.name}: `{_short(command)}` failed:\n{tail}")
        return output.stdout

    def write(self, path: str, text: str) -> None:
        self.run(make_private_file_write_command(path, text))


def health_document(answer: str) -> dict:
    """Given the body of a health answer (the request succeeded), returns it when it is a JSON object (its version
    and schema_version are then checked), else {}: an app whose health check answers plain text, such as a
    Django view's "ok", passes on its status alone."""
    try:
        document = json.loads(answer)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _short(command: str, limit: int = 120) -> str:
    return command if len(command) <= limit else command[: limit - 3] + "..."


@dataclass
class Release:
    version: str
    wheel: str  # the wheel's path on the app host
    sha256: str
    migrated_marker: str  # what the migrated marker says once this release has migrated
    static_marker: str = ""  # what the static marker says once its static files are collected ("" unknown)


@dataclass
class Plan:
    """Everything the upgrade of one app host needs, computed on the control machine."""

    host: str
    app: dict
    target: Release
    reason: str
    timers: dict[str, list[str]]  # host -> backup timer units to pause
    database_host: str  # the host whose job backs up the app's database ("" without one)
    database_job: str
    file_paths: list[str]  # the app's data directories, restored from the app host's files job
    smoke_commands: dict[str, str]  # what -> shell command printing the answer's body, run on the app host
    expected_schema_command: str  # prints the schema version the release expects ("" to skip)
    commands: dict[str, str]  # install (with {wheel}), migrate, start, stop, health_wait, installed_wheel[, static]
    markers: dict[str, str]  # installed, migrated[, static]: marker paths on the app host
    restore_point: bool = False  # the database host is archived: name the moment the upgrade began


@dataclass
class Upgrade:
    plan: Plan
    shells: dict[str, Shell]  # host name -> Shell, the app host and its database host
    vault: Callable[..., str]  # runs `phoenix-vault ARGS` on the vault, returns its output
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)
    record: dict = field(default_factory=dict)
    _lap: float = 0.0

    # --- the whole upgrade ------------------------------------------------------------

    def run(self) -> dict:
        """Upgrades, or rolls back; returns the record. Raises StepFailed unless upgraded."""
        plan = self.plan
        app_host = self.shells[plan.host]
        self._recover_interrupted()
        previous = self._running_release()
        self.record = {
            "host": plan.host,
            "app": plan.app["name"],
            "from": previous.version,
            "to": plan.target.version,
            "from_wheel": previous.wheel,
            "from_sha256": previous.sha256,
            "to_wheel": plan.target.wheel,
            "previous_migrated_marker": previous.migrated_marker,
            "previous_static_marker": previous.static_marker,
            "reason": plan.reason,
            "started": _now(),
            "phase": "pausing",
            "timers": plan.timers,
            "pinned_runs": {},
            "steps": {},
        }
        if previous.sha256 == plan.target.sha256:
            self.say(f"{plan.host}: {plan.app['name']} already runs release {previous.version}; nothing to do")
            return {**self.record, "outcome": "unchanged"}
        self.say(f"{plan.host}: upgrading {plan.app['name']} {previous.version} -> {plan.target.version}")
        self._lap = time.monotonic()
        failure: PhoenixError | None = None
        try:
            self._save()
            self._step("pause backups", self._pause_timers)
            self.record["phase"] = PHASE_STOPPED
            self._save()
            self._step("stop the app", lambda: app_host.run(plan.commands["stop"]))
            try:
                self._step("pre-upgrade backup", self._backup)
                self._save()
                self._step("vault verifies", self._wait_verified)
            except PhoenixError:
                self.say(
                    f"{plan.host}: no verified pre-upgrade backup, so no upgrade: starting {previous.version} again"
                )
                self._start_and_verify(previous.version, "restart the old release")
                self.record["outcome"] = "not upgraded"
                raise
            self.record["phase"] = PHASE_UPGRADING
            self._save()
            try:
                self._install_migrate_start(plan.target)
                self.record["outcome"] = "upgraded"
            except Exception as error:  # a bug of ours too: the old release must not stay stopped
                failure = error if isinstance(error, PhoenixError) else StepFailed(f"{type(error).__name__}: {error}")
                self.record["error"] = str(error)
                self.say(f"{plan.host}: upgrade failed, rolling back to {previous.version}:\n{error}")
                self._rollback(self.record)
                self.record["outcome"] = "rolled back"
        except PhoenixError as error:
            self.record.setdefault("outcome", "failed")
            self.record["error"] = "; then ".join(filter(None, [self.record.get("error"), str(error)]))
            raise
        finally:
            self._finish()
        if failure:
            raise StepFailed(
                f"{plan.host}: upgrade to {plan.target.version} ROLLED BACK to {previous.version}: {headline(failure)}"
            )
        return self.record

    # --- steps --------------------------------------------------------------------------

    def _step(self, name: str, action: Callable[[], object]) -> None:
        self.say(f"{self.plan.host}: {name}...")
        try:
            action()
        finally:
            moment = time.monotonic()
            self.record["steps"][name] = round(moment - self._lap, 2)
            self._lap = moment

    def _running_release(self) -> Release:
        shell = self.shells[self.plan.host]
        wheel = shell.run(self.plan.commands["installed_wheel"]).strip()
        if not wheel:
            raise StepFailed(
                f"{self.plan.host}: cannot tell which release of {self.plan.app['name']} runs (no installed wheel"
                f" in its releases directory), so it could not be rolled back: run deploy.py first"
            )
        sha = shell.run(f"sha256sum {shlex.quote(wheel)}").split()[0]
        marker = shell.run(f"cat {self.plan.markers['migrated']} 2>/dev/null || true").strip()
        static = ""
        if self.plan.markers.get("static"):
            static = shell.run(f"cat {self.plan.markers['static']} 2>/dev/null || true").strip()
        return Release(wheel_version(wheel), wheel, sha, migrated_marker=marker, static_marker=static)

    def _pause_timers(self) -> None:
        for name, units in self.plan.timers.items():
            if units:
                self.shells[name].run(f"systemctl stop {' '.join(units)}")
        for name in self.plan.timers:
            self.vault("hold", "--client", name, "--reason", f"upgrade of {self.plan.host}")
        self.say(
            f"{self.plan.host}: paused " + (", ".join(self._timer_list()) or "no timers") + "; vault holds retention"
        )

    def _timer_list(self) -> list[str]:
        return [f"{host}/{unit}" for host, units in self.plan.timers.items() for unit in units]

    def _backup(self) -> None:
        pin = f"{self.plan.reason} ({self.record['started']})"
        self.record["pin"] = pin
        for name in self.plan.timers:
            shell = self.shells[name]
            _, records = split_run_records(shell.run(make_backup_run_command("pre-upgrade", pin, records=True), 7200))
            if not records:
                raise StepFailed(f"{name}: the pre-upgrade backup said nothing of its runs")
            for job, entry in records.items():
                if entry.get("result") != "ok" or entry.get("pin") != pin:
                    raise StepFailed(f"{name}/{job}: the pre-upgrade backup did not finish ({entry.get('result')})")
                # the vault records the pin: the server's own --pin only tags its snapshots
                by = f"upgrade.py ({self.plan.host})"
                self.vault(*make_vault_pin_arguments(entry["run"], pin, by, client=name))
                self.record["pinned_runs"][f"{name}/{job}"] = entry["run"]
        self.say(
            f"{self.plan.host}: pinned " + ", ".join(f"{k} run {v}" for k, v in self.record["pinned_runs"].items())
        )
        if self.plan.restore_point:
            name = restore_point_name(self.plan.host, self.record["started"])
            self.shells[self.plan.database_host].run(make_restore_point_command(name))
            self.record["restore_point"] = name
            self.say(f"{self.plan.database_host}: restore point {name} names the moment the upgrade began")

    def _wait_verified(self) -> None:
        for name in self.plan.timers:
            try:
                self.vault("check", "--client", name)
                problem = ""
            except PhoenixError as error:  # a problem with an older run must not block this upgrade
                problem = f"; the vault's check: {headline(error)}"
            runs = json.loads(self.vault("runs", "--client", name))["runs"]
            by_id = {run["run"]: run for run in runs}
            for what, run_id in self.record["pinned_runs"].items():
                if not what.startswith(f"{name}/"):
                    continue
                run = by_id.get(run_id)
                if run is None:
                    raise StepFailed(f"{what}: run {run_id} is not on the vault")
                if not run["verified"] or not run.get("pin"):
                    raise StepFailed(f"{what}: run {run_id} is on the vault but not verified and pinned there{problem}")
        self.say(f"{self.plan.host}: the vault holds and verified every pre-upgrade run")

    def _install_migrate_start(self, release: Release) -> None:
        shell = self.shells[self.plan.host]
        commands, markers = self.plan.commands, self.plan.markers
        self._step(f"install {release.version}", lambda: self._install(release))
        if commands["migrate"]:
            self._step("migrate the database", lambda: shell.run(commands["migrate"], timeout=7200))
            shell.run(make_marker_write_command(markers["migrated"], release.migrated_marker, mode=None))
        self._collect_static(release)
        self._start_and_verify(release.version, "start and verify")

    def _collect_static(self, release: Release) -> None:
        """app.static_command for the release just installed, so nginx serves its static files, not the last one's."""
        command = self.plan.commands.get("static")
        if not command:
            return
        shell = self.shells[self.plan.host]
        self._step("collect the static files", lambda: shell.run(command, timeout=1800))
        if release.static_marker:
            shell.run(make_marker_write_command(self.plan.markers["static"], release.static_marker, mode=None))
        else:  # not known (an older record): the next deploy collects again
            shell.run(f"rm -f {self.plan.markers['static']}")

    def _install(self, release: Release) -> None:
        shell = self.shells[self.plan.host]
        # replace, not str.format: the command has shell braces of its own (the WSGI target check's { ...; })
        shell.run(self.plan.commands["install"].replace("{wheel}", shlex.quote(release.wheel)), timeout=1800)
        shell.run(make_marker_write_command(self.plan.markers["installed"], release.sha256, mode=None))

    def _start_and_verify(self, version: str, step: str) -> None:
        self._step(step, lambda: self._start_and_check(version))

    def _start_and_check(self, version: str) -> None:
        shell = self.shells[self.plan.host]
        shell.run(self.plan.commands["start"])
        shell.run(self.plan.commands["health_wait"], timeout=120)
        problems = self.verify(version)
        if problems:
            raise StepFailed(f"{self.plan.host}: release {version} does not work: " + "; ".join(problems))
        self.say(f"{self.plan.host}: {version} answers: health, schema version and a request through nginx")

    def verify(self, version: str) -> list[str]:
        """Returns what is wrong with the running app (empty when health, schema version and smoke request pass)."""
        shell = self.shells[self.plan.host]
        problems = []
        try:
            health = health_document(shell.run(self.plan.smoke_commands["health"]))
        except PhoenixError as error:
            return [f"health check: {error}"]
        if health.get("version") not in (None, version):
            problems.append(f"health says version {health.get('version')}, expected {version}")
        if self.plan.expected_schema_command and "schema_version" in health:
            expected = shell.run(self.plan.expected_schema_command).split()
            if expected and health["schema_version"] != expected[0]:
                problems.append(f"schema version {health['schema_version']}, the release expects {expected[0]}")
        try:
            shell.run(self.plan.smoke_commands["smoke"])
        except PhoenixError as error:
            problems.append(f"smoke request: {error}")
        return problems

    def _rollback(self, record: dict) -> None:
        """Back to the record's previous release and its pinned data; raises StepFailed when that fails too."""
        plan = self.plan
        shell = self.shells[plan.host]
        previous = Release(
            record["from"],
            record["from_wheel"],
            record["from_sha256"],
            record["previous_migrated_marker"],
            record.get("previous_static_marker", ""),
        )

        def restore_data() -> None:
            shell.run(plan.commands["stop"] + " || true")
            runs = record["pinned_runs"]
            if plan.database_job:
                run = runs[f"{plan.database_host}/{plan.database_job}"]
                self.shells[plan.database_host].run(
                    make_restore_db_command(plan.database_job, run, force=True), timeout=7200
                )
            if plan.file_paths and f"{plan.host}/files" in runs:
                shell.run(
                    make_restore_files_command(runs[f"{plan.host}/files"], plan.file_paths, plan.app["name"]),
                    timeout=7200,
                )

        self._step(f"reinstall {previous.version}", lambda: self._install(previous))
        self._step("restore the pinned data", restore_data)
        shell.run(make_marker_write_command(plan.markers["migrated"], previous.migrated_marker, mode=None))
        self._collect_static(previous)
        self._start_and_verify(previous.version, "start and verify the old release")
        record["rolled_back_to"] = previous.version

    # --- interruption and the record ------------------------------------------------

    def _recover_interrupted(self) -> None:
        shell = self.shells[self.plan.host]
        text = shell.run(f"cat {IN_PROGRESS} 2>/dev/null || true").strip()
        if not text:
            return
        record = json.loads(text)
        self.say(
            f"{self.plan.host}: an upgrade {record['from']} -> {record['to']} started {record['started']} was"
            f" interrupted ({record['phase']}); resuming its timers first"
        )
        self.record = record
        self._lap = time.monotonic()
        try:
            if record["phase"] == PHASE_UPGRADING:
                self.say(
                    f"{self.plan.host}: it had begun installing: rolling back to {record['from']} and the pinned data"
                )
                self._rollback(record)
                record["outcome"] = "rolled back after an interruption"
            elif record["phase"] == PHASE_STOPPED:
                self._start_and_verify(record["from"], "restart the old release")
                record["outcome"] = "interrupted before any change"
            else:
                record["outcome"] = "interrupted before any change"
        except PhoenixError as error:
            record["outcome"] = "failed"
            record["error"] = str(error)
            raise
        finally:
            self._finish()

    def _save(self) -> None:
        self.shells[self.plan.host].write(IN_PROGRESS, json.dumps(self.record, sort_keys=True))

    def _finish(self) -> None:
        """Resumes timers and the vault's hold, appends the record to the host's history, prints it."""
        record = self.record
        problems = []
        for name, units in record.get("timers", {}).items():
            try:
                if units:
                    self.shells[name].run(f"systemctl start {' '.join(units)}")
                self.vault("release", "--client", name)
            except PhoenixError as error:
                problems.append(str(error))
        record["finished"] = _now()
        record["timers_resumed"] = not problems
        record.setdefault("outcome", "failed")
        line = json.dumps(record, sort_keys=True)
        shell = self.shells[self.plan.host]
        keep = record["outcome"] == "failed" and record.get("phase") in (PHASE_STOPPED, PHASE_UPGRADING)
        # a failure that may have left the app stopped or half-upgraded keeps the in-progress
        # record: the next run starts the old release again, or rolls back
        shell.run(f"printf '%s\\n' {shlex.quote(line)} >> {HISTORY}" + ("" if keep else f" && rm -f {IN_PROGRESS}"))
        self.say(describe(record) + "".join(f"\n  could not resume: {problem}" for problem in problems))
        if problems:
            raise StepFailed(f"{self.plan.host}: timers not resumed: " + "; ".join(problems))


OUTCOMES = {
    "upgraded": "UPGRADED {app} {from} -> {to}",
    "unchanged": "{app} already runs {to}",
    "rolled back": "ROLLED BACK: the upgrade of {app} to {to} failed; {from} runs again on the pre-upgrade data",
    "not upgraded": "NOT UPGRADED: {app} stays at {from}, nothing changed",
    "rolled back after an interruption": "the interrupted upgrade of {app} to {to} is ROLLED BACK; {from} runs again",
    "interrupted before any change": "the interrupted upgrade of {app} to {to} had changed nothing; {from} runs",
    "failed": "FAILED: the upgrade of {app} {from} -> {to}; run upgrade.py again to finish or roll it back",
}


def headline(error: Exception) -> str:
    """An error's first and last lines: the step that failed and its cause."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if len(lines) < 2 else f"{lines[0]} ... {lines[-1]}"


def describe(record: dict) -> str:
    """The operator's summary of one upgrade record."""
    lines = [f"{record['host']}: " + OUTCOMES[record["outcome"]].format(**record)]
    if record.get("pinned_runs"):
        pins = ", ".join(f"{what} run {run}" for what, run in record["pinned_runs"].items())
        lines.append(f"  pre-upgrade backup (pinned: {record.get('pin', '')}): {pins}")
    if record.get("restore_point"):
        lines.append(
            f"  restore point: {record['restore_point']} (restore.py --data restore_point={record['restore_point']}"
            " brings the database back to exactly that moment)"
        )
    if record.get("error"):
        lines.append(f"  reason: {headline(Exception(record['error']))}")
    steps = record.get("steps", {})
    if steps:
        lines.append(f"  steps: {step_durations(steps)}")
        lines.append(f"  total: {duration(sum(steps.values()))}; recorded in {HISTORY}")
    return "\n".join(lines)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def host_by_name(inventory, name: str):
    """Given the run's pyinfra inventory and a host's short name, returns its pyinfra host; PhoenixError if absent."""
    for candidate in inventory:
        if candidate.data.get("phoenix_host") == name:
            return candidate
    raise PhoenixError(f"{name} is not in this inventory")


def run_upgrade(state, host, plan: Plan, inventory: str) -> bool:
    """The upgrade, as a pyinfra callback: False (the host failed, with the reason printed) unless upgraded."""
    environment = environment_of(inventory)
    shells = {name: Shell(name, host_by_name(state.inventory, name)) for name in plan.timers}
    try:
        Upgrade(
            plan=plan,
            shells=shells,
            vault=lambda *arguments: run_on_vault(environment, *arguments, timeout=7200),
        ).run()
    except PhoenixError as error:
        print(f"phoenix: {error}", file=sys.stderr, flush=True)
        return False
    return True
