"""systemd OnCalendar expressions: is this one valid? (the backup and vault timers' schedules)

Asks `systemd-analyze calendar` where the control machine has it: then systemd itself decides.
Elsewhere a parser of the systemd.time(7) calendar syntax answers; tests/unit/test_calendar.py
keeps the two in agreement on a table of cases.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import zoneinfo

HINT = "systemd OnCalendar syntax, e.g. '*-*-* 02:15:00' or 'daily'"
SHORTHANDS = {"minutely", "hourly", "daily", "monthly", "weekly", "yearly", "annually", "quarterly", "semiannually"}
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
CRON_FIELD = r"[0-9*/,-]+"


def problem(expression: str) -> str | None:
    """Given an OnCalendar expression, returns None when systemd accepts it, else what is wrong."""
    if shutil.which("systemd-analyze"):
        return _systemd_problem(expression)
    return parser_problem(expression)


def hint(expression: str) -> str:
    """Returns what to write instead, noting cron syntax when the expression looks like it."""
    if re.fullmatch(rf"\s*{CRON_FIELD}(\s+{CRON_FIELD}){{4}}\s*", expression):
        return f"this looks like cron syntax; use {HINT}"
    return f"use {HINT}"


@functools.cache
def _systemd_problem(expression: str) -> str | None:
    result = subprocess.run(
        ["systemd-analyze", "calendar", "--", expression], capture_output=True, text=True, check=False
    )
    if result.returncode == 0:
        return None
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else f"systemd-analyze calendar exited {result.returncode}"


def parser_problem(expression: str) -> str | None:
    """Given an OnCalendar expression, returns None when it is valid, else what is wrong (no systemd needed)."""
    words = expression.split()
    if not words:
        return "empty"
    if len(words) == 1 and re.fullmatch(r"@[0-9]+", words[0]):
        return None  # seconds since the epoch
    if len(words) > 1 and (words[-1] == "UTC" or re.fullmatch(r"[A-Za-z][\w+-]*(/[\w+-]+)+", words[-1])):
        if words[-1] not in _time_zones():
            return f"'{words[-1]}' is not a time zone"
        words = words[:-1]
    if len(words) == 1 and words[0].lower() in SHORTHANDS:
        return None
    if words and re.fullmatch(r"[A-Za-z][A-Za-z.,-]*", words[0]):
        error = _weekdays_problem(words.pop(0))
        if error:
            return error
    if words and ":" not in words[0]:
        error = _date_problem(words.pop(0))
        if error:
            return error
    if words:
        error = _time_problem(words.pop(0))
        if error:
            return error
    if words:
        return f"unexpected '{' '.join(words)}'"
    return None


@functools.cache
def _time_zones() -> set[str]:
    return zoneinfo.available_timezones() | {"UTC"}


def _weekday(name: str) -> int | None:
    name = name.lower()
    for number, day in enumerate(WEEKDAYS):
        if name in (day, day[:3]):
            return number
    return None


def _weekdays_problem(text: str) -> str | None:
    for item in text.split(","):
        ends = re.split(r"\.\.|-", item)
        if len(ends) > 2 or any(_weekday(end) is None for end in ends):
            return f"'{item}' is not a weekday or range of weekdays (Mon, Mon..Fri)"
    return None


def _component_problem(text: str, name: str, low: int, high: int, fraction: bool = False) -> str | None:
    """Checks one date or time component: *, or a comma list of values, ranges a..b and repetitions /n."""
    number = r"[0-9]+(\.[0-9]+)?" if fraction else r"[0-9]+"
    for item in text.split(","):
        match = re.fullmatch(rf"(\*|(?P<start>{number})(\.\.(?P<end>{number}))?)(/(?P<repeat>{number}))?", item)
        if not match:
            return f"'{item}' is not a {name} (a number, *, a range a..b, or a repetition /n)"
        values = [float(match[key]) for key in ("start", "end") if match[key] is not None]
        if any(not low <= value <= high for value in values):
            return f"'{item}': {name} must be from {low} to {high}"
        if len(values) == 2 and values[0] > values[1]:
            return f"'{item}': a range must go upwards"
        if match["repeat"] is not None and float(match["repeat"]) <= 0:
            return f"'{item}': a repetition must be positive"
    return None


def _date_problem(text: str) -> str | None:
    match = re.fullmatch(r"((?P<year>[^-~]+)-)?(?P<month>[^-~]+)(?P<sep>[-~])(?P<day>[^-~]+)", text)
    if not match:
        return f"'{text}' is not a date ([YEAR-]MONTH-DAY, each * or numbers)"
    parts = [("year", 1970, 2199), ("month", 1, 12), ("day", 1, 31)]
    for name, low, high in parts:
        if match[name] is not None:
            error = _component_problem(match[name], name, low, high)
            if error:
                return error
    return None


def _time_problem(text: str) -> str | None:
    parts = text.split(":")
    if len(parts) not in (2, 3):
        return f"'{text}' is not a time (HOUR:MINUTE[:SECOND])"
    limits = [("hour", 0, 23), ("minute", 0, 59), ("second", 0, 59)]
    for part, (name, low, high) in zip(parts, limits, strict=False):
        error = _component_problem(part, name, low, high, fraction=name == "second")
        if error:
            return error
    return None
