"""`phoenix status`'s word from each backed-up host: did its newest backup run fail?

The vault's report says what is stored; only the host knows that its newest run failed a minute
ago (the files watch's, say, against a full vault disk). Without this a failing job went
unflagged until its last good run grew older than backup.max_age_hours (a day), while the uploads
it should have saved piled up. Each host is asked `phoenix-backup status` (its status files); a
newest run that failed is flagged at once, in the host's words, and so is a host that cannot be
asked. Those words come from a server that may be compromised: they are shown as printable text,
cut short.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

from phoenix import backup_plan
from phoenix.commands import BACKUP_STATUS_COMMAND, make_remote_shell_argv
from phoenix.errors import PhoenixError
from phoenix.inventory import Environment
from phoenix.units import minute

ASK_TIMEOUT_SECONDS = 30
MOST_SHOWN = 300  # characters of a host's own words


def shown(text: object) -> str:
    """A host's words as one printable line, at most MOST_SHOWN characters."""
    flat = "".join(char if char.isprintable() else " " for char in str(text))
    return flat if len(flat) <= MOST_SHOWN else flat[: MOST_SHOWN - 3] + "..."


def parse(output: str) -> dict:
    """Given `phoenix-backup status` output, returns {"jobs": {job: record}}, or {"error": why it is unusable}."""
    try:
        records = json.loads(output)
    except json.JSONDecodeError:
        return {"error": f"its answer is not JSON: {shown(output.strip()[:80])!r}"}
    if not isinstance(records, dict) or not all(isinstance(record, dict) for record in records.values()):
        return {"error": "its answer is not a record per job"}
    return {"jobs": records}


def ask(environment: Environment, remote) -> dict[str, dict]:
    """Asks every backed-up host of the environment at once for its jobs' newest results; returns parse()'s answer
    per host, or {"error": ...} for a host that does not answer, fails, or answers nonsense. A lost host costs
    ASK_TIMEOUT_SECONDS once, not once per host."""
    names = backup_plan.backed_up_hosts(environment.hosts)
    if not names:
        return {}
    with ThreadPoolExecutor(max_workers=min(len(names), 16)) as pool:
        answers = pool.map(lambda name: ask_host(environment, remote, name), names)
        return dict(zip(names, answers, strict=True))


def ask_host(environment: Environment, remote, name: str) -> dict:
    """Asks one host for its jobs' newest results; returns parse()'s answer, or {"error": ...}."""
    try:
        argv = make_remote_shell_argv(remote(environment, name), BACKUP_STATUS_COMMAND, environment.over_ssh)
    except PhoenixError as error:  # a sandbox's container that is gone
        return {"error": shown(error)}
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=ASK_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        return {"error": f"no answer within {ASK_TIMEOUT_SECONDS}s"}
    if result.returncode != 0:
        said = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:] or [f"exit {result.returncode}"]
        return {"error": shown(said[0])}
    return parse(result.stdout)


def flags(answers: dict[str, dict]) -> list[str]:
    """Given ask()'s answers, returns a line per job whose newest run failed or was interrupted and per host that
    could not be asked."""
    problems = []
    for host, answer in sorted(answers.items()):
        if "error" in answer:
            problems.append(f"{host}: its own backup status could not be read ({answer['error']})")
            continue
        problems += [failure_flag(f"{host}/{shown(job)}", record) for job, record in sorted(answer["jobs"].items())]
    return [problem for problem in problems if problem]


def failure_flag(where: str, record: dict) -> str:
    """Given a job's status record, returns its flag when its newest finished run failed or its newest run was
    interrupted (`phoenix-backup status` says so of a run recorded as running that no process runs), else ""."""
    if record.get("result") == "interrupted":
        when = minute(shown(record.get("started", "?")))
        return (
            f"{where}: its newest run, begun at {when} ({shown(record.get('trigger', '?'))}), was INTERRUPTED:"
            f" {shown(record.get('error', 'no reason given'))}"
        )
    if record.get("result") == "failed":
        failure, newest, under_way = record, "newest", ""
    elif record.get("result") == "running" and isinstance(record.get("last_failure"), dict):
        failure, newest, under_way = record["last_failure"], "last finished", "; a new run is under way"
    else:
        return ""
    when = minute(shown(failure.get("finished", "?")))
    return (
        f"{where}: its {newest} run FAILED at {when} ({shown(failure.get('trigger', '?'))}):"
        f" {shown(failure.get('error', 'no reason given'))}{under_way}"
    )
