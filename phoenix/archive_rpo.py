"""A drill's real RPO of an archived database: what the source had committed when the drill started,
against what the restored copy holds.

At the drill's start each archived source host is asked for the time of its newest committed
transaction (`pg_last_committed_xact()`; the blueprint turns track_commit_timestamp on where the
vault archives). restore.py reports the newest transaction its recovery replayed (PostgreSQL's own
"last completed transaction" line), or none when nothing was committed after the base backup, whose
end is then the restored copy's newest point. Both times are the source's own clock. The RPO is how
much later the source's newest commit was than the restored copy's newest point, or 0 when the copy
reaches it: every transaction committed before the drill came back.
"""

from __future__ import annotations

import subprocess
from datetime import datetime

from phoenix.commands import make_newest_commit_query_command, make_remote_shell_argv
from phoenix.inventory import Environment

NO_TIMESTAMPS = "could not get commit timestamp data"  # PostgreSQL's words when track_commit_timestamp is off


def source_newest_commits(environment: Environment, names: list[str], remote, timeout: int = 60) -> dict[str, dict]:
    """Asks each source host in `names` for its newest commit's time; returns {name: {"newest_commit": ISO time or
    None, "error": why it is unknown ("" when known)}}. A host that cannot answer is recorded, not raised: the
    drill goes on, its RPO for that host unknown."""
    answers = {}
    for name in names:
        query = make_newest_commit_query_command()
        argv = make_remote_shell_argv(remote(environment, name), query, environment.over_ssh)
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            answers[name] = {"newest_commit": None, "error": f"{name} did not answer within {timeout}s"}
            continue
        answers[name] = parse_newest_commit(name, result.returncode, result.stdout, result.stderr)
    return answers


def parse_newest_commit(name: str, returncode: int, stdout: str, stderr: str) -> dict:
    """Given the answer of make_newest_commit_query_command() on host `name`, returns its source_newest_commits()
    entry."""
    if returncode != 0:
        if NO_TIMESTAMPS in stderr:
            why = f"{name} keeps no commit times (track_commit_timestamp is off: converge it with deploy.py)"
        else:
            why = f"{name} did not say its newest commit: {(stderr.strip().splitlines() or ['no message'])[-1]}"
        return {"newest_commit": None, "error": why}
    text = stdout.strip()
    if not text:
        return {"newest_commit": None, "error": f"{name} names no commit since track_commit_timestamp was turned on"}
    return {"newest_commit": datetime.fromisoformat(text).isoformat(), "error": ""}


def restored_point(recovered: dict) -> datetime:
    """Given restore.py's report of an archive recovery, returns the restored copy's newest point: its newest
    transaction, or the base backup's end when no transaction followed it."""
    return datetime.fromisoformat(recovered["newest_transaction"] or recovered["backup_end"])


def rpo_seconds(source: dict, recovered: dict) -> int | None:
    """Given a source host's source_newest_commits() entry and its stand-in's recovery report, returns the real
    RPO in seconds (None: the source's newest commit is unknown)."""
    if not source.get("newest_commit"):
        return None
    lost = datetime.fromisoformat(source["newest_commit"]) - restored_point(recovered)
    return max(0, round(lost.total_seconds()))


def archive_entry(name: str, recovered: dict, source: dict) -> dict:
    """Returns the drill report's data entry of host `name`'s database recovered from the archive."""
    return {
        "host": name,
        "job": "archive",
        "run": f"base backup {recovered['backup']}",
        "snapshot": "",
        "snapshot_time": restored_point(recovered).isoformat(),
        "age_seconds": rpo_seconds(source, recovered),
        "bytes": 0,
        "restore_seconds": None,
        "verified": None,
        "archive": {
            "target": recovered["target"],
            "newest_transaction": recovered["newest_transaction"],
            "source_newest_commit": source.get("newest_commit"),
            "unknown_because": source.get("error", ""),
        },
    }
