"""What the vault's Barman holds of an archived host, read in one command: its base backups, and which of them
can recover the host's current history.

A point-in-time recovery makes PostgreSQL open on a new timeline, branching off where the target was. A base
backup taken on the old timeline after that point lies on a history nobody follows any more: recovered with
`--target-tli latest`, PostgreSQL stops at once ("requested timeline N is not a child of this server's
history"). Such a backup is the newest one until the next scheduled base backup, so restore.py must skip it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from phoenix.commands import barman
from phoenix.errors import PhoenixError

BARMAN_HOME = "/var/lib/barman"
LINEAGE_MARK = "phoenix-lineage"  # separates Barman's JSON from the facts read off its files
LSN = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")
HISTORY_LINE = re.compile(r"^\s*(\d+)\s+([0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8})\b")


def streaming_directory(server: str) -> str:
    """Given an archived host, returns the vault's directory of its WAL streamed but not archived yet."""
    return f"{BARMAN_HOME}/{server}/streaming"


def catalogue_command(server: str) -> str:
    """Returns the shell line (root, on the vault) that prints `barman -f json list-backups` of `server` ('{}' when
    Barman cannot say; Barman ends it without a newline), an empty line, LINEAGE_MARK, a line `backup ID TIMELINE
    END_LSN` per base backup (its backup.info), then the newest timeline history file, archived or still in the
    stream's directory, after a line `history TLI`."""
    base, wals = f"{BARMAN_HOME}/{server}/base", f"{BARMAN_HOME}/{server}/wals"
    histories = f"{wals}/*.history {streaming_directory(server)}/*.history"
    field = 'sed -n "s/^{0}=//p" "$info"'
    return (
        f"{barman('-f', 'json', 'list-backups', server)} 2>/dev/null || echo '{{}}'; echo; echo {LINEAGE_MARK};"
        f' for info in {base}/*/backup.info; do [ -e "$info" ] || continue;'
        f' echo "backup $(basename "$(dirname "$info")") $({field.format("timeline")}) $({field.format("end_xlog")})";'
        f" done; newest=$(for history in {histories}; do"
        f' [ -e "$history" ] && echo "$(basename "$history") $history"; done | sort | tail -1 | cut -d" " -f2);'
        f' [ -z "$newest" ] || {{ echo "history $(basename "$newest" .history)"; zcat -f "$newest"; }}'
    )


def lsn(text: str) -> int:
    """Given a WAL location as PostgreSQL writes it (`2D/4E620A0`), returns it as a number."""
    match = LSN.match(text.strip())
    if not match:
        raise ValueError(f"not a WAL location: {text!r}")
    return (int(match.group(1), 16) << 32) + int(match.group(2), 16)


@dataclass(frozen=True)
class Lineage:
    """The newest timeline's history as PostgreSQL reads it: each timeline, newest first, with the WAL locations it
    begins and ends at (the newest one never ends). A recovery to a moment before its parent's own start writes
    a parent that begins after it ends: it owns no location."""

    timelines: tuple[tuple[int, int, int | None], ...]  # (timeline, begins, ends or None), newest first

    def owner(self, location: int) -> int | None:
        """The timeline that holds WAL location `location` in this history (PostgreSQL's tliOfPointInHistory)."""
        for timeline, begins, ends in self.timelines:
            if begins <= location and (ends is None or location < ends):
                return timeline
        return None

    def holds(self, timeline: int, end: int) -> bool:
        """Whether a base backup taken on `timeline` and ending at WAL location `end` lies on this history."""
        return self.owner(end) == timeline


def parse_history(newest: int, text: str) -> Lineage:
    """Given the newest timeline and its history file's text (`parent<TAB>switch point<TAB>reason` lines, oldest
    first), returns its Lineage."""
    timelines, begins = [], 0
    for line in text.splitlines():
        match = HISTORY_LINE.match(line)
        if match:
            ends = lsn(match.group(2))
            timelines.append((int(match.group(1)), begins, ends))
            begins = ends
    timelines.append((newest, begins, None))
    return Lineage(tuple(reversed(timelines)))


def parse(server: str, vault: str, output: str) -> list[dict]:
    """Given catalogue_command()'s output, returns Barman's base backups of `server` (list-backups' dicts), each
    with `on_current_history`: False for one a point-in-time recovery has left behind (True when Barman's files
    do not say). Raises PhoenixError when Barman's answer is not JSON."""
    listing, _, facts = output.partition(f"\n{LINEAGE_MARK}\n")
    try:
        backups = json.loads(listing.strip() or "{}").get(server, [])
    except json.JSONDecodeError as error:
        raise PhoenixError(f"{vault}: barman list-backups {server} answered no JSON: {listing[:200]}") from error
    placed, lineage = {}, None
    lines = facts.splitlines()
    for number, line in enumerate(lines):
        words = line.split()
        if len(words) == 4 and words[0] == "backup" and words[2].isdigit() and LSN.match(words[3]):
            placed[words[1]] = (int(words[2]), lsn(words[3]))
        elif len(words) == 2 and words[0] == "history" and re.fullmatch(r"[0-9A-Fa-f]{8}", words[1]):
            lineage = parse_history(int(words[1], 16), "\n".join(lines[number + 1 :]))
            break
    for backup in backups:
        where = placed.get(backup.get("backup_id", ""))
        backup["on_current_history"] = lineage is None or where is None or lineage.holds(*where)
    return backups
