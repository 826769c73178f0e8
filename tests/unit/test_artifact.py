"""The release archive: the app's wheel and its locked dependencies, checked, built once, installable offline."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from phoenix import artifact
from phoenix.artifact import artifact_for, platform_tags, read_lock
from phoenix.errors import PhoenixError


def fake_wheel(folder: Path, name: str, version: str) -> Path:
    """Writes a minimal pure-Python wheel of `name` `version` into folder; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    members = {
        f"{name}/__init__.py": f'VERSION = "{version}"\n',
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/RECORD": "",
    }
    with zipfile.ZipFile(wheel, "w") as archive:
        for member, text in members.items():  # fixed times: the same wheel written twice is the same file
            archive.writestr(zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0)), text)
    return wheel


def tiny_app(folder: Path, version: str = "1.0") -> Path:
    """The app's wheel (a built release: building one from source would need the index for setuptools)."""
    return fake_wheel(folder, "tiny_app", version)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def index(tmp_path, monkeypatch):
    """A local package index (a find-links folder) standing in for PyPI, and an empty cache."""
    folder = tmp_path / "index"
    fake_wheel(folder, "gunicorn", "99.0")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.setenv("PHOENIX_CACHE", str(tmp_path / "cache"))
    return folder


def app_settings(tmp_path: Path, lock_text: str) -> dict:
    lock = tmp_path / "requirements.lock"
    lock.write_text(lock_text)
    return {"name": "tiny", "lock": str(lock), "build_packages": []}


def test_archive_holds_the_app_and_every_locked_wheel_pinned_by_hash_and_installs_offline(tmp_path, index):
    gunicorn = index / "gunicorn-99.0-py3-none-any.whl"
    settings = app_settings(tmp_path, f"gunicorn==99.0 \\\n    --hash=sha256:{sha256(gunicorn)}\n    # via -r in\n")
    archive = artifact_for(settings, str(tiny_app(tmp_path / "app")))

    assert archive.name.startswith("tiny_app-1.0-") and archive.suffix == ".tar"
    with tarfile.open(archive) as tar:
        names = sorted(tar.getnames())
        requirements = tar.extractfile("requirements.txt").read().decode()
        tar.extractall(tmp_path / "unpacked", filter="data")
    wheels = ["wheels/gunicorn-99.0-py3-none-any.whl", "wheels/tiny_app-1.0-py3-none-any.whl"]
    assert names == ["requirements.txt", *wheels]
    assert f"gunicorn==99.0 --hash=sha256:{sha256(gunicorn)}" in requirements.splitlines()
    assert "tiny-app==1.0 --hash=sha256:" in requirements
    # what the server runs: pip from the archive alone, hashes required, into a venv of its own
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet", "--no-index",
         "--require-hashes", "--find-links", str(tmp_path / "unpacked" / "wheels"),
         "-r", str(tmp_path / "unpacked" / "requirements.txt")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    imported = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import gunicorn, tiny_app; print(gunicorn.VERSION, tiny_app.VERSION)"],
        capture_output=True,
        text=True,
    )
    assert imported.stdout.split() == ["99.0", "1.0"]


def test_unchanged_lock_and_app_reuse_the_archive_without_downloading(tmp_path, index, monkeypatch):
    gunicorn = index / "gunicorn-99.0-py3-none-any.whl"
    settings = app_settings(tmp_path, f"gunicorn==99.0 --hash=sha256:{sha256(gunicorn)}\n")
    first = artifact_for(settings, str(tiny_app(tmp_path / "app")))

    def no_download(*arguments, **keywords):
        raise AssertionError("downloaded again")

    monkeypatch.setattr(artifact, "_download", no_download)
    assert artifact_for(settings, str(tiny_app(tmp_path / "app"))) == first
    # a new app wheel, the same dependencies: a new archive, still no download
    second = artifact_for(settings, str(tiny_app(tmp_path / "app", "1.1")))
    assert second != first and second.is_file()


