"""An app source in git (`git+URL@ref`): the ref's commit is built, nothing else; bad sources are named."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from test_wheel import tiny_project

from phoenix.errors import PhoenixError
from phoenix.git_source import checkout, split_git_source
from phoenix.inventory_checks import source_problem
from phoenix.wheel import wheel_for


def git(repository: Path, *arguments: str) -> str:
    identity = ["-c", "user.name=Tester", "-c", "user.email=tester@example.test"]
    result = subprocess.run(["git", *identity, "-C", str(repository), *arguments], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def repository(tmp_path) -> Path:
    """A git repository of tiny-app: tag v1.0 at version 1.0, branch main at 2.0."""
    source = tiny_project(tmp_path / "tiny")
    git(source, "init", "--quiet", "--initial-branch", "main")
    git(source, "add", "-A")
    git(source, "commit", "--quiet", "-m", "1.0")
    git(source, "tag", "v1.0")
    pyproject = source / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "1.0"', 'version = "2.0"'))
    git(source, "commit", "--quiet", "-am", "2.0")
    return source


def test_the_wheel_is_built_from_the_refs_commit(tmp_path, repository):
    cache = tmp_path / "cache"
    url = f"git+file://{repository}"
    assert wheel_for(str(checkout(f"{url}@v1.0", cache))).name.startswith("tiny_app-1.0-")
    assert wheel_for(str(checkout(f"{url}@main", cache))).name.startswith("tiny_app-2.0-")
    first = git(repository, "rev-list", "--max-parents=0", "HEAD")
    assert (checkout(f"{url}@{first}", cache) / "pyproject.toml").read_text().count('version = "1.0"') == 1


def test_a_branch_follows_its_newest_commit(tmp_path, repository):
    cache, source = tmp_path / "cache", f"git+file://{repository}@main"
    assert 'version = "2.0"' in (checkout(source, cache) / "pyproject.toml").read_text()
    pyproject = repository / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "2.0"', 'version = "2.1"'))
    git(repository, "commit", "--quiet", "-am", "2.1")
    assert 'version = "2.1"' in (checkout(source, cache) / "pyproject.toml").read_text()


def test_a_ref_the_repository_lacks_is_named(tmp_path, repository):
    with pytest.raises(PhoenixError) as error:
        checkout(f"git+file://{repository}@v9.9", tmp_path / "cache")
    assert (
        str(error.value)
        == f"app.source: git+file://{repository}@v9.9: the repository has no branch, tag or commit 'v9.9'"
    )


def test_a_repository_that_cannot_be_fetched_is_named(tmp_path):
    with pytest.raises(PhoenixError) as error:
        checkout(f"git+file://{tmp_path}/nowhere@v1.0", tmp_path / "cache")
    assert str(error.value).startswith(f"app.source: cannot fetch git+file://{tmp_path}/nowhere@v1.0: ")


def test_urls_split_at_the_last_at_of_the_path_and_a_missing_ref_is_refused_before_any_host():
    assert split_git_source("git+ssh://git@example.org/shop.git@release/2.0") == (
        "ssh://git@example.org/shop.git",
        "release/2.0",
    )
    assert source_problem("git+https://example.org/shop.git@v2.0", Path("/nonexistent")) is None
    assert source_problem("git+https://example.org/shop.git", Path("/nonexistent")) == (
        "git+https://example.org/shop.git has no ref: write git+URL@REF, REF a tag or commit (or a branch, which moves)"
    )
