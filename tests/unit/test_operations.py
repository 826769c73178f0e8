"""The custom operations and facts of roles/operations.py, from fixture cases (as pyinfra tests its own).

tests/unit/operations/<operation>/<case>.json: the operation's keyword arguments and the facts the
host reports in; out, the exact commands it yields and the no-op messages it gives for what needs no
change ("noop_descriptions", none when absent). A fact is named "<module>.<Class>"
(files.Sha256File, operations.PostgresCatalog); a fact taking arguments maps "key=value, ..."
(sorted by key) to its value. A keyword argument written {"text": "..."} is a file object with that text;
a template's path is relative to the case's directory.

tests/unit/facts/<Fact>/<case>.json: the fact's arguments, the exact command it runs, the lines
the server prints and what the fact makes of them.

The operation's generator (`_inner`) runs against a fake host, so no server and no pyinfra state
are involved; password salts are fixed (16 zero bytes) so that verifiers are the same every run.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tarfile
from io import BytesIO, StringIO
from pathlib import Path
from types import SimpleNamespace

import pytest
from pyinfra.api import FileUploadCommand, StringCommand
from pyinfra.operations import apt, files, server, systemd

from phoenix import scram
from roles import operations

HERE = Path(__file__).parent
OPERATION_CASES = sorted((HERE / "operations").glob("*/*.json"))
FACT_CASES = sorted((HERE / "facts").glob("*/*.json"))
FIXED_SALT = bytes(16)


def fact_name(fact: type) -> str:
    """Given a fact class, returns its name in case files: "<last part of its module>.<class>"."""
    return f"{fact.__module__.rsplit('.', 1)[-1]}.{fact.__name__}"


class FakeHost:
    """The host an operation reads facts from: answers only with the case's facts, records no-op messages."""

    def __init__(self, facts: dict):
        self.facts = facts
        self.noops: list[str] = []

    def get_fact(self, fact: type, **arguments):
        name = fact_name(fact)
        assert name in self.facts, f"the operation asked for fact {name}, which the case does not give"
        value = self.facts[name]
        if arguments:
            key = ", ".join(f"{key}={arguments[key]}" for key in sorted(arguments))
            assert key in value, f"the operation asked for {name}({key}), which the case does not give"
            value = value[key]
        return copy.deepcopy(value)

    current_op_global_arguments = None

    def get_temp_filename(self, key: str, temp_directory: str | None = None) -> str:
        return f"/tmp/pyinfra-{hashlib.sha1(key.encode()).hexdigest()}"

    def noop(self, description: str) -> None:
        self.noops.append(description)

    def create_fact(self, *arguments, **keywords) -> None:
        pass

    def delete_fact(self, *arguments, **keywords) -> None:
        pass


def as_case_value(command) -> str | dict:
    """Given what an operation yielded, returns it as case files write it: a shell command as its text, an
    upload as {"upload": destination, "content": text, "via": remote temporary file}, a tar archive's content
    as {member: {"mode", "owner", "text"}}."""
    if isinstance(command, str):
        return command
    if isinstance(command, StringCommand):
        return command.get_raw_value()
    if isinstance(command, FileUploadCommand):
        content = command.src.getvalue() if hasattr(command.src, "getvalue") else str(command.src)
        if isinstance(content, bytes) and tarfile.is_tarfile(BytesIO(content)):
            content = archive_members(content)
        content = content.decode() if isinstance(content, bytes) else content
        return {"upload": command.dest, "content": content, "via": command.remote_temp_filename}
    raise AssertionError(f"unexpected command {command!r}")


def archive_members(content: bytes) -> dict:
    with tarfile.open(fileobj=BytesIO(content)) as archive:
        return {
            member.name: {
                "mode": f"{member.mode:04o}",
                "owner": f"{member.uname}:{member.gname} ({member.uid}:{member.gid})",
                "text": archive.extractfile(member).read().decode(),
            }
            for member in archive.getmembers()
        }


@pytest.mark.parametrize("path", OPERATION_CASES, ids=lambda path: f"{path.parent.name}/{path.stem}")
def test_operation_case(path: Path, monkeypatch):
    case = json.loads(path.read_text())
    fake = FakeHost(case["facts"])
    monkeypatch.setattr(operations, "host", fake)
    # secret_file, put_file, template_file and managed_directory build on files.*, service_running on systemd.service
    monkeypatch.setattr(files, "host", fake)
    monkeypatch.setattr(systemd, "host", fake)
    monkeypatch.setattr(apt, "host", fake)  # packages_installed builds on apt.packages, apt_lists_fresh on apt.update
    monkeypatch.setattr(server, "host", fake)  # host_name and system_account build on server.*
    fake_state = SimpleNamespace(cwd=str(path.parent), inventory=None, config=SimpleNamespace(DIFF=False))
    monkeypatch.setattr(operations, "state", fake_state)
    monkeypatch.setattr(files, "state", fake_state)
    real_make_verifier = scram.make_verifier
    monkeypatch.setattr(scram, "make_verifier", lambda password: real_make_verifier(password, salt=FIXED_SALT))
    operation = getattr(operations, path.parent.name)

    kwargs = {
        key: StringIO(value["text"]) if isinstance(value, dict) and set(value) == {"text"} else value
        for key, value in case["kwargs"].items()
    }

    commands = [as_case_value(command) for command in operation._inner(**kwargs)]

    assert commands == case["commands"]
    assert fake.noops == case.get("noop_descriptions", [])


@pytest.mark.parametrize("path", FACT_CASES, ids=lambda path: f"{path.parent.name}/{path.stem}")
def test_fact_case(path: Path):
    case = json.loads(path.read_text())
    fact = getattr(operations, path.parent.name)()

    assert fact.command(**case.get("arguments", {})) == case["command"]
    assert fact.process(case["output"]) == case["fact"]


def test_every_custom_operation_and_fact_has_cases():
    with_cases = {path.parent.name for path in OPERATION_CASES + FACT_CASES}
    custom = {
        name
        for name, value in vars(operations).items()
        if hasattr(value, "_inner") or (isinstance(value, type) and value.__module__ == operations.__name__)
    }
    assert custom == with_cases
