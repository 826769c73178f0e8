"""The app's wheel: built once per distinct source tree, reused while the source is unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from phoenix.errors import PhoenixError
from phoenix.wheel import source_hash, wheel_for, wheel_version

PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "tiny-app"
version = "1.0"

[tool.setuptools]
packages = ["tiny_app"]
"""


def tiny_project(folder: Path) -> Path:
    (folder / "tiny_app").mkdir(parents=True)
    (folder / "pyproject.toml").write_text(PYPROJECT)
    (folder / "tiny_app" / "__init__.py").write_text('GREETING = "hello"\n')
    return folder


def test_source_hash_ignores_build_leftovers_caches_and_git(tmp_path):
    source = tiny_project(tmp_path / "app")
    before = source_hash(source)
    for leftover in (
        "tiny_app/__pycache__/__init__.cpython-311.pyc",
        "build/lib/tiny_app/__init__.py",
        "dist/tiny_app-1.0-py3-none-any.whl",
        "tiny_app.egg-info/PKG-INFO",
        ".git/HEAD",
    ):
        (source / leftover).parent.mkdir(parents=True, exist_ok=True)
        (source / leftover).write_text("anything")

    assert source_hash(source) == before


def test_source_hash_changes_when_a_file_changes(tmp_path):
    source = tiny_project(tmp_path / "app")
    before = source_hash(source)

    (source / "tiny_app" / "__init__.py").write_text('GREETING = "bonjour"\n')

    assert source_hash(source) != before


def test_source_hash_changes_when_a_file_is_renamed(tmp_path):
    source = tiny_project(tmp_path / "app")
    before = source_hash(source)

    (source / "tiny_app" / "__init__.py").rename(source / "tiny_app" / "main.py")

    assert source_hash(source) != before


def test_wheel_is_built_once_and_reused_while_the_source_is_unchanged(tmp_path):
    source = tiny_project(tmp_path / "app")

    first = wheel_for(str(source))
    first_modified = first.stat().st_mtime_ns
    second = wheel_for(str(source))

    assert first.name == "tiny_app-1.0-py3-none-any.whl"
    assert first.is_relative_to(tmp_path / "state" / "wheels")
    assert second == first
    assert second.stat().st_mtime_ns == first_modified
    assert list(first.parent.glob("*.whl")) == [first]
    assert not (source / "build").exists(), "the build must not leave files in the source"


def test_given_wheel_file_is_used_as_it_is(tmp_path):
    wheel = tmp_path / "tiny_app-1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK")

    assert wheel_for(str(wheel)) == wheel


@pytest.mark.parametrize("source", ["missing-app", "missing-app/tiny_app-1.0-py3-none-any.whl"])
def test_missing_source_is_an_error_naming_app_source(tmp_path, source):
    with pytest.raises(PhoenixError, match=r"^app\.source: .*missing-app"):
        wheel_for(str(tmp_path / source))


def test_directory_without_pyproject_is_an_error_naming_app_source(tmp_path):
    (tmp_path / "app").mkdir()

    with pytest.raises(PhoenixError, match=r"^app\.source: .* is neither a \.whl nor a directory with pyproject"):
        wheel_for(str(tmp_path / "app"))


GREENLET_BUILDS = """
from gevent import monkey
monkey.patch_all()
import sys
import gevent
from phoenix.wheel import wheel_for
jobs = [gevent.spawn(wheel_for, sys.argv[1]) for _ in range(3)]
gevent.joinall(jobs, timeout=60)
print(len({str(job.value) for job in jobs if job.successful()}), sum(job.successful() for job in jobs))
"""


def test_parallel_host_preparation_builds_one_wheel_without_deadlock(tmp_path):
    # pyinfra prepares hosts as gevent greenlets in one process, all asking for the same wheel
    source = tiny_project(tmp_path / "app")
    finished = subprocess.run(
        [sys.executable, "-c", GREENLET_BUILDS, str(source)],
        env=dict(os.environ, PHOENIX_STATE_DIR=str(tmp_path / "state")),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.split() == ["1", "3"]  # one wheel, all three builds succeeded


def test_a_wheels_version_comes_from_its_file_name_not_from_the_directories_above_it():
    assert wheel_version("phoenix_links-2.0.0-py3-none-any.whl") == "2.0.0"
    assert wheel_version("/srv/my-shop/releases/my_shop-1.10.0-py3-none-any.whl") == "1.10.0"
