"""One round trip for the checks of a converge that finds its host as wanted.

Each fact pyinfra asks is a round trip to the server (an SSH channel, an nsenter into a sandbox container), and
pyinfra asks them one at a time, as each operation runs. The Phoenix operations that check files, directories, services
and packages (roles/operations.py) say at planning what they will check (`reads`); the first of them to run
on a host reads every one of those at once (HostSnapshot), then each operation takes its answer from there.

The snapshot is taken and used only while no operation of this run has run a command on the host: from then
on, each operation asks its own fact again, when it runs, so that an answer read before a change never decides
what happens after it. Nothing outlives the run: the snapshot belongs to the host object of this run.
"""

from __future__ import annotations

import functools
import re
import shlex
import weakref
from collections.abc import Callable, Iterable

from pyinfra import host, state
from pyinfra.api import FactBase
from pyinfra.context import ctx_host, ctx_state

# a package dpkg lists with one of these statuses is installed for pyinfra's DebPackages too ("ii", "hi")
INSTALLED = ("install ok installed", "hold ok installed")
KINDS = ("files", "services", "packages", "commands")
SECTION = re.compile(r"^\[[\w :-]+\]$")  # a section's first line, printed by sectioned_command


def sectioned_command(parts: dict[str, str]) -> str:
    """Given {section: shell command}, returns one shell command running them all, each output under a
    "[section]" line: several questions to a server in one round trip. Read the answer with sections()."""
    return "; ".join(f"echo '[{section}]'; {command}" for section, command in parts.items())


def sections(output: str | list[str] | None, names: Iterable[str]) -> dict[str, list[str]]:
    """Given sectioned_command()'s output (text or lines), returns {section: its non-empty lines} for each of
    `names`."""
    found: dict[str, list[str]] = {name: [] for name in names}
    lines = output.splitlines() if isinstance(output, str) else (output or [])
    current = None
    for line in lines:
        line = line.strip()
        if SECTION.match(line):
            current = line[1:-1] if line[1:-1] in found else None  # another's section: skipped
        elif line and current:
            found[current].append(line)
    return found


def file_state_command(quoted_path: str) -> str:
    """The shell command printing one line about a path (already quoted for the shell): "absent", "link TARGET",
    "other", "directory MODE USER GROUP" or "file MODE USER GROUP SHA256" (MODE in octal digits, 644)."""
    owner = f"$(stat -c '%a %U %G' -- {quoted_path})"
    return (
        f"if [ -L {quoted_path} ]; then echo link $(readlink -- {quoted_path});"
        f" elif [ -f {quoted_path} ]; then echo file {owner} $(sha256sum < {quoted_path} | cut -c1-64);"
        f" elif [ -d {quoted_path} ]; then echo directory {owner};"
        f" elif [ -e {quoted_path} ]; then echo other; else echo absent; fi"
    )


def package_status_command(packages: list[str]) -> str:
    """The shell command printing "PACKAGE STATUS" for each of `packages` dpkg knows of."""
    names = " ".join(shlex.quote(package) for package in packages)
    return f"dpkg-query -W -f='${{Package}} ${{Status}}\\n' {names} 2>/dev/null || true"


def parse_package_statuses(lines: list[str]) -> dict[str, str]:
    """Given package_status_command()'s lines, returns {package: dpkg's status ("install ok installed")}."""
    return dict(line.strip().split(" ", 1) for line in lines if " " in line.strip())


def parse_file_state(line: str) -> dict | None:
    """Given a line of file_state_command(), returns None (absent) or {"type": "file", "directory", "link" or
    "other"; for a file or directory "mode" (an int, 644), "user", "group"; for a file "sha256" ("" when it
    could not be read); for a link "target"}."""
    words = line.split()
    if not words or words[0] == "absent":
        return None
    if words[0] == "link":
        return {"type": "link", "target": line.strip()[len("link") :].strip()}
    found: dict = {"type": words[0]}
    if words[0] in ("file", "directory") and len(words) >= 4:
        found.update(mode=int(words[1]), user=words[2], group=words[3])
    if words[0] == "file":
        found["sha256"] = words[4] if len(words) > 4 else ""
    return found


def unit_states_command(units: list[str]) -> str:
    """The shell command printing, for each unit in order, one line "SubState=... UnitFileState=..."."""
    names = " ".join(shlex.quote(unit) for unit in units)
    return f'for unit in {names}; do echo $(systemctl show -p SubState -p UnitFileState "$unit" 2>/dev/null) .; done'


