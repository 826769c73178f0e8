"""Deploys tell the truth about migrations: a changed migrate command migrates again; a migrate
command that exits 0 short of the schema head fails the deploy."""

from __future__ import annotations

import subprocess
from pathlib import Path

from roles.app import migration_marker, paths, schema_check_command


def test_a_changed_migrate_command_migrates_again():
    release, config = "a" * 64, "[app:main]\n"
    before = migration_marker(release, config, "python -m alembic upgrade head")
    assert migration_marker(release, config, "python -m alembic upgrade head") == before
    assert migration_marker(release, config, "python -m alembic -c production.ini upgrade head") != before


def alembic_check_result(tmp_path: Path, current: str, heads: str) -> subprocess.CompletedProcess:
    """Runs the deploy's schema check against a stand-in for the venv's python whose alembic prints these."""
    fake_python = tmp_path / "python"
    fake_python.write_text(
        f'#!/bin/sh\ncase "$5" in heads) echo "{heads}";; current) [ -n "{current}" ] && echo "{current}";; esac\n'
    )
    fake_python.chmod(0o755)
    app = {"name": "links", "migrate_command": "{python} -m alembic -c {config} upgrade head"}
    where = paths(app)
    command = schema_check_command(app).replace(
        f"cd {where['home']} && runuser -u links -- {where['python']}", str(fake_python)
    )
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True)


def test_a_migrate_command_that_exits_0_short_of_the_schema_head_is_caught(tmp_path):
    assert alembic_check_result(tmp_path, "0002_domain (head)", "0002_domain (head)").returncode == 0
    short = alembic_check_result(tmp_path, "0001_initial", "0002_domain (head)")
    assert short.returncode != 0
    assert "app links: the migrate command exited 0, but the database is at revision 0001_initial" in short.stderr
    assert alembic_check_result(tmp_path, "", "0002_domain (head)").returncode != 0  # never migrated at all


def test_django_schema_check_asks_migrate_check_with_the_users_command():
    app = {"name": "shop", "migrate_command": "{python} manage.py migrate --noinput"}
    assert schema_check_command(app).startswith(
        "cd /srv/shop && runuser -u shop -- /srv/shop/venv/bin/python manage.py migrate --check"
    )
    assert schema_check_command({"name": "shop", "migrate_command": "/usr/local/bin/migrate-it"}) == ""
