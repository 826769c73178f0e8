"""A killed restore names the step it was running, and the next one says so and runs it again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from phoenix.remote.common import RefusedError
from phoenix.remote.restore_progress import RestoreProgress, process_start

STEPS = ["restic dump of the manifest", "restic dump | pg_restore --clean", "psql ANALYZE"]
# A restore whose second step runs a long command, as pg_restore would be.
RESTORE = f"""
import subprocess, sys
from pathlib import Path
from phoenix.remote.common import JobError
from phoenix.remote.restore_progress import RestoreProgress
steps = {STEPS!r}
try:
    with RestoreProgress("db-links", "r42", steps, Path(sys.argv[1])) as progress:
        progress.step(steps[0])
        progress.step(steps[1])
        subprocess.run(["sleep", "60"])
        progress.step(steps[2])
except JobError as error:
    print(f"phoenix-backup: {{error}}", file=sys.stderr)
    sys.exit(1)
"""


def wait_for(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def sleeping_children(pid: int) -> list[str]:
    return [p.name for p in Path("/proc").iterdir() if p.name.isdigit() and _is_sleep_child(p, pid)]


def _is_sleep_child(entry: Path, pid: int) -> bool:
    try:
        stat = (entry / "stat").read_text()
    except OSError:
        return False
    return "(sleep)" in stat and stat.rsplit(")", 1)[1].split()[1] == str(pid)


def test_a_restore_stopped_mid_step_names_the_step_stops_its_command_and_keeps_the_record(tmp_path):
    restore = subprocess.Popen([sys.executable, "-c", RESTORE, str(tmp_path)], stderr=subprocess.PIPE, text=True)
    record = tmp_path / "db-links.progress.json"
    wait_for(lambda: sleeping_children(restore.pid))

    restore.send_signal(signal.SIGTERM)

    _, stderr = restore.communicate(timeout=20)
    assert restore.returncode == 1
    assert stderr.strip() == (
        "phoenix-backup: restore of db-links (run r42) stopped by SIGTERM while running"
        " restic dump | pg_restore --clean (step 2 of 3); run it again to finish it"
        " (restore.py does: the next run says where this one stopped)"
    )
    assert sleeping_children(restore.pid) == []
    assert json.loads(record.read_text())["step"] == STEPS[1]


def test_the_next_restore_says_where_the_killed_one_stopped_and_finishes(tmp_path, capsys):
    restore = subprocess.Popen([sys.executable, "-c", RESTORE, str(tmp_path)])
    wait_for(lambda: sleeping_children(restore.pid))
    restore.kill()  # SIGKILL: no handler runs, only the record tells
    restore.wait()
    for child in sleeping_children(restore.pid):
        os.kill(int(child), signal.SIGKILL)

    with RestoreProgress("db-links", "r43", STEPS, tmp_path) as progress:
        said = capsys.readouterr().err
        assert progress.interrupted_at_or_after(STEPS[1]) and not progress.interrupted_at_or_after(STEPS[2])
        for step in STEPS:
            progress.step(step)

    assert said == (
        "phoenix-backup: db-links: the previous restore (run r42) was interrupted while running"
        " restic dump | pg_restore --clean (step 2 of 3); it is being run again\n"
    )
    assert not (tmp_path / "db-links.progress.json").exists()


def test_a_second_restore_refuses_while_the_first_runs(tmp_path):
    record = {"name": "db-links", "run": "r42", "pid": os.getppid(), "pid_start": process_start(os.getppid()),
              "step": STEPS[1], "number": 2, "steps": 3, "since": "2026-11-30T06:00:00+00:00"}  # fmt: skip
    (tmp_path / "db-links.progress.json").write_text(json.dumps(record))

    with pytest.raises(RefusedError) as refused:
        RestoreProgress("db-links", "r43", STEPS, tmp_path)

    assert str(refused.value) == (
        f"a restore of db-links is already running (pid {os.getppid()}, run r42, at restic dump | pg_restore"
        " --clean (step 2 of 3) since 2026-11-30T06:00:00+00:00); not starting a second one"
    )


def test_a_recycled_pid_is_not_taken_for_a_running_restore(tmp_path, capsys):
    record = {"name": "files", "run": "r7", "pid": os.getppid(), "pid_start": "1",
              "step": "restic restore", "number": 2, "steps": 4, "since": "2026-11-30T06:00:00+00:00"}  # fmt: skip
    (tmp_path / "files.progress.json").write_text(json.dumps(record))

    progress = RestoreProgress("files", "r7", ["restic ls", "restic restore", "chown", "stat"], tmp_path)

    assert (
        progress.previous_outcome()
        == "the previous restore (run r7) was interrupted while running restic restore (step 2 of 4)"
    )
    assert "it is being run again" in capsys.readouterr().err


def test_a_refused_restore_leaves_no_record_and_a_failed_one_says_it_failed(tmp_path, capsys):
    with pytest.raises(RefusedError), RestoreProgress("db-links", "r1", STEPS, tmp_path) as progress:
        progress.step(STEPS[0])
        raise RefusedError("holds data")
    assert not (tmp_path / "db-links.progress.json").exists()

    with pytest.raises(RuntimeError), RestoreProgress("db-links", "r1", STEPS, tmp_path) as progress:
        progress.step(STEPS[2])
        raise RuntimeError("ANALYZE failed")

    assert RestoreProgress("db-links", "r1", STEPS, tmp_path).previous_outcome() == (
        "the previous restore (run r1) failed while running psql ANALYZE (step 3 of 3)"
    )
