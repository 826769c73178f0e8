"""The app's release artifact: its wheel and every locked dependency, as one archive for the servers.

Servers cannot reach the Python package index. On the control machine, the app's hash-pinned
lock is turned into a wheelhouse for the servers' platform (Debian 12, CPython 3.11): wheels
are downloaded by pip, which checks the lock's hashes; a package published only as an sdist is
built into a wheel in a throwaway container of the sandbox base image (the servers' Debian and
Python), so its compiled code matches theirs. The app's wheel, the dependencies' wheels and a
requirements file naming each with its SHA-256 go into one tar archive, named by the app's
version and a hash of what went in: the same lock and the same app give the same archive,
built once and shipped to every host as one upload. The server installs it with
`pip install --no-index --require-hashes` into a fresh, isolated venv.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from phoenix import git_source
from phoenix.errors import PhoenixError
from phoenix.progress import say
from phoenix.wheel import file_sha256, lock_cooperatively, wheel_for

PYTHON_VERSION = "3.11"  # Debian 12's CPython
OLDEST_GLIBC_MINOR, NEWEST_GLIBC_MINOR = 17, 36  # manylinux_2_17 (manylinux2014) .. Debian 12's glibc 2.36
BUILDER_PACKAGES = ["build-essential", "python3-dev", "python3-pip", "python3-setuptools", "python3-wheel"]
SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tgz")
REQUIREMENTS = "requirements.txt"  # inside the archive: every wheel it holds, with its SHA-256


@dataclass(frozen=True)
class LockedRequirement:
    name: str
    version: str


def cache_root() -> Path:
    """Where built wheelhouses and archives are kept: PHOENIX_CACHE, or ~/.cache/phoenix.

    Outside the clone, so that CI's fresh clone on the same machine reuses what earlier runs built.
    """
    if os.environ.get("PHOENIX_CACHE"):
        return Path(os.environ["PHOENIX_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "phoenix"


def platform_tags(machine: str | None = None) -> list[str]:
    """Given a machine architecture (default: this one's), returns the manylinux tags Debian 12 takes, newest first."""
    arch = machine or platform.machine()
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(NEWEST_GLIBC_MINOR, OLDEST_GLIBC_MINOR - 1, -1)]
    return [*tags, f"manylinux2014_{arch}"]


def read_lock(app_name: str, lock: Path) -> list[LockedRequirement]:
    """Given a hash-pinned requirements file, returns its requirements.

    Raises PhoenixError naming the app, the lock and the package when the file is missing, or a
    requirement is not pinned with == or has no --hash.
    """
    if not lock.is_file():
        raise PhoenixError(f"app {app_name}: lock {lock} not found: compile one with --generate-hashes (docs/apps.md)")
    logical = re.sub(r"\\\n", " ", lock.read_text())
    requirements = []
    for line in logical.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("--"):
            continue  # --index-url and the like, which pip-compile may write: pip download honours them
        if line.startswith("-"):
            raise PhoenixError(
                f"app {app_name}: {lock}: {line.split()[0]} lines are not supported: the lock lists pinned"
                " requirements with hashes only (an editable or included file cannot be hash-checked)"
            )
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;]+)", line)
        if not match:
            raise PhoenixError(
                f"app {app_name}: {lock}: {line.split()[0]} is not pinned with ==: compile the lock with"
                " `uv pip compile --generate-hashes` (docs/apps.md)"
            )
        if "--hash=" not in line:
            raise PhoenixError(
                f"app {app_name}: {lock}: {match.group(1)} has no --hash: compile the lock with --generate-hashes"
                " (docs/apps.md)"
            )
        requirements.append(LockedRequirement(name=match.group(1), version=match.group(3)))
    if not requirements:
        raise PhoenixError(f"app {app_name}: lock {lock} lists no requirements")
    if "gunicorn" not in {normalized(requirement.name) for requirement in requirements}:
        raise PhoenixError(
            f"app {app_name}: {lock} has no gunicorn, which serves the app: add gunicorn to the requirements"
            " you compile the lock from (docs/apps.md)"
        )
    return requirements


