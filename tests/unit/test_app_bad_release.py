"""A release that cannot serve is caught with one line naming the app: a WSGI target that does not import
(the previous release is left in place), a migrate command that fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_artifact import fake_wheel

from phoenix.artifact import _write_archive
from roles.app import install_command, migrate_and_check_command, paths


def install_here(tmp_path: Path, wsgi: str) -> subprocess.CompletedProcess:
    """Runs the server's install command for app `tiny` with this app.wsgi, its /srv/tiny moved under tmp_path and
    this Python in place of Debian's, over a venv already holding a previous release (a file `previous-release`)."""
    app = {"name": "tiny", "wsgi": wsgi}
    home = tmp_path / "srv" / "tiny"
    (home / "venv").mkdir(parents=True)
    (home / "venv" / "previous-release").write_text("1.0\n")
    archive = tmp_path / "tiny_app-2.0.tar"
    _write_archive(archive, [fake_wheel(tmp_path / "wheels", "tiny_app", "2.0")])
    command = (
        install_command(app, str(archive))
        .replace(paths(app)["home"], str(home))
        .replace("python3 -m", f"{sys.executable} -m")
    )
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True)


def test_a_wsgi_target_that_does_not_import_is_named_and_the_previous_release_stays(tmp_path):
    installed = install_here(tmp_path, "tiny_app.wsgi:application")
    assert installed.returncode != 0
    assert installed.stderr.strip().splitlines() == [
        "app tiny: the WSGI target tiny_app.wsgi:application (app.wsgi) does not import from the new release"
        " (no module named 'tiny_app.wsgi'); the previous release is left in place: correct app.wsgi,"
        " or the release's dependencies in app.lock"
    ]
    venv = tmp_path / "srv" / "tiny" / "venv"
    assert (venv / "previous-release").read_text() == "1.0\n"
    assert not (tmp_path / "srv" / "tiny" / "venv.previous").exists()


def test_a_missing_package_of_the_wsgi_target_is_named_too(tmp_path):
    installed = install_here(tmp_path, "tiny_ap.wsgi:application")
    assert installed.returncode != 0
    assert "(ModuleNotFoundError: No module named 'tiny_ap')" in installed.stderr


def test_a_wsgi_target_that_imports_installs_the_new_release(tmp_path):
    installed = install_here(tmp_path, "tiny_app:application")
    assert installed.returncode == 0, installed.stderr
    venv = tmp_path / "srv" / "tiny" / "venv"
    assert not (venv / "previous-release").exists()
    version = subprocess.run([venv / "bin" / "python", "-c", "import tiny_app; print(tiny_app.VERSION)"],
                             capture_output=True, text=True)  # fmt: skip
    assert version.stdout.strip() == "2.0"


def test_the_installed_release_is_byte_compiled_for_workers_that_cannot_write_the_venv(tmp_path):
    assert install_here(tmp_path, "tiny_app:application").returncode == 0
    site_packages = next((tmp_path / "srv" / "tiny" / "venv" / "lib").glob("python3*/site-packages"))
    compiled = [path.name for path in site_packages.rglob("__pycache__/*.pyc")]
    assert any(name.startswith("tiny_app") or name.startswith("__init__") for name in compiled), compiled


def test_paste_targets_are_not_looked_up_as_modules(tmp_path):
    assert install_here(tmp_path, "paste").returncode == 0


def migrate_here(migrate: str) -> subprocess.CompletedProcess:
    """Runs the deploy's migrate step with this migrate command, not as the app's user."""
    app = {"name": "shop", "migrate_command": migrate}
    where = paths(app)
    command = migrate_and_check_command(app).replace(f"cd {where['home']} && runuser -u shop -- ", "")
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True)


def test_a_migrate_command_that_fails_ends_with_one_line_naming_the_app_and_the_command():
    failed = migrate_here("sh -c 'echo relation does not exist >&2; exit 3'")
    assert failed.returncode != 0
    assert failed.stderr.splitlines() == [
        "relation does not exist",
        "app shop: the migrate command `sh -c 'echo relation does not exist >&2; exit 3'` (app.migrate_command)"
        " failed: relation does not exist: correct the command, or the release it migrates",
    ]
    silent = migrate_here("false")
    assert silent.stderr.splitlines() == [
        "app shop: the migrate command `false` (app.migrate_command) failed: exit status 1: correct the command,"
        " or the release it migrates"
    ]
    assert migrate_here("sh -c 'echo just a warning >&2'").returncode == 0
