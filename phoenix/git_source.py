"""An app source in git: `git+URL@ref` (https, ssh or file URL; a branch, tag or commit), checked out on the
control machine into a source tree that phoenix/wheel.py builds like a local directory.

The repository is mirrored once into the cache and fetched again on each use unless the ref is a full commit
already there, so a branch follows its newest commit and a pinned commit needs no network at all.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from phoenix.errors import PhoenixError
from phoenix.wheel import lock_cooperatively

PREFIX = "git+"
FULL_COMMIT = re.compile(r"[0-9a-f]{40}")


def is_git_source(source: str) -> bool:
    return source.strip().startswith(PREFIX)


def split_git_source(source: str) -> tuple[str, str]:
    """Given `git+URL@ref`, returns (URL, ref); raises PhoenixError when it has no @ref after the host."""
    url = source.strip().removeprefix(PREFIX)
    parts = urlsplit(url)
    path, _, ref = parts.path.rpartition("@")
    if not parts.scheme or not path or not ref:
        raise PhoenixError(
            f"app.source: {source} has no ref: write git+URL@REF, REF a tag or commit (or a branch, which moves)"
        )
    return parts._replace(path=path).geturl(), ref


def checkout(source: str, cache: Path) -> Path:
    """Given `git+URL@ref` and a cache directory, returns a directory holding the tree of that ref's commit.

    Raises PhoenixError naming the source when the repository cannot be fetched or has no such ref.
    """
    url, ref = split_git_source(source)
    mirror = cache / "git" / hashlib.sha256(url.encode()).hexdigest()[:16]
    mirror.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{mirror}.lock", "w") as lock:  # hosts are prepared in parallel: one clone or fetch at a time
        lock_cooperatively(lock)
        return _tree(source, url, ref, mirror, cache)


def _tree(source: str, url: str, ref: str, mirror: Path, cache: Path) -> Path:
    if not (mirror / "HEAD").is_file():
        shutil.rmtree(mirror, ignore_errors=True)
        _git(source, "clone", "--quiet", "--mirror", url, str(mirror))
    elif not (FULL_COMMIT.fullmatch(ref) and _commit(mirror, ref)):
        _git(source, "-C", str(mirror), "fetch", "--quiet", "--prune", "--tags", "origin")
    commit = _commit(mirror, ref)
    if not commit:
        raise PhoenixError(f"app.source: {source}: the repository has no branch, tag or commit {ref!r}")
    tree = cache / "git-trees" / commit
    if not tree.is_dir():
        tree.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f"{commit}.", dir=tree.parent))
        archive = subprocess.run(["git", "-C", str(mirror), "archive", commit], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(scratch)], input=archive.stdout, check=True)
        scratch.rename(tree)  # whole or not at all: an interrupted export leaves only a scratch directory
    return tree


def _commit(mirror: Path, ref: str) -> str:
    """The commit `ref` names in the mirror ("" when none)."""
    found = subprocess.run(
        ["git", "-C", str(mirror), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    return found.stdout.strip() if found.returncode == 0 else ""


def _git(source: str, *arguments: str) -> None:
    # never a password prompt: a deploy must not hang on one
    result = subprocess.run(
        ["git", *arguments], capture_output=True, text=True, env=dict(os.environ, GIT_TERMINAL_PROMPT="0")
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise PhoenixError(f"app.source: cannot fetch {source}: {last}")