def normalized(name: str) -> str:
    """Returns a distribution name normalized as PEP 503 says (lower case, runs of -_. as one dash)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pypi_release(source: str) -> tuple[str, str] | None:
    """Given app.source, returns (name, version) when it is a PyPI requirement `name[extras]==version`, else None."""
    match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([0-9A-Za-z.+!_-]+)", source.strip())
    return (match.group(1), match.group(3)) if match else None


def artifact_for(app: dict, source: str) -> Path:
    """Given the app settings and a release source, returns its archive, built once.

    The source is a directory, a .whl or git+URL@ref (the app's wheel goes in beside the lock's), or a PyPI
    requirement `name[extras]==version`, which the lock must pin with its hashes like any other.
    Raises PhoenixError with one line naming the app, the package and what to do when the lock,
    a download or a build fails; nothing on any server has changed then.
    """
    lock = Path(app["lock"])
    locked = read_lock(app["name"], lock)
    release = pypi_release(source)
    if release:
        app_wheels, (distribution, version) = [], release
        pinned = {normalized(requirement.name): requirement.version for requirement in locked}
        if pinned.get(normalized(distribution)) != version:
            raise PhoenixError(
                f"app {app['name']}: app.source is {source}, but {lock} pins {distribution}"
                f" {pinned.get(normalized(distribution), 'not at all')}: compile the lock from {source}"
            )
        app_digest = source
    else:
        wheel = wheel_for(
            str(git_source.checkout(source, cache_root())) if git_source.is_git_source(source) else source
        )
        app_wheels, (distribution, version) = [wheel], wheel.name.split("-")[:2]
        app_digest = file_sha256(wheel)
    build_packages = sorted(app.get("build_packages") or [])
    tags = platform_tags()
    dependencies_key = _digest(lock.read_bytes(), "\0".join(tags).encode(), "\0".join(build_packages).encode())
    key = _digest(dependencies_key.encode(), app_digest.encode())[:16]
    archive = cache_root() / "artifacts" / f"{re.sub(r'[-.]+', '_', distribution)}-{version}-{key}.tar"
    if archive.is_file():
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    with open(cache_root() / "artifacts" / ".lock", "w") as lock_file:
        lock_cooperatively(lock_file)
        if archive.is_file():
            return archive
        wheels = wheelhouse(app, lock, tags, build_packages, dependencies_key)
        _write_archive(archive, [*app_wheels, *wheels])
    return archive


def wheelhouse(app: dict, lock: Path, tags: list[str], build_packages: list[str], key: str) -> list[Path]:
    """Returns the wheels of every locked dependency for the servers' platform, downloading and building once."""
    directory = cache_root() / "wheelhouse" / key
    complete = directory / ".complete"
    if not complete.is_file():
        if directory.exists():
            shutil.rmtree(directory)
        downloads = directory / "downloads"
        downloads.mkdir(parents=True)
        say(f"downloading the locked dependencies of {app['name']} for CPython {PYTHON_VERSION} on {tags[0]}")
        _download(app["name"], lock, tags, downloads)
        for sdist in sorted(path for path in downloads.iterdir() if path.name.endswith(SDIST_SUFFIXES)):
            built = built_wheel(app["name"], sdist, build_packages)
            shutil.copy2(built, downloads / built.name)
            sdist.unlink()
        complete.write_text("")
    return sorted((directory / "downloads").glob("*.whl"))


def download_command(lock: Path, tags: list[str], destination: Path) -> list[str]:
    """The pip command that downloads the lock's files for the servers, checking every hash.

    --no-deps: the lock is complete, and without it pip would refuse sdists for another platform.
    """
    platforms = [argument for tag in tags for argument in ("--platform", tag)]
    return [
        sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--quiet",
        "-r", str(lock), "-d", str(destination), *platforms, "--python-version", PYTHON_VERSION,
        "--implementation", "cp", "--abi", f"cp{PYTHON_VERSION.replace('.', '')}", "--abi", "abi3", "--abi", "none",
    ]  # fmt: skip


def _download(app_name: str, lock: Path, tags: list[str], destination: Path) -> None:
    result = subprocess.run(download_command(lock, tags, destination), capture_output=True, text=True)
    if result.returncode != 0:
        raise PhoenixError(download_failure(app_name, lock, result.stderr))


