"""The `phoenix` command: sandboxes and dev copies, secrets, inventory checks, backup status, drills, the dashboard."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from phoenix import sandbox, sandbox_state
from phoenix.arguments import StrictParser
from phoenix.errors import PhoenixError


def _host_names(inventory: str) -> list[str]:
    from phoenix.inventory import load_environment

    return list(load_environment(inventory).hosts)


DEFAULT_SANDBOX_INVENTORY = "inventories/sandbox.yml"


def sandbox_hosts_to_start(name: str, hosts: str | None, inventory: str | None) -> list[str]:
    """Given `phoenix sandbox up`'s arguments, returns the hosts to start: --hosts, else --inventory's hosts,
    else the hosts the sandbox already has (it may hold another inventory's), else the sandbox inventory's."""
    if hosts:
        return hosts.split(",")
    if inventory:
        return _host_names(inventory)
    if sandbox_state.state_file(name).exists():
        recorded = list(sandbox_state.read(name)["hosts"])
        if recorded:
            return recorded
    return _host_names(DEFAULT_SANDBOX_INVENTORY)


def run_sandbox(arguments: argparse.Namespace) -> int:
    if arguments.action == "up":
        hosts = sandbox_hosts_to_start(arguments.name, arguments.hosts, arguments.inventory)
        state = sandbox.up(arguments.name, hosts)
        for host, info in state["hosts"].items():
            print(f"{host}\t{sandbox_state.pyinfra_host_name(info['container'])}\t{info['address']}")
        print(f"pyinfra inventory: {sandbox_state.inventory_file(arguments.name)}")
    elif arguments.action == "down":
        removed = sandbox.down(arguments.name)
        print(f"removed {removed} container(s) of sandbox {arguments.name}")
    else:
        for name, hosts in sorted(sandbox.list_sandboxes().items()):
            print(f"{name}: {', '.join(hosts)}")
    return 0


def run_check(arguments: argparse.Namespace) -> int:
    from phoenix.inventory import check_app_sources, load_environment

    environment = load_environment(arguments.inventory)
    check_app_sources(environment)
    print(f"{environment.path}: valid, hosts: {', '.join(environment.hosts)}")
    return 0


def run_secrets(arguments: argparse.Namespace) -> int:
    from phoenix import secrets_cli

    return secrets_cli.run(arguments)


def run_status(arguments: argparse.Namespace) -> int:
    from phoenix import status

    return status.run(arguments.inventory, arguments.json)


def run_drill(arguments: argparse.Namespace) -> int:
    from phoenix import drill, drill_report

    if arguments.history:
        environment = None
        if arguments.inventory:
            from phoenix.inventory import load_environment

            environment = load_environment(arguments.inventory)
            directory = drill_report.report_dir(environment, arguments.report_dir)
        else:
            directory = Path(arguments.report_dir or os.environ.get("PHOENIX_DRILL_DIR") or "drills")
        print(drill_report.render_history(drill_report.history(directory, environment.name if environment else None)))
        return 0
    if not arguments.inventory:
        raise PhoenixError("drill: name the inventory, e.g. `phoenix drill inventories/prod.py`")
    return drill.run(arguments.inventory, arguments.host, arguments.keep, arguments.report_dir, arguments.dumps)


def run_report(arguments: argparse.Namespace) -> int:
    from phoenix import dashboard

    return dashboard.run(arguments.inventory, arguments.output)


def run_runbook(arguments: argparse.Namespace) -> int:
    from phoenix import runbook

    return runbook.run(arguments.inventory, arguments.html)


def run_up(arguments: argparse.Namespace) -> int:
    from phoenix import dev

    return dev.up(arguments.environment, arguments.with_data, arguments.source, arguments.sandbox)


def run_down(arguments: argparse.Namespace) -> int:
    from phoenix import dev

    return dev.down(arguments.environment, arguments.sandbox)


def run_pins(arguments: argparse.Namespace) -> int:
    from phoenix import pins

    return pins.list_pins(arguments.inventory)


def run_pin(arguments: argparse.Namespace) -> int:
    from phoenix import pins

    return pins.pin(arguments.inventory, arguments.run_id, arguments.reason)


def run_unpin(arguments: argparse.Namespace) -> int:
    from phoenix import pins

    return pins.unpin(arguments.inventory, arguments.run_id, arguments.reason)


def run_schema_doc(arguments: argparse.Namespace) -> int:
    from phoenix.schema_doc import markdown

    print(markdown(), end="")
    return 0


def run_flags_doc(arguments: argparse.Namespace) -> int:
    from phoenix.flags_doc import markdown

    print(markdown(), end="")
    return 0


def parser() -> argparse.ArgumentParser:
    """Returns the argument parser of the `phoenix` command."""
    top = StrictParser(prog="phoenix", description="Phoenix: your server as code, recoverable.")
    verbs = top.add_subparsers(dest="verb", required=True)

    sandbox_parser = verbs.add_parser("sandbox", help="throwaway container hosts")
    sandbox_actions = sandbox_parser.add_subparsers(dest="action", required=True)
    up = sandbox_actions.add_parser("up", help="start (or keep) a sandbox's hosts")
    up.add_argument("name", help="sandbox name, e.g. sandbox or dev")
    up.add_argument(
        "--hosts",
        help="comma-separated host names (default: the hosts of --inventory; without it, the hosts the sandbox"
        f" already has, or those of {DEFAULT_SANDBOX_INVENTORY} for a new one)",
    )
    up.add_argument("--inventory", help="inventory whose hosts to start")
    down = sandbox_actions.add_parser("down", help="remove a sandbox's containers and network")
    down.add_argument("name")
    sandbox_actions.add_parser("list", help="list sandboxes on this machine")
    sandbox_parser.set_defaults(run=run_sandbox)

    check = verbs.add_parser("check", help="validate an inventory without touching any host")
    check.add_argument("inventory", help="inventories/<env>.py or .yml")
    check.set_defaults(run=run_check)

    secrets_parser = verbs.add_parser("secrets", help="age-encrypted secrets of an environment")
    secrets_actions = secrets_parser.add_subparsers(dest="action", required=True)
    init = secrets_actions.add_parser("init", help="make your age identity (if missing) and the recipients file")
    init.add_argument("environment")
    edit = secrets_actions.add_parser("edit", help="decrypt into $EDITOR, validate, re-encrypt")
    edit.add_argument("environment")
    fill = secrets_actions.add_parser("fill", help="generate the missing passwords and the vault certificate")
    fill.add_argument("environment")
    secrets_parser.set_defaults(run=run_secrets)

    status = verbs.add_parser("status", help="backup ages, verified snapshots, pins and checks, per host and job")
    status.add_argument("inventory", help="inventories/<env>.py or .yml")
    status.add_argument("--json", action="store_true", help="print the vault's report and the flags as JSON")
    status.set_defaults(run=run_status)

    pins_parser = verbs.add_parser("pins", help="pinned backups, with their reasons and ages")
    pins_parser.add_argument("inventory", help="inventories/<env>.py or .yml")
    pins_parser.set_defaults(run=run_pins)
    pin_parser = verbs.add_parser("pin", help="pin one backup run on the vault; retention never removes it")
    pin_parser.add_argument("inventory", help="inventories/<env>.py or .yml")
    pin_parser.add_argument("run_id", metavar="RUN", help="run id or snapshot id (phoenix-backup runs lists them)")
    pin_parser.add_argument("--reason", required=True, help="why the run must be kept (logged on the vault)")
    pin_parser.set_defaults(run=run_pin)
    unpin_parser = verbs.add_parser("unpin", help="release one pin; the vault logs who and why")
    unpin_parser.add_argument("inventory", help="inventories/<env>.py or .yml")
    unpin_parser.add_argument("run_id", metavar="RUN", help="run id or snapshot id, as `phoenix pins` shows")
    unpin_parser.add_argument("--reason", required=True, help="why the pin may go (logged on the vault)")
    unpin_parser.set_defaults(run=run_unpin)

    drill = verbs.add_parser(
        "drill", help="restore the newest data into throwaway hosts as restore.py would, check them, report RTO and RPO"
    )
    drill.add_argument("inventory", nargs="?", help="inventories/<env>.py or .yml")
    drill.add_argument("--host", default="", help="drill this host (and the hosts it shares a database with) only")
    drill.add_argument("--keep", action="store_true", help="leave the drill's hosts up to look around")
    drill.add_argument(
        "--dumps",
        action="store_true",
        help="restore archived databases from their nightly dumps, not the vault's archive (default: as restore.py)",
    )
    drill.add_argument("--report-dir", default="", help="where reports go (default: the inventory's drill.report_dir)")
    drill.add_argument("--history", action="store_true", help="print the trend of past drills and exit")
    drill.set_defaults(run=run_drill)

    report = verbs.add_parser(
        "report", help="the recovery dashboard: one self-contained HTML page of backups, pins, drills and trends"
    )
    report.add_argument("inventory", help="inventories/<env>.py or .yml")
    report.add_argument("--output", default="", help="the HTML file (default: <report_dir>/<env>-dashboard.html)")
    report.set_defaults(run=run_report)

    runbook = verbs.add_parser("runbook", help="the operator's runbook for an environment, as Markdown")
    runbook.add_argument("inventory", help="inventories/<env>.py or .yml")
    runbook.add_argument("--html", default="", help="also write it as an HTML page to this file")
    runbook.set_defaults(run=run_runbook)

    up_parser = verbs.add_parser("up", help="a local copy of the stack (dev, sandbox), optionally with real data")
    up_parser.add_argument("environment", help="a throwaway environment: dev, or inventories/<env>.yml")
    up_parser.add_argument("--with-data", action="store_true", help="restore the source's newest backups into it")
    up_parser.add_argument("--from", dest="source", default="prod", help="where --with-data reads (default: prod)")
    up_parser.add_argument("--sandbox", default="", help="sandbox name (default: PHOENIX_SANDBOX or the inventory's)")
    up_parser.set_defaults(run=run_up)
    down_parser = verbs.add_parser("down", help="remove a local copy made by `phoenix up`")
    down_parser.add_argument("environment")
    down_parser.add_argument("--sandbox", default="", help="sandbox name (default: PHOENIX_SANDBOX or the inventory's)")
    down_parser.set_defaults(run=run_down)

    schema_doc = verbs.add_parser("schema-doc", help="print the inventory reference as Markdown")
    schema_doc.set_defaults(run=run_schema_doc)
    flags_doc = verbs.add_parser("flags-doc", help="print the run flags (--data) reference as Markdown")
    flags_doc.set_defaults(run=run_flags_doc)
    return top


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    try:
        return arguments.run(arguments)
    except PhoenixError as error:
        print(f"phoenix: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("phoenix: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
