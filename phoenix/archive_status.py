"""`phoenix status`'s archive lines: per archived PostgreSQL host, how long ago the vault's Barman last
received WAL, whether the stream has caught up with the server, and what `barman check` says.

The lag is the age of the newest WAL file Barman received (the streamed `.partial` grows as WAL
arrives), counted as none while the server's current segment is the one being streamed: an idle
server writes no WAL, which is not a lag. A lag over vault.pitr.max_lag_minutes, or a failing
`barman check`, is a problem (exit 1).
"""

from __future__ import annotations

import json
import subprocess

from phoenix import archive_plan, backup_plan
from phoenix.commands import barman, make_remote_shell_argv
from phoenix.inventory import Environment
from phoenix.units import duration

SEPARATOR = "----phoenix----"


def probe_command(server: str, home: str = "/var/lib/barman") -> str:
    """Returns the shell line (root, on the vault) printing, separated by SEPARATOR lines: the vault's clock
    (epoch seconds), `barman -f json check`, `barman -f json status`, and the newest received WAL file as
    "MTIME NAME"."""
    return (
        f"cd /tmp; date +%s; echo {SEPARATOR}; {barman('-f', 'json', 'check', server)} 2>/dev/null; echo {SEPARATOR};"
        f" {barman('-f', 'json', 'status', server)} 2>/dev/null; echo {SEPARATOR};"
        f" find {home}/{server}/streaming {home}/{server}/wals -type f -name '0*' -printf '%T@ %f\\n' 2>/dev/null"
        " | sort -n | tail -1"
    )


def parse(server: str, output: str) -> dict:
    """Given probe_command's output, returns {"server", "received_seconds_ago" (None: nothing received),
    "newest", "current", "caught_up", "failed_checks": [names with their hints]}."""
    parts = output.split(SEPARATOR + "\n")
    parts += [""] * (4 - len(parts))
    now = int(parts[0].strip() or 0)
    check = _json(parts[1]).get(server, {})
    status = _json(parts[2]).get(server, {})
    newest_line = parts[3].split()
    newest = newest_line[1].removesuffix(".partial") if len(newest_line) == 2 else ""
    received_ago = max(0, now - int(float(newest_line[0]))) if len(newest_line) == 2 else None
    current = status.get("current_xlog", {}).get("message", "")
    failed = [
        f"{name.replace('_', ' ')}" + (f" ({entry.get('hint')})" if entry.get("hint") else "")
        for name, entry in sorted(check.items())
        if entry.get("status") == "FAILED"
    ]
    if not check:
        failed.append("barman check gave no answer")
    return {
        "server": server,
        "received_seconds_ago": received_ago,
        "newest": newest,
        "current": current,
        "caught_up": bool(current) and newest >= current,
        "failed_checks": failed,
    }


def _json(text: str) -> dict:
    try:
        return json.loads(text.strip() or "{}")
    except json.JSONDecodeError:
        return {}


def lag_seconds(entry: dict) -> float | None:
    """The archive lag: 0 when the stream has caught up with the server, else the newest WAL's age (None: no WAL
    ever received)."""
    if entry["caught_up"]:
        return 0
    return entry["received_seconds_ago"]


def flags(entry: dict, max_lag_minutes: int) -> list[str]:
    """Given one parsed archive entry, returns its problems, one line each."""
    problems = []
    lag = lag_seconds(entry)
    if lag is None:
        problems.append("no WAL ever reached the vault's archive")
    elif lag > max_lag_minutes * 60:
        problems.append(
            f"archive lag {duration(lag)}: the newest WAL reached the vault {duration(lag)} ago and the server"
            f" has written since (vault.pitr.max_lag_minutes: {max_lag_minutes})"
        )
    problems += [f"barman check FAILED: {name}" for name in entry["failed_checks"]]
    return problems


def line(entry: dict) -> str:
    """One status line for an archived host."""
    lag = lag_seconds(entry)
    received = entry["received_seconds_ago"]
    newest = "no WAL received yet" if received is None else f"newest WAL received {duration(received)} ago"
    lag_text = "lag -" if lag is None else "caught up" if entry["caught_up"] else f"lag {duration(lag)}"
    check = "barman check passed" if not entry["failed_checks"] else "barman check FAILED"
    return f"archive of {entry['server']}: {newest} ({entry['newest'] or '-'}), {lag_text}, {check}"


def report(environment: Environment, remote, timeout: int = 120) -> list[dict]:
    """Asks the environment's vault about every archived host; returns parse()'s entry for each (a vault that
    does not answer within `timeout` seconds gives an entry whose barman check gave no answer)."""
    vault = backup_plan.vault_host(environment.hosts)
    ssh = environment.over_ssh
    entries = []
    for server in archive_plan.archived_hosts(environment.hosts):
        try:
            output = subprocess.run(
                make_remote_shell_argv(remote(environment, vault), probe_command(server), ssh),
                capture_output=True,
                text=True,
                timeout=timeout,
            ).stdout
        except subprocess.TimeoutExpired:
            output = ""
        entries.append(parse(server, output))
    return entries
