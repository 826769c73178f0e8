"""Run flags (`pyinfra inventories/<env>.py <entry point> --data key=value`), declared in run_flags.yaml.

pyinfra takes any `--data` key into host data and guesses its type (`pin=007` becomes 7,
`version=2.10` becomes 2.1), so a misspelt flag was silently ignored. The inventory loaders call
from_command_line() before they build any host: it reads the raw `--data` strings from pyinfra's
own command line, refuses unknown keys (naming the closest known one) and bad values, every
problem at once, and returns the typed values with defaults, which each host carries as
`host.data.run_flags`. Entry points and roles read their flags from there only.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import yaml

from phoenix import strict_yaml
from phoenix.errors import PhoenixError

DECLARATION_PATH = Path(__file__).with_name("run_flags.yaml")
EVERY_COMMAND = "every command"
BOOLEAN_WORDS = {"yes": True, "true": True, "no": False, "false": False}
TIME_EXAMPLE = "2026-11-20 18:00"


def load_declaration() -> dict:
    """Returns run_flags.yaml: {"entry_points": {file: summary}, "flags": {name: declaration}}."""
    with DECLARATION_PATH.open() as declaration_file:
        return yaml.load(declaration_file, Loader=strict_yaml.OWN_FILES_LOADER)


def flags_for(entry_points: str | Sequence[str]) -> dict[str, dict]:
    """Given deploy file names (or another pyinfra command), returns the flags they take by name.

    The entry points' own flags come first, then those of every command (pyinfra's connection ones).
    """
    names = [entry_points] if isinstance(entry_points, str) else list(entry_points)
    flags = load_declaration()["flags"]
    own = {name: flag for name, flag in flags.items() if set(flag["entry_points"]) & set(names)}
    return {**own, **{name: flag for name, flag in flags.items() if EVERY_COMMAND in flag["entry_points"]}}


def parse(
    entry_points: str | Sequence[str],
    given: Mapping[str, str] | Iterable[tuple[str, str]],
    now: datetime | None = None,
) -> dict[str, Any]:
    """Given the deploy file(s) run and the raw `--data` (key, text) pairs, returns every flag they
    take, typed, with its default where not given.

    Raises PhoenixError with one line per problem: an unknown or repeated key, an empty or
    ill-typed value, a time in the future (compared with `now`, default the clock).
    """
    label = " ".join([entry_points] if isinstance(entry_points, str) else entry_points) or "this command"
    known = flags_for(entry_points)
    pairs = list(given.items()) if isinstance(given, Mapping) else list(given)
    values = {name: flag["default"] for name, flag in known.items()}
    problems = []
    for key in dict.fromkeys(key for key, _ in pairs):
        texts = [text for name, text in pairs if name == key]
        if key not in known:
            problems.append(_unknown(key, label, known))
        elif len(texts) > 1:
            problems.append(f"--data {key}: given {len(texts)} times ({', '.join(map(repr, texts))}); give it once")
        else:
            try:
                values[key] = parse_value(key, known[key], texts[0], now or datetime.now(UTC))
            except PhoenixError as error:
                problems.append(str(error))
    if problems:
        raise PhoenixError("\n".join(problems))
    return values


def _unknown(key: str, label: str, known: dict[str, dict]) -> str:
    elsewhere = load_declaration()["flags"].get(key)
    names = ", ".join(known)
    if elsewhere:
        return f"--data {key}: a flag of {', '.join(elsewhere['entry_points'])}, not of {label} (known: {names})"
    closest = difflib.get_close_matches(key.lower(), known, n=1, cutoff=0.6)
    hint = f"; did you mean '{closest[0]}'?" if closest else ""
    return f"--data {key}: unknown flag for {label}{hint} (known: {names})"


def parse_value(name: str, flag: dict, text: str, now: datetime) -> Any:
    """Given one flag's declaration and its raw text, returns the typed value; raises PhoenixError saying
    what was expected."""
    if not text.strip():
        raise PhoenixError(f"--data {name}=: no value; give one, or leave the flag out for its default")
    kind = flag["type"]
    if "enum" in flag and text not in flag["enum"]:
        raise PhoenixError(f"--data {name}={text!r}: expected one of {', '.join(flag['enum'])}")
    if kind == "boolean":
        if text.lower() not in BOOLEAN_WORDS:
            raise PhoenixError(f"--data {name}={text!r}: expected yes or no (or true, false)")
        return BOOLEAN_WORDS[text.lower()]
    if kind == "integer":
        if not text.strip().isdigit():
            raise PhoenixError(f"--data {name}={text!r}: expected a whole number")
        return int(text)
    if kind == "time":
        moment = parse_time(name, text)
        if moment > now:
            raise PhoenixError(f"--data {name}={text!r}: is in the future (now: {now:%Y-%m-%d %H:%M} UTC)")
        return moment
    return text


def parse_time(name: str, text: str) -> datetime:
    """Given a time flag's text ("2026-11-20 18:00", optional seconds and UTC offset), returns it as an
    aware datetime (UTC without an offset); raises PhoenixError for any other text."""
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError as error:
        raise PhoenixError(f'--data {name}={text!r}: expected a time like "{TIME_EXAMPLE}"') from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def command_line() -> tuple[list[str], list[str]] | None:
    """Returns (operations, raw --data arguments) of the pyinfra command running now, or None outside
    pyinfra's command line.

    pyinfra 3 loads the inventory inside its click command, whose parameters hold the `--data`
    strings before pyinfra guesses their types; whatever form they took (`--data k=v`,
    `--data=k=v`, before or after the inventory), click has already parsed them.
    """
    context = click.get_current_context(silent=True)
    if context is None:
        return None
    parameters = context.find_root().params
    if "operations" not in parameters or "data" not in parameters:
        return None
    return list(parameters["operations"] or ()), list(parameters["data"] or ())


def entry_points_of(operations: Sequence[str]) -> list[str]:
    """Given pyinfra's operations arguments, returns the deploy files' names, or the command's name
    (`exec`, `fact`, `server.shell`...) when it runs no deploy file."""
    files = [Path(operation).name for operation in operations if operation.endswith(".py")]
    return files or list(operations[:1])


def from_command_line(now: datetime | None = None) -> dict[str, Any]:
    """Returns the typed run flags of the pyinfra command running now (only defaults outside pyinfra);
    raises PhoenixError naming every problem with its `--data` arguments."""
    line = command_line()
    if line is None:
        return parse([], {}, now)
    operations, data = line
    pairs = [(argument.partition("=")[0], argument.partition("=")[2]) for argument in data]
    return parse(entry_points_of(operations), pairs, now)