def test_lock_without_hashes_is_refused_before_any_download(tmp_path, index, monkeypatch):
    settings = app_settings(tmp_path, "gunicorn==99.0\n")
    monkeypatch.setattr(artifact, "_download", lambda *arguments: pytest.fail("downloaded"))
    with pytest.raises(PhoenixError) as refused:
        artifact_for(settings, str(tiny_app(tmp_path / "app")))
    message = str(refused.value)
    assert "app tiny" in message and "gunicorn has no --hash" in message and "--generate-hashes" in message


def test_unpinned_requirement_and_missing_gunicorn_are_refused(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("flask>=3 --hash=sha256:00\n")
    with pytest.raises(PhoenixError, match="flask>=3 is not pinned with =="):
        read_lock("tiny", lock)
    lock.write_text("flask==3.0 --hash=sha256:00\n")
    with pytest.raises(PhoenixError, match="has no gunicorn, which serves the app"):
        read_lock("tiny", lock)
    with pytest.raises(PhoenixError, match="lock .*missing.lock not found"):
        read_lock("tiny", tmp_path / "missing.lock")


def test_hash_mismatch_names_the_package(tmp_path, index):
    settings = app_settings(tmp_path, "gunicorn==99.0 --hash=sha256:" + "0" * 64 + "\n")
    with pytest.raises(PhoenixError) as refused:
        artifact_for(settings, str(tiny_app(tmp_path / "app")))
    message = str(refused.value)
    assert message.startswith("app tiny: gunicorn as downloaded does not match its hash in"), message
    assert "\n" not in message


def test_dependency_with_no_wheel_and_no_sdist_names_the_package_and_what_to_do(tmp_path, index):
    gunicorn = index / "gunicorn-99.0-py3-none-any.whl"
    settings = app_settings(
        tmp_path,
        f"gunicorn==99.0 --hash=sha256:{sha256(gunicorn)}\nnowhere-to-be-found==1.0 --hash=sha256:{'1' * 64}\n",
    )
    with pytest.raises(PhoenixError) as refused:
        artifact_for(settings, str(tiny_app(tmp_path / "app")))
    message = str(refused.value)
    assert message.startswith("app tiny: nowhere-to-be-found==1.0 has neither a wheel for CPython 3.11"), message
    assert "pin another version of it in" in message


def test_platform_tags_run_from_debian_12s_glibc_down_to_manylinux2014():
    tags = platform_tags("x86_64")
    assert tags[0] == "manylinux_2_36_x86_64"
    assert "manylinux_2_17_x86_64" in tags and tags[-1] == "manylinux2014_x86_64"
    assert not any(tag.startswith("linux_") for tag in tags)  # a wheel built for another libc never ships


def test_an_app_published_on_pypi_comes_from_its_lock_like_its_dependencies(tmp_path, index):
    gunicorn = index / "gunicorn-99.0-py3-none-any.whl"
    published = fake_wheel(index, "tiny_app", "2.0")
    lock = f"gunicorn==99.0 --hash=sha256:{sha256(gunicorn)}\ntiny-app==2.0 --hash=sha256:{sha256(published)}\n"
    settings = app_settings(tmp_path, lock)

    archive = artifact_for(settings, "tiny-app[extra]==2.0")

    assert archive.name.startswith("tiny_app-2.0-")
    with tarfile.open(archive) as tar:
        assert f"tiny-app==2.0 --hash=sha256:{sha256(published)}" in tar.extractfile("requirements.txt").read().decode()
    with pytest.raises(PhoenixError, match=r"app tiny: app.source is tiny-app==3.0, but .* pins tiny-app 2.0"):
        artifact_for(settings, "tiny-app==3.0")


def test_index_options_pass_and_editables_are_refused(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("--index-url https://pypi.org/simple\n\ngunicorn==99.0 --hash=sha256:00\n")
    assert [requirement.name for requirement in read_lock("tiny", lock)] == ["gunicorn"]
    lock.write_text("-e ./src\ngunicorn==99.0 --hash=sha256:00\n")
    with pytest.raises(PhoenixError, match="-e lines are not supported"):
        read_lock("tiny", lock)
