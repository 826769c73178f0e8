"""OnCalendar schedules: the parser used without systemd agrees with `systemd-analyze calendar`."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from phoenix import oncalendar

# (expression, valid?): what systemd 252 (Debian 12) answers.
CASES = [
    ("daily", True),
    ("Daily", True),
    ("hourly", True),
    ("weekly", True),
    ("semiannually", True),
    ("*-*-* 02:15:00", True),
    ("*-*-* 02:15", True),
    ("Sun *-*-* 04:00:00", True),
    ("Mon *-*-* 03:00", True),
    ("Mon..Fri *-*-* 09:00", True),
    ("Mon-Fri 09:00", True),
    ("Sat,Sun 10:00", True),
    ("Mon", True),
    ("monday 03:00", True),
    ("*:0/15", True),
    ("*:00/15:00", True),
    ("02:15", True),
    ("2026-12-24 18:00", True),
    ("*-12-24", True),
    ("*-02~03", True),
    ("*-*-* 00/2:00", True),
    ("*-*-1,15 02:00", True),
    ("*-*-* 02:15:00 UTC", True),
    ("daily UTC", True),
    ("*-*-* 02:15:00 Europe/Paris", True),
    ("*-*-* 02:15:00.5", True),
    ("*-*-*", True),
    ("1-1", True),
    ("*:*:*", True),
    ("@1700000000", True),
    ("every night at 2", False),
    ("15 2 * * *", False),
    ("0 2 * * 0", False),
    ("*-*-* 25:00", False),
    ("*-13-01 00:00", False),
    ("*-*-32", False),
    ("*-*-* 02:60", False),
    ("Mon..Fry 03:00", False),
    ("Funday", False),
    ("nightly", False),
    ("*-*-* 2:15:00:00", False),
    ("2:15pm", False),
    ("*-*-* 02:15:00 Mars/Olympus", False),
    ("12..3:00", False),
    ("*-*-* 00:00/0", False),
    ("", False),
]
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.parametrize(("expression", "valid"), CASES, ids=[repr(case[0]) for case in CASES])
def test_the_parser_agrees_with_systemd_on_the_table(expression, valid):
    assert (oncalendar.parser_problem(expression) is None) == valid
    if SYSTEMD_ANALYZE:
        result = subprocess.run([SYSTEMD_ANALYZE, "calendar", "--", expression], capture_output=True, check=False)
        assert (result.returncode == 0) == valid


def test_a_refused_expression_says_what_is_wrong():
    assert oncalendar.parser_problem("*-*-* 25:00") == "'25': hour must be from 0 to 23"
    assert oncalendar.parser_problem("nightly") == "'nightly' is not a weekday or range of weekdays (Mon, Mon..Fri)"


def test_cron_syntax_gets_its_own_hint():
    assert oncalendar.hint("15 2 * * *").startswith("this looks like cron syntax; use systemd OnCalendar syntax")
    assert oncalendar.hint("every night at 2") == "use systemd OnCalendar syntax, e.g. '*-*-* 02:15:00' or 'daily'"


def test_without_systemd_analyze_the_parser_decides(monkeypatch):
    monkeypatch.setattr(oncalendar.shutil, "which", lambda name: None)

    assert oncalendar.problem("Mon..Fri 09:00") is None
    assert oncalendar.problem("15 2 * * *") == "'15' is not a date ([YEAR-]MONTH-DAY, each * or numbers)"