def download_failure(app_name: str, lock: Path, stderr: str) -> str:
    """Given pip download's error output, returns one line saying which package failed and what to do."""
    mismatch = re.search(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)==\S+ from ", stderr, re.MULTILINE)
    if "DO NOT MATCH THE HASHES" in stderr:
        package = mismatch.group(1) if mismatch else "a package"
        return (
            f"app {app_name}: {package} as downloaded does not match its hash in {lock}: regenerate the lock"
            " (docs/apps.md) if the release was re-published, otherwise find out who changed the file"
        )
    missing = re.search(r"satisfies the requirement ([^\s(]+)", stderr)
    if missing:
        return (
            f"app {app_name}: {missing.group(1)} has neither a wheel for CPython {PYTHON_VERSION} on"
            f" manylinux {platform.machine()} nor an sdist to build one: pin another version of it in {lock}"
        )
    tail = " | ".join(line.strip() for line in stderr.strip().splitlines()[-3:] if not line.startswith("WARNING"))
    return f"app {app_name}: downloading the dependencies in {lock} failed: {tail}"


def built_wheel(app_name: str, sdist: Path, build_packages: list[str]) -> Path:
    """Given an sdist (hash-checked by pip), returns its wheel built in a throwaway base-image container, cached."""
    from phoenix.image import image_exists, image_name

    image = image_name()
    key = _digest(file_sha256(sdist).encode(), image.encode(), "\0".join(build_packages).encode())[:16]
    output = cache_root() / "built" / key
    built = sorted(output.glob("*.whl"))
    if built:
        return built[0]
    if not image_exists(image):
        raise PhoenixError(
            f"app {app_name}: {sdist.name} is published as source only and is built in the base image {image},"
            " which is missing: run `./run up` (or `phoenix sandbox up`) once"
        )
    say(f"building {sdist.name} into a wheel in a {image} container (Debian packages: {', '.join(build_packages)})")
    with tempfile.TemporaryDirectory(prefix="phoenix-build-") as scratch:
        shutil.copy2(sdist, Path(scratch) / sdist.name)
        result = subprocess.run(builder_command(image, Path(scratch), sdist.name, build_packages), capture_output=True)
        wheels = sorted((Path(scratch) / "out").glob("*.whl"))
        if result.returncode != 0 or not wheels:
            tail = " | ".join(result.stdout.decode(errors="replace").strip().splitlines()[-3:])
            raise PhoenixError(
                f"app {app_name}: building {sdist.name} from source failed ({tail}): add the Debian packages"
                " it needs to build to app.build_packages, or pin a release of it that has a manylinux wheel"
            )
        output.mkdir(parents=True, exist_ok=True)
        shutil.copy2(wheels[0], output / wheels[0].name)
    return output / wheels[0].name


def builder_command(image: str, directory: Path, sdist_name: str, build_packages: list[str]) -> list[str]:
    """The docker command building one sdist into `directory`/out, offline but for Debian's archive."""
    packages = " ".join([*BUILDER_PACKAGES, *build_packages])
    script = (
        "export DEBIAN_FRONTEND=noninteractive; set -e; apt-get update -qq"
        f" && apt-get install -y -qq --no-install-recommends {packages} >/dev/null"
        " && python3 -m pip wheel --quiet --no-index --no-deps --no-build-isolation"
        f" --wheel-dir /build/out /build/{sdist_name}"
        " && chown -R $BUILD_OWNER /build/out"
    )
    owner = f"{os.getuid()}:{os.getgid()}"
    return [
        "docker", "run", "--rm", "-e", f"BUILD_OWNER={owner}", "-v", f"{directory}:/build", image,
        "bash", "-c", script,
    ]  # fmt: skip


def requirements_text(wheels: list[Path]) -> str:
    """Given wheel files, returns a requirements file pinning each by name, version and SHA-256."""
    lines = []
    for wheel in sorted(wheels, key=lambda path: normalized(path.name.split("-")[0])):
        name, version = wheel.name.split("-")[:2]
        lines.append(f"{normalized(name)}=={version} --hash=sha256:{file_sha256(wheel)}")
    return "\n".join(lines) + "\n"


def _write_archive(archive: Path, wheels: list[Path]) -> None:
    """Writes the archive reproducibly (sorted, no times or owners), atomically."""
    partial = archive.with_suffix(".partial")
    with tarfile.open(partial, "w") as tar:
        _add(tar, REQUIREMENTS, requirements_text(wheels).encode())
        for wheel in sorted(wheels, key=lambda path: path.name):
            _add(tar, f"wheels/{wheel.name}", wheel.read_bytes())
    partial.rename(archive)


def _add(tar: tarfile.TarFile, name: str, content: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(content), 0o644, 0
    tar.addfile(info, io.BytesIO(content))


def _digest(*parts: bytes) -> str:
    return hashlib.sha256(b"\0".join(parts)).hexdigest()
