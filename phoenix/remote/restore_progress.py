"""The record of a restore in progress, so that a killed restore says which step it was running.

Before each step a restore writes /var/lib/phoenix/restore/<name>.progress.json: the run, the
step's number and name, its own pid. A finished restore removes it. A record left behind by a
dead process is a restore that was killed: the next one says so, and runs it again. A record of
a live process is a restore still running: a second one refuses. SIGTERM, SIGINT and SIGHUP stop
the step's commands and end the restore with a message naming the step.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from phoenix.remote.common import JobError, RefusedError, now, write_json

DIRECTORY = Path("/var/lib/phoenix/restore")
# Fault injection for tests: with this set to a step's number, the restore stops itself (SIGSTOP) once it
# recorded that step, so a test can kill it there however fast the step would have been.
STOP_AT_STEP_VARIABLE = "PHOENIX_RESTORE_STOP_AT_STEP"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Interrupted(JobError):
    """The restore received a stop signal; the message names the step it was running."""


def describe_step(record: dict) -> str:
    """Given a progress record, returns e.g. "restic dump | pg_restore (step 3 of 5)"."""
    return f"{record['step']} (step {record['number']} of {record['steps']})"


def process_start(pid: int) -> str:
    """Given a pid, returns its process's start time in clock ticks since boot ("" when none runs, or a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    return "" if fields[0] == "Z" else fields[19]


def descendants(pid: int) -> list[int]:
    """Given a pid, returns the pids of its children, their children and so on (read from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(parent, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        children = parents.get(pending.pop(), [])
        found += children
        pending += children
    return found


class RestoreProgress:
    """The progress record of one restore (`name`: a job, or "files"), written before each of `steps`."""

    def __init__(self, name: str, run: str, steps: list[str], directory: Path = DIRECTORY):
        self.name, self.run, self.steps = name, run, steps
        self.path = directory / f"{name}.progress.json"
        self.current: dict = {}
        self.interrupted = self._previous()

    def _previous(self) -> dict | None:
        """Returns the record a killed restore left (saying so on stderr); raises RefusedError when one still runs."""
        try:
            record = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        pid = int(record.get("pid", 0))
        if pid != os.getpid() and process_start(pid) == record.get("pid_start"):  # not a recycled pid
            raise RefusedError(
                f"a restore of {self.name} is already running (pid {record['pid']}, run {record['run']},"
                f" at {describe_step(record)} since {record['since']}); not starting a second one"
            )
        self.interrupted = record
        print(
            f"phoenix-backup: {self.name}: {self.previous_outcome()}; it is being run again",
            file=sys.stderr,
            flush=True,
        )
        return record

    def previous_outcome(self) -> str:
        """Returns what happened to the previous, killed or failed restore ("" when it finished)."""
        if not self.interrupted:
            return ""
        how = "failed" if self.interrupted.get("failed") else "was interrupted"
        where = describe_step(self.interrupted)
        return f"the previous restore (run {self.interrupted['run']}) {how} while running {where}"

    def interrupted_at_or_after(self, step: str) -> bool:
        """Returns whether the previous, killed restore had reached `step` (so it may have changed data)."""
        return bool(self.interrupted) and self.interrupted["number"] >= self.steps.index(step) + 1

    def step(self, step: str) -> None:
        """Records that `step` starts now."""
        self.current = {
            "name": self.name,
            "run": self.run,
            "pid": os.getpid(),
            "pid_start": process_start(os.getpid()),
            "step": step,
            "number": self.steps.index(step) + 1,
            "steps": len(self.steps),
            "since": now().isoformat(timespec="seconds"),
        }
        write_json(self.path, self.current)
        if os.environ.get(STOP_AT_STEP_VARIABLE) == str(self.current["number"]):
            os.kill(os.getpid(), signal.SIGSTOP)

    def finished(self) -> None:
        """Removes the record: nothing is left to finish."""
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> RestoreProgress:
        self._handlers = {number: signal.signal(number, self._stop) for number in STOP_SIGNALS}
        return self

    def __exit__(self, kind, error, traceback) -> None:
        for number, handler in self._handlers.items():
            signal.signal(number, handler)
        if kind is None or (isinstance(error, RefusedError)):
            self.finished()  # done, or refused before changing anything
        elif self.current and not isinstance(error, Interrupted):
            write_json(self.path, {**self.current, "failed": str(error)[:300]})

    def _stop(self, number: int, frame) -> None:
        """Stops the step's commands and raises Interrupted naming the step; the record stays for the next run."""
        for pid in descendants(os.getpid()):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        where = describe_step(self.current) if self.current else "its start"
        raise Interrupted(
            f"restore of {self.name} (run {self.run}) stopped by {signal.Signals(number).name} while running"
            f" {where}; run it again to finish it (restore.py does: the next run says where this one stopped)"
        )