def parse_unit_state(line: str) -> dict:
    """Given a line of unit_states_command(), returns {"SubState": ..., "UnitFileState": ...} (what it said)."""
    return dict(word.split("=", 1) for word in line.split() if "=" in word)


class HostSnapshot(FactBase):
    """Returns {"files": [a file_state_command() line per path], "services": [a unit_states_command() line per
    unit], "packages": {name: dpkg's status}, "commands": {command: its output's non-empty lines}} for the paths,
    systemd units, Debian packages and read-only shell commands asked, in one command; a package dpkg does not
    know is left out."""

    def command(self, files: list[str], services: list[str], packages: list[str], commands: list[str]) -> str:
        parts = {}
        if files:
            paths = " ".join(shlex.quote(path) for path in files)
            parts["files"] = f"for path in {paths}; do {file_state_command(chr(34) + '$path' + chr(34))}; done"
        if services:
            parts["services"] = unit_states_command(services)
        if packages:
            parts["packages"] = package_status_command(packages)
        for number, command in enumerate(commands):
            parts[f"command {number}"] = f"{{ {command} ; }}"
        return sectioned_command(parts)

    def process(self, output: list[str]) -> dict:
        commands = [line.strip()[1:-1] for line in output if line.startswith("[command ")]
        found = sections(output, [*KINDS[:3], *commands])
        return {
            "files": found["files"],
            "services": found["services"],
            "packages": parse_package_statuses(found["packages"]),
            "commands": [found[name] for name in commands],
        }


class _HostRecord:
    """What this run planned to check on a host, and the snapshot once read."""

    def __init__(self) -> None:
        self.planned: dict[str, dict[str, None]] = {kind: {} for kind in KINDS}
        self.snapshot: dict | None = None
        self.taken: dict[str, set[str]] = {kind: set() for kind in KINDS}  # what the snapshot was asked
        self.unusable = False


# the host objects of this run (a new run has new ones), each with its record
_RECORDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _record() -> _HostRecord | None:
    """The record of the host the current operation is for (None outside a pyinfra run)."""
    if not ctx_host.isset():
        return None
    current = ctx_host.get()
    try:
        return _RECORDS.setdefault(current, _HostRecord())
    except TypeError:  # not a pyinfra Host (a unit test's stand-in)
        return None


def reads(kind: str, keys: Callable[[dict], Iterable[str]]) -> Callable:
    """Decorator for an @operation taking keyword arguments: at planning, records what the operation will
    check on the host (`keys(its keyword arguments)`: paths for "files", units for "services", names for
    "packages", read-only shell commands for "commands")."""

    def decorate(operation_function):
        @functools.wraps(operation_function)
        def planned(*args, **kwargs):
            record = _record()
            if record is not None:
                for key in keys(kwargs):
                    record.planned[kind][key] = None
            return operation_function(*args, **kwargs)

        planned._inner = operation_function._inner
        return planned

    return decorate


def _host_untouched() -> bool:
    """Tells whether the run is executing and no operation of it has run a command on the current host yet."""
    if not ctx_state.isset() or not state.is_executing:
        return False
    current = ctx_host.get()
    return not any(data.operation_meta.executed for data in state.ops.get(current, {}).values())


def lookup(kind: str, key: str):
    """Returns (True, what the host snapshot says of `key`) while it may be used and `key` was planned, else
    (False, None): the caller then asks its own fact. Reads the snapshot when it is first needed."""
    record = _record()
    if record is None or record.unusable or key not in record.planned[kind] or not _host_untouched():
        return False, None
    if record.snapshot is None:
        planned = {name: list(keys) for name, keys in record.planned.items()}
        record.taken = {name: set(keys) for name, keys in planned.items()}
        answer = host.get_fact(HostSnapshot, **planned)
        if not answer or [len(answer[part]) for part in ("files", "services", "commands")] != [
            len(planned[part]) for part in ("files", "services", "commands")
        ]:
            record.unusable = True  # an answer cut short: each operation asks its own fact
            return False, None
        record.snapshot = {
            "files": dict(zip(planned["files"], map(parse_file_state, answer["files"]), strict=True)),
            "services": dict(zip(planned["services"], map(parse_unit_state, answer["services"]), strict=True)),
            "packages": answer["packages"],
            "commands": dict(zip(planned["commands"], answer["commands"], strict=True)),
        }
    if key not in record.taken[kind]:
        return False, None  # planned after the snapshot was read (an operation added while executing)
    return True, record.snapshot[kind].get(key)
