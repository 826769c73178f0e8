"""A drill's real RPO of a files job: whether the source still held what the restored run holds.

At the drill's start each source data host is asked whether its files job's data paths are as its last
successful files run found them when it began (`phoenix-backup watch-state files`: the watch's baseline,
phoenix/remote/file_changes.py). When they are, and that run is the one restored, nothing of the files
was lost: the RPO is 0, however old the run. Otherwise (changed since, another run restored, no watch,
no answer) it stays the run's age at drill time, an upper bound.
"""

from __future__ import annotations

import json
import subprocess

from phoenix import backup_plan
from phoenix.commands import make_files_watch_state_command, make_remote_shell_argv
from phoenix.inventory import Environment


def watched_hosts(hosts: dict[str, dict], names: list[str]) -> list[str]:
    """Returns the hosts of `names` whose files job has a watch (data paths, watch_seconds not 0)."""
    return [
        name
        for name in names
        if any(job.get("watch_seconds") for job in backup_plan.jobs(hosts[name], []) if job["kind"] == "files")
    ]


def source_file_states(environment: Environment, names: list[str], remote, timeout: int = 60) -> dict[str, dict]:
    """Asks each source host in `names` about its files job; returns {name: {"baseline": "run ID" or what took it,
    "unchanged": bool, "error": why unknown ("" when known)}}. A host that cannot answer is recorded, not raised."""
    answers = {}
    for name in names:
        argv = make_remote_shell_argv(remote(environment, name), make_files_watch_state_command(), environment.over_ssh)
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            answers[name] = {"baseline": "", "unchanged": False, "error": f"{name} did not answer within {timeout}s"}
            continue
        answers[name] = parse_file_state(name, result.returncode, result.stdout, result.stderr)
    return answers


def parse_file_state(name: str, returncode: int, stdout: str, stderr: str) -> dict:
    """Given the answer of make_files_watch_state_command() on host `name`, returns its source_file_states() entry."""
    try:
        answer = json.loads(stdout) if returncode == 0 else None
    except json.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        why = (stderr.strip().splitlines() or [stdout.strip() or "no answer"])[-1]
        return {"baseline": "", "unchanged": False, "error": f"{name} did not say whether its files changed: {why}"}
    return {"baseline": str(answer.get("baseline", "")), "unchanged": answer.get("unchanged") is True, "error": ""}


def real_age(run: str, age_seconds: int, state: dict | None) -> tuple[int, str]:
    """Given the restored files run, its age at drill time and its host's source_file_states() entry, returns
    (the data lost in seconds, why): 0 when the source's files were that run's at drill start, else the age."""
    if state and state["unchanged"] and state["baseline"] == f"run {run}":
        return 0, "the source's files had not changed since this run began"
    return age_seconds, "the run's age at drill time"
