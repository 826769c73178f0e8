"""What the files job's watch compares: a fingerprint of the data paths' trees, and the baseline it is held against.

A fingerprint hashes every entry under the paths (path, type, size, mtime, ctime, inode) in a fixed order: a file
added, removed, renamed, written or chmod-ed changes it; reading does not. The baseline is the fingerprint of the
data as the last successful files run found them when it began (or as the watch first found them), kept in
STATE_DIR/file-watch/JOB.json. restore-files removes it before it writes anything: a half-restored tree must never
look like the data to back up. Once the restored tree matched its run, it writes RESTORED instead, which no tree
matches: the next look backs up what the host now holds (after a restore to an older moment, the newest run must
be that moment's data, not the newer data it replaced).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from phoenix.remote.common import now, read_json, write_json

RESTORED = "restored: back up at the next look"


def fingerprint(paths: list[str]) -> str:
    """Returns the sha256 of every entry's metadata under `paths` (symbolic links are not followed)."""
    digest = hashlib.sha256()
    for root in sorted(paths):
        for path, status in _entries(root):
            kind = stat.S_IFMT(status.st_mode)
            digest.update(
                f"{path}\0{kind}\0{status.st_mode}\0{status.st_size}\0{status.st_mtime_ns}\0{status.st_ctime_ns}"
                f"\0{status.st_ino}\n".encode(errors="surrogateescape")
            )
    return digest.hexdigest()


def _entries(root: str):
    """Yields (path, lstat) of `root` and everything under it, depth first in name order; nothing when it is
    absent. An entry removed while it is walked is left out: the next fingerprint sees the tree as it settled.
    The walk keeps its own stack: a tree nested deeper than Python's recursion limit is walked all the same."""
    pending = [root]
    while pending:
        path = pending.pop()
        try:
            status = os.lstat(path)
        except FileNotFoundError:
            continue
        yield path, status
        if not stat.S_ISDIR(status.st_mode):
            continue
        try:
            names = sorted(os.listdir(path), reverse=True)  # popped from the end: first name first
        except (FileNotFoundError, NotADirectoryError):
            continue
        pending += [os.path.join(path, name) for name in names]


def baseline_path(state_dir: Path, job: str) -> Path:
    return state_dir / "file-watch" / f"{job}.json"


def read_baseline_record(state_dir: Path, job: str) -> dict:
    """Returns the job's baseline as recorded ({"fingerprint", "source", "recorded"}), or {} when it has none."""
    return read_json(baseline_path(state_dir, job), {})


def read_baseline(state_dir: Path, job: str) -> str:
    """Returns the job's baseline fingerprint, or "" when it has none."""
    return read_baseline_record(state_dir, job).get("fingerprint", "")


def write_baseline(state_dir: Path, job: str, value: str, source: str) -> None:
    """Records `value` as the job's baseline; `source` says what took it (a run id, or the watch's first look)."""
    record = {"fingerprint": value, "source": source, "recorded": now().isoformat(timespec="seconds")}
    write_json(baseline_path(state_dir, job), record, mode=0o600)


def remove_baseline(state_dir: Path, job: str) -> None:
    baseline_path(state_dir, job).unlink(missing_ok=True)
