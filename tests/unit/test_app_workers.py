"""The app's declared workers (app.processes, app.periodic): run like the app under its process manager, restarted
with it, found again and removed once dropped; bad declarations refused before any host is touched."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from pyinfra.api.util import get_template

from phoenix.errors import PhoenixError
from phoenix.inventory import load_environment
from roles import workers
from roles.app import control_command, run_as, stop_command
from roles.upgrade_plan import timer_units
from roles.workers import (
    installed_names,
    installed_names_command,
    marked_names_command,
    periodic_marker,
    process_marker,
    supervised_worker_command,
    worker_command,
)

REPOSITORY = Path(__file__).resolve().parents[2]
WORKER = {"name": "worker", "command": "{python} -m shop.worker --config {config} --batch 10%"}
PURGE = {"name": "purge", "command": "{python} -m shop.purge", "schedule": "*-*-* 03:30:00"}


def shop_app(**settings) -> dict:
    app = {
        "name": "shop",
        "config_template": "templates/app/production.ini.j2",
        "environment": {"SHOP_MODE": "live"},
        "process_manager": "systemd",
        "processes": [WORKER],
        "periodic": [PURGE],
    }
    return {**app, **settings}


def render(template: str, **variables) -> str:
    return get_template(str(REPOSITORY / "templates" / template)).render(variables)


def unit_variables(app: dict, entry: dict, marker: str) -> dict:
    how = run_as(app)
    return {
        "app": app,
        "entry": entry,
        "marker": marker,
        "command": worker_command(entry, how),
        "home": how["home"],
        "environment": how["environment"],
        "environment_file": how["environment_file"],
        "schedule": entry.get("schedule", ""),
    }


def test_a_process_runs_as_the_app_user_in_its_venv_with_its_config_and_environment():
    assert worker_command(WORKER, run_as(shop_app())) == (
        "/srv/shop/venv/bin/python -m shop.worker --config /etc/shop/production.ini --batch 10%%"
    )
    unit = render("app/etc/systemd/system/process.service.j2", **unit_variables(shop_app(), WORKER, "m"))
    for line in (
        "PartOf=shop.service",  # `systemctl restart shop`, what a deploy runs, restarts the worker too
        "User=shop",
        "WorkingDirectory=/srv/shop",
        "EnvironmentFile=/etc/shop/environment",
        "Environment=PHOENIX_APP_CONFIG=/etc/shop/production.ini",
        "ExecStart=/srv/shop/venv/bin/python -m shop.worker --config /etc/shop/production.ini --batch 10%%",
        "Restart=always",
        "WantedBy=multi-user.target shop.service",  # `systemctl start shop` starts it too
    ):
        assert f"\n{line}\n" in unit, line
    assert unit.splitlines()[1] == "# m"


def test_a_supervised_process_loads_the_environment_file_then_becomes_the_command(tmp_path):
    app = shop_app(process_manager="supervisor")
    program = render(
        "supervisor/etc/supervisor/conf.d/program.conf.j2",
        program="shop-worker",
        command=supervised_worker_command(WORKER, run_as(app)),
        environment=run_as(app)["environment"],
        directory="/srv/shop",
        program_user="shop",
        marker=process_marker(app),
    )
    assert "\nuser=shop\n" in program and "\ndirectory=/srv/shop\n" in program
    assert program.splitlines()[1] == "; Phoenix: process of app shop"
    assert (
        "command=/bin/sh -c 'set -a && . /etc/shop/environment && set +a && exec /srv/shop/venv/bin/python" in program
    )
    # without app.environment, supervisor runs the command itself
    assert supervised_worker_command(WORKER, run_as(shop_app(environment={}))).startswith("/srv/shop/venv/bin/python")


def test_the_apps_own_program_file_is_unchanged_by_the_marker_and_user_options():
    program = render(
        "supervisor/etc/supervisor/conf.d/program.conf.j2",
        program="links",
        command="gunicorn",
        environment={},
        directory="/srv/links",
        program_user="links",
        marker="",
    )
    assert program.splitlines()[:3] == [
        "; Managed by Phoenix (pyinfra); local changes are overwritten.",
        "[program:links]",
        "command=gunicorn",
    ]


def test_a_periodic_command_is_a_oneshot_service_run_as_the_app_user_on_its_schedule():
    variables = unit_variables(shop_app(), PURGE, periodic_marker(shop_app()))
    service = render("app/etc/systemd/system/periodic.service.j2", **variables)
    timer = render("app/etc/systemd/system/periodic.timer.j2", **variables)
    assert "\nType=oneshot\n" in service and "\nUser=shop\n" in service
    assert "\nExecStart=/srv/shop/venv/bin/python -m shop.purge\n" in service
    assert "\nOnCalendar=*-*-* 03:30:00\n" in timer and "\nPersistent=true\n" in timer
    assert service.splitlines()[1] == timer.splitlines()[1] == "# Phoenix: periodic command of app shop"


def test_only_the_files_written_for_this_app_are_found_again(tmp_path):
    app = shop_app()
    (tmp_path / "shop-worker.service").write_text(f"# Managed\n# {process_marker(app)}\n[Unit]\n")
    (tmp_path / "shop-mailer.service").write_text(f"# Managed\n# {process_marker(app)}\n[Unit]\n")
    (tmp_path / "shop-purge.service").write_text(f"# Managed\n# {periodic_marker(app)}\n[Unit]\n")
    (tmp_path / "shop-by-hand.service").write_text("[Unit]\nDescription=an admin's own unit\n")
    (tmp_path / "shopping-worker.service").write_text(f"# Managed\n# {process_marker(shop_app(name='shopping'))}\n")
    command = marked_names_command(app, f"{tmp_path}/shop-*.service", process_marker(app))
    found = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    assert sorted(found.split()) == ["mailer", "worker"]
    nothing = marked_names_command(app, f"{tmp_path}/none-*.conf", process_marker(app))
    assert subprocess.run(["sh", "-c", nothing], capture_output=True, text=True, check=True).stdout == ""


def test_one_command_finds_the_app_s_services_and_timers_each_under_its_kind(tmp_path, monkeypatch):
    app = shop_app()
    monkeypatch.setattr(workers, "UNIT_DIRECTORY", str(tmp_path))
    (tmp_path / "shop-worker.service").write_text(f"# Managed\n# {process_marker(app)}\n[Unit]\n")
    (tmp_path / "shop-purge.service").write_text(f"# Managed\n# {periodic_marker(app)}\n[Unit]\n")
    (tmp_path / "shop-purge.timer").write_text(f"# Managed\n# {periodic_marker(app)}\n[Timer]\n")
    (tmp_path / "shop-by-hand.timer").write_text("[Timer]\nOnCalendar=daily\n")
    command = installed_names_command(app)
    output = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    found = installed_names(output)
    assert found["service"] == {"worker"} and found["timer"] == {"purge"}


WORKERS_INVENTORY = """\
    app:
      database:
        host: db1
      processes:
        - {name: worker, command: "{python} -m shop.worker"}
      periodic:
        - {name: worker, command: "{python} -m shop.purge", schedule: daily}
        - {name: report, command: "{python} -m shop.report {day}", schedule: daily}
