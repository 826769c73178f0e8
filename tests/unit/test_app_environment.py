"""A Django app's settings and secrets reach it through an environment file (app.environment), its static
files are collected into app.static_dir (app.static_command), each once per release and settings."""

from __future__ import annotations

import subprocess
from types import SimpleNamespace

import pytest
from pyinfra.api.util import get_template

import roles.app
from phoenix.errors import PhoenixError
from phoenix.inventory_checks import static_errors
from roles.app import (
    migrate_command,
    migration_marker,
    paths,
    render_environment,
    schema_check_command,
    settings_text,
    static_command,
    supervised_command,
)

SECRETS = SimpleNamespace(
    database_password=lambda user: "p@ss word/%",
    get=lambda key: {"session_secret": 'sec$ret "with" \\back`slash` %s'}[key],
)


def wiki(**settings) -> dict:
    app = {
        "name": "wiki",
        "wsgi": "wikisite.wsgi:application",
        "port": 6543,
        "workers": 3,
        "config_template": "",
        "environment": {
            "DJANGO_SETTINGS_MODULE": "wikisite.settings",
            "DJANGO_SECRET_KEY": "{{ session_secret }}",
            "DATABASE_URL": "{{ database_url }}",
            "STATIC_ROOT": "{{ static_dir }}",
        },
        "migrate_command": "{python} -m django migrate --noinput",
        "static_dir": "/srv/wiki/static",
        "static_command": "{python} -m django collectstatic --noinput",
        "data_dirs": [],
        "max_upload_bytes": 1024,
        "database": {"name": "wiki", "user": "wiki", "host": "localhost"},
    }
    return {**app, **settings}


def test_the_environment_file_has_one_quoted_line_per_variable_rendered_with_the_secrets():
    text = render_environment(wiki(), "localhost", SECRETS)
    assert text.splitlines() == [
        "DATABASE_URL='postgresql://wiki:p%40ss%20word%2F%25@127.0.0.1:5432/wiki'",
        "DJANGO_SECRET_KEY='sec$ret \"with\" \\back`slash` %s'",
        "DJANGO_SETTINGS_MODULE='wikisite.settings'",
        "STATIC_ROOT='/srv/wiki/static'",
    ]
    assert render_environment(wiki(environment={}), "localhost", SECRETS) == ""


def test_the_app_commands_see_each_value_exactly_as_rendered(tmp_path, monkeypatch):
    environment_file = tmp_path / "environment"
    environment_file.write_text(render_environment(wiki(), "localhost", SECRETS))
    monkeypatch.setattr(roles.app, "paths", lambda app: {"environment": str(environment_file)})
    load = roles.app._load_environment(wiki())
    printed = subprocess.run(
        ["sh", "-c", f'{load}printf %s "$DJANGO_SECRET_KEY"'], capture_output=True, text=True, check=True
    )
    assert printed.stdout == SECRETS.get("session_secret")


def test_a_value_an_environment_file_cannot_carry_is_refused_naming_the_variable():
    quoted = wiki(environment={"GREETING": "it's {{ session_secret }}"})
    with pytest.raises(PhoenixError, match=r"app wiki: app.environment.GREETING holds a single quote"):
        render_environment(quoted, "localhost", SECRETS)
    with pytest.raises(PhoenixError, match=r"app wiki: app.environment.BROKEN: .*undefined"):
        render_environment(wiki(environment={"BROKEN": "{{ no_such_thing }}"}), "localhost", SECRETS)


def test_migrate_and_static_commands_run_as_the_app_user_with_its_environment():
    load = "set -a && . /etc/wiki/environment && set +a && "
    assert migrate_command(wiki()) == (
        f"cd /srv/wiki && {load}runuser -u wiki -- /srv/wiki/venv/bin/python -m django migrate --noinput"
    )
    assert static_command(wiki()).startswith(
        f"cd /srv/wiki && {load}runuser -u wiki -- /srv/wiki/venv/bin/python -m django collectstatic --noinput || "
    )
    assert "app wiki: the static command `{python} -m django collectstatic --noinput` (app.static_command) failed" in (
        static_command(wiki())
    )
    assert static_command(wiki(static_command="")) == ""
    assert migrate_command(wiki(environment={})).startswith("cd /srv/wiki && runuser -u wiki -- ")


def test_python_m_django_migrate_is_checked_with_migrate_check():
    assert schema_check_command(wiki()).startswith(
        "cd /srv/wiki && set -a && . /etc/wiki/environment && set +a && runuser -u wiki --"
        " /srv/wiki/venv/bin/python -m django migrate --check >/dev/null || "
    )


def test_supervisor_starts_gunicorn_from_a_shell_that_loads_the_environment_file():
    assert supervised_command(wiki()) == (
        "/bin/sh -c 'set -a && . /etc/wiki/environment && set +a && exec /srv/wiki/venv/bin/python -m gunicorn"
        " --bind 127.0.0.1:6543 --workers 3 wikisite.wsgi:application'"
    )
    assert supervised_command(wiki(environment={})).startswith("/srv/wiki/venv/bin/python -m gunicorn")


def test_the_systemd_unit_reads_the_environment_file():
    app = wiki()
    unit = get_template("templates/app/etc/systemd/system/app.service.j2").render(
        app=app, command="gunicorn", environment={}, environment_file=paths(app)["environment"], home="/srv/wiki"
    )
    assert "EnvironmentFile=/etc/wiki/environment\n" in unit
    assert "Environment=" not in unit.replace("EnvironmentFile=", "")


def test_a_changed_environment_migrates_and_collects_again_and_no_environment_keeps_the_old_marker():
    release, config = "a" * 64, "[app:main]\n"
    assert settings_text(config, "") == config  # markers of apps without app.environment stay as they were
    before = migration_marker(release, settings_text("", "STATIC_ROOT='/srv/wiki/static'\n"), static_command(wiki()))
    after = migration_marker(release, settings_text("", "STATIC_ROOT='/srv/wiki/assets'\n"), static_command(wiki()))
    assert before != after


def test_a_static_command_without_a_static_dir_is_refused_naming_the_key():
    hosts = {"wiki1": {"roles": ["app"], "app": wiki(static_dir="")}, "db1": {"roles": ["postgres"]}}
    assert static_errors("apps.yml", hosts) == [
        "apps.yml: at 'hosts.wiki1.app.static_command': it collects into app.static_dir, which is not set:"
        " set app.static_dir (nginx serves it at /static/), the directory the app's settings collect into"
    ]
    assert static_errors("apps.yml", {"wiki1": {"roles": ["app"], "app": wiki()}}) == []
