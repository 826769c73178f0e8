"""Run flags (`--data key=value`): declared once in phoenix/run_flags.yaml, checked before any host is touched."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from phoenix import run_flags
from phoenix.errors import PhoenixError
from phoenix.flags_doc import example_argument, markdown
from phoenix.remote.backup import TRIGGERS

REPOSITORY = Path(__file__).resolve().parents[2]
ENTRY_POINTS = ["deploy.py", "backup.py", "restore.py", "upgrade.py"]
NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
CONNECTION_FLAGS = ["ssh_user", "ssh_port", "ssh_key"]


def refusal(entry_point: str, given) -> str:
    with pytest.raises(PhoenixError) as caught:
        run_flags.parse(entry_point, given, NOW)
    return str(caught.value)


@pytest.mark.parametrize(
    ("entry_point", "given", "message"),
    [
        (
            "backup.py",
            {"pinn": "before upgrade"},
            "--data pinn: unknown flag for backup.py; did you mean 'pin'?"
            " (known: pin, backup_trigger, ssh_user, ssh_port, ssh_key)",
        ),
        (
            "restore.py",
            {"snapshott": "latest"},
            "--data snapshott: unknown flag for restore.py; did you mean 'snapshot'?",
        ),
        ("upgrade.py", {"versoin": "2.0.0"}, "--data versoin: unknown flag for upgrade.py; did you mean 'version'?"),
        ("backup.py", {"PIN": "x"}, "--data PIN: unknown flag for backup.py; did you mean 'pin'?"),
        (
            "deploy.py",
            {"colour": "blue"},
            "--data colour: unknown flag for deploy.py (known: allow_downgrade, ssh_user",
        ),
    ],
)
def test_an_unknown_flag_is_refused_naming_the_closest_known_one(entry_point, given, message):
    assert refusal(entry_point, given).startswith(message)


def test_a_flag_of_another_entry_point_is_refused_naming_where_it_belongs():
    assert refusal("deploy.py", {"version": "2.0.0"}).startswith(
        "--data version: a flag of upgrade.py, not of deploy.py (known: allow_downgrade, "
    )


def test_every_entry_point_takes_its_own_flags_and_the_connection_ones():
    assert {entry_point: list(run_flags.flags_for(entry_point)) for entry_point in ENTRY_POINTS} == {
        "deploy.py": ["allow_downgrade", *CONNECTION_FLAGS],
        "backup.py": ["pin", "backup_trigger", *CONNECTION_FLAGS],
        "restore.py": [
            "snapshot",
            "at",
            "restore_point",
            "force_restore",
            "allow_older",
            "allow_missing",
            "restore_report",
            "allow_downgrade",
            *CONNECTION_FLAGS,
        ],
        "upgrade.py": ["version", "source", "reason", *CONNECTION_FLAGS],
    }
    assert list(run_flags.flags_for("exec")) == CONNECTION_FLAGS


def test_the_entry_point_is_the_deploy_files_name_or_else_the_pyinfra_command():
    assert run_flags.entry_points_of(["../phoenix/restore.py"]) == ["restore.py"]
    assert run_flags.entry_points_of(["exec", "--", "uptime"]) == ["exec"]
    assert run_flags.from_command_line(NOW) == dict.fromkeys(CONNECTION_FLAGS)  # outside pyinfra: no --data


def test_without_flags_every_flag_takes_its_default():
    assert run_flags.parse("restore.py", {}, NOW) == {
        "snapshot": None,
        "at": None,
        "restore_point": None,
        "force_restore": False,
        "allow_older": False,
        "allow_missing": False,
        "restore_report": None,
        "allow_downgrade": False,
        "ssh_user": None,
        "ssh_port": None,
        "ssh_key": None,
    }
    assert run_flags.parse("backup.py", {}, NOW)["backup_trigger"] == "manual"


def test_values_are_typed_from_the_text_as_written():
    values = run_flags.parse(
        "restore.py",
        {"snapshot": "00123456", "force_restore": "YES", "allow_older": "false", "ssh_port": "2222"},
        NOW,
    )

    assert values["snapshot"] == "00123456"  # pyinfra's own --data parsing makes this the number 123456
    assert values["force_restore"] is True and values["allow_older"] is False
    assert values["ssh_port"] == 2222
    assert run_flags.parse("upgrade.py", {"version": "2.10"}, NOW)["version"] == "2.10"  # not the float 2.1


@pytest.mark.parametrize("word", ["maybe", "y", "1", "on", "ja"])
def test_a_yes_no_flag_takes_only_clear_boolean_words(word):
    assert refusal("restore.py", {"force_restore": word}) == (
        f"--data force_restore={word!r}: expected yes or no (or true, false)"
    )


def test_an_enum_flag_refuses_other_values():
    assert refusal("backup.py", {"backup_trigger": "whenever"}) == (
        "--data backup_trigger='whenever': expected one of scheduled, manual, pre-upgrade"
    )


def test_the_backup_triggers_are_those_phoenix_backup_accepts():
    assert run_flags.load_declaration()["flags"]["backup_trigger"]["enum"] == list(TRIGGERS)


def test_at_is_a_moment_in_the_past_in_utc_unless_an_offset_is_given():
    values = run_flags.parse("restore.py", {"at": "2026-11-20 18:00"}, NOW)
    assert values["at"] == datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
    values = run_flags.parse("restore.py", {"at": "2026-11-30T06:30:00+01:00"}, NOW)
    assert values["at"] == datetime(2026, 11, 30, 5, 30, tzinfo=UTC)


def test_at_in_the_future_is_refused_instead_of_meaning_latest():
    assert refusal("restore.py", {"at": "2026-11-30 06:01"}) == (
        "--data at='2026-11-30 06:01': is in the future (now: 2026-11-30 06:00 UTC)"
    )


def test_a_malformed_time_is_still_refused():
    assert (
        refusal("restore.py", {"at": "yesterday"}) == "--data at='yesterday': expected a time like \"2026-11-20 18:00\""
    )


def test_empty_values_repeated_flags_and_bad_numbers_are_refused_all_at_once():
    message = refusal(
        "restore.py",
        [("pin", "x"), ("snapshot", ""), ("force_restore", "yes"), ("force_restore", "no"), ("ssh_port", "22a")],
    )

    assert message.splitlines() == [
        "--data pin: a flag of backup.py, not of restore.py (known: snapshot, at, restore_point, force_restore,"
        " allow_older, allow_missing, restore_report, allow_downgrade, ssh_user, ssh_port, ssh_key)",
        "--data snapshot=: no value; give one, or leave the flag out for its default",
        "--data force_restore: given 2 times ('yes', 'no'); give it once",
        "--data ssh_port='22a': expected a whole number",
    ]


def test_every_declared_flag_has_a_description_ending_with_its_default_and_a_valid_example():
    declaration = run_flags.load_declaration()
    for name, flag in declaration["flags"].items():
        assert set(flag["entry_points"]) <= {*declaration["entry_points"], run_flags.EVERY_COMMAND}, name
        assert "default" in flag, name
        assert flag["description"].rsplit("Defaults to ", 1)[1].endswith("."), name
        entry_point = flag["entry_points"][0] if flag["entry_points"] != [run_flags.EVERY_COMMAND] else "exec"
        text = example_argument(name, flag).removeprefix(f"--data {name}=").strip('"')
        assert run_flags.parse(entry_point, {name: text}, NOW)[name] is not None, name


def test_every_flag_the_code_reads_is_declared_for_the_entry_points_that_run_that_code():
    """roles/app.py runs in deploy.py and restore.py (app.apply()); phoenix/restore_plan.py in restore.py."""
    readers = {
        "deploy.py": ["deploy.py", "roles/app.py"],
        "backup.py": ["backup.py"],
        "restore.py": ["restore.py", "roles/app.py", "phoenix/restore_plan.py"],
        "upgrade.py": ["upgrade.py"],
    }
    undeclared, reads = [], 0
    for entry_point, files in readers.items():
        for file in files:
            text = (REPOSITORY / file).read_text()
            for name in re.findall(r"(?:run_flags|flags)\[[\"'](\w+)[\"']\]", text):
                reads += 1
                if name not in run_flags.flags_for(entry_point):
                    undeclared.append(f"{file} reads {name}, not declared for {entry_point}")
            for name in re.findall(r"data\.get\([\"'](\w+)[\"']", text):
                if name in run_flags.load_declaration()["flags"]:
                    undeclared.append(f"{file} reads {name} from host data, around the declaration")

    assert undeclared == []
    assert reads >= 9, "the pattern no longer finds the code's reads of run flags"


def test_docs_flags_md_is_the_generated_reference():
    assert (REPOSITORY / "docs" / "flags.md").read_text() == markdown(), "run: phoenix flags-doc > docs/flags.md"


def test_every_data_example_in_the_readme_docs_and_entry_points_is_a_valid_flag():
    """A `--data key=value` written next to an entry point must be one of its flags; elsewhere, some entry point's."""
    sources = [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").glob("*.md"))]
    sources += [REPOSITORY / name for name in ENTRY_POINTS]
    checked, wrong = 0, []
    for source in sources:
        for line in source.read_text().splitlines():
            named = [name for name in ENTRY_POINTS if re.search(rf"\b{re.escape(name)}\b", line)]
            for key, value in re.findall(r"--data (\w+)=(\"[^\"]*\"|[^\s`|\]]*)", line):
                if key == "key":
                    continue  # the generic `--data key=value`
                checked += 1
                taking = [name for name in ENTRY_POINTS if key in run_flags.flags_for(name)]
                try:
                    run_flags.parse(named or taking[:1] or ["exec"], {key: value.strip('"')}, NOW)
                except PhoenixError as error:
                    wrong.append(f"{source.name}: {line.strip()}: {error}")

    assert wrong == []
    assert checked > 20, "the pattern no longer finds the --data examples"


# The real pyinfra command line: an inventory of this repository's loader, a deploy file that only
# records the flags it got. A refusal must come before pyinfra connects to any host.
INVENTORY_MODULE = """\
from phoenix import inventory
from phoenix.secrets import Secrets

inventory.load_secrets = lambda environment: Secrets({}, "none")
_hosts = inventory.hosts_for(__file__)
for _, _data in _hosts:
    globals().pop(_data["phoenix_host"], None)  # hosts_for's short-name groups: this inventory runs @local only
servers = [
    ("@local", {key: value for key, value in data.items() if key != "_sudo"})
    for _, data in _hosts
    if data["phoenix_host"] == "web1"
]
"""
RECORDING_DEPLOY = """\
import json, os
from pyinfra import host

with open(os.environ["RECORD_FLAGS"], "w") as record:
    json.dump(host.data.run_flags, record, default=str)
"""


@pytest.fixture
def pyinfra_run(tmp_path, write_inventory):
    inventory = write_inventory().with_suffix(".py")
    inventory.write_text(INVENTORY_MODULE)
    record = tmp_path / "flags.json"
    (tmp_path / "app").mkdir()  # the inventory's app.source, which the loader checks exists
    (tmp_path / "app" / "pyproject.toml").write_text("")

    def run(entry_point: str, *arguments: str) -> tuple[subprocess.CompletedProcess, dict | None]:
        (tmp_path / entry_point).write_text(RECORDING_DEPLOY)
        process = subprocess.run(
            [str(Path(sys.executable).with_name("pyinfra")), "-y", *arguments, str(inventory), entry_point],
            cwd=tmp_path,
            env={**os.environ, "RECORD_FLAGS": str(record)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        return process, json.loads(record.read_text()) if record.exists() else None

    return run


@pytest.mark.parametrize(
    ("entry_point", "argument", "message"),
    [
        ("backup.py", "pinn=before upgrade", "--data pinn: unknown flag for backup.py; did you mean 'pin'?"),
        ("restore.py", "snapshott=latest", "--data snapshott: unknown flag for restore.py; did you mean 'snapshot'?"),
        ("upgrade.py", "versoin=2.0.0", "--data versoin: unknown flag for upgrade.py; did you mean 'version'?"),
        ("restore.py", "at=2999-01-01 00:00", "--data at='2999-01-01 00:00': is in the future (now: "),
        ("restore.py", "force_restore=maybe", "--data force_restore='maybe': expected yes or no (or true, false)"),
    ],
)
def test_pyinfra_refuses_a_bad_flag_before_connecting_to_any_host(pyinfra_run, entry_point, argument, message):
    process, recorded = pyinfra_run(entry_point, "--data", argument)

    assert process.returncode == 2, process.stderr
    assert message in process.stderr
    assert "Connecting to hosts" not in process.stderr and recorded is None


def test_pyinfra_hands_the_deploy_file_the_flags_typed_as_written_in_either_form(pyinfra_run):
    process, recorded = pyinfra_run("backup.py", "--data=pin=007", "--data", "backup_trigger=pre-upgrade")

    assert process.returncode == 0, process.stderr
    assert recorded["pin"] == "007" and recorded["backup_trigger"] == "pre-upgrade"