"""


def test_a_name_taken_twice_or_an_unknown_placeholder_is_refused_naming_the_key(write_inventory, shop_inventory_text):
    path = write_inventory(
        shop_inventory_text.replace("    app:\n      database:\n        host: db1\n", WORKERS_INVENTORY)
    )
    with pytest.raises(PhoenixError) as caught:
        load_environment(path)
    assert str(caught.value).splitlines() == [
        f"{path}: at 'hosts.web1.app.periodic.0.name': 'worker' is taken by app.processes.0: each process and"
        " periodic command needs a name of its own (it names the unit)",
        f"{path}: at 'hosts.web1.app.periodic.1.command': '{{python}} -m shop.report {{day}}' has a placeholder"
        " other than {python} and {config} (KeyError: 'day'); write a literal brace as {{ or }}",
    ]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ('{name: "Worker 1", command: x}', "at 'hosts.web1.app.processes.0.name': 'Worker 1' does not match"),
        ("{name: worker}", "at 'hosts.web1.app.processes.0': 'command' is a required property"),
    ],
)
def test_a_process_name_unsafe_for_a_unit_or_a_missing_command_is_refused(
    write_inventory, shop_inventory_text, entry, expected
):
    declared = f"    app:\n      processes: [{entry}]\n      database:\n        host: db1\n"
    path = write_inventory(shop_inventory_text.replace("    app:\n      database:\n        host: db1\n", declared))
    with pytest.raises(PhoenixError, match=re.escape(expected)):
        load_environment(path)


def test_a_periodic_schedule_that_is_not_oncalendar_is_refused(write_inventory, shop_inventory_text):
    periodic = "[{name: purge, command: x, schedule: 'every day'}]"
    declared = f"    app:\n      periodic: {periodic}\n      database:\n        host: db1\n"
    path = write_inventory(shop_inventory_text.replace("    app:\n      database:\n        host: db1\n", declared))
    with pytest.raises(
        PhoenixError, match=r"at 'hosts\.web1\.app\.periodic\.0\.schedule': 'every day' is not a systemd"
    ):
        load_environment(path)


def test_an_upgrade_stops_and_restarts_the_processes_with_the_app():
    supervised = shop_app(process_manager="supervisor")
    assert stop_command(supervised) == (
        "supervisorctl stop shop shop-worker; ! supervisorctl status shop shop-worker | grep -q RUNNING"
    )
    assert control_command(supervised, "restart") == "supervisorctl restart shop shop-worker"
    # PartOf= stops the worker with the app, but restarts it only if it runs: upgrade.py starts it by name
    assert stop_command(shop_app()) == "systemctl stop shop"
    assert control_command(shop_app(), "restart") == "systemctl restart shop shop-worker"


def test_an_upgrade_pauses_the_periodic_commands_with_the_backups():
    data = SimpleNamespace(roles=["app"], app=shop_app(), backup_jobs=[{"name": "files", "kind": "files"}])
    assert timer_units(data) == ["phoenix-backup-files.timer", "shop-purge.timer"]
    assert timer_units(SimpleNamespace(roles=["postgres"], app={}, backup_jobs=[])) == []
