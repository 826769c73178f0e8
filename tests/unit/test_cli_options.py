"""The `phoenix` command's options: whole names only, so a typo is an error, not another option."""

from __future__ import annotations

import pytest

from phoenix import cli
from phoenix.remote import backup_job, vault


@pytest.mark.parametrize(
    "argv,typo",
    [
        (["drill", "inventories/prod.py", "--dump"], "--dump"),
        (["drill", "inventories/prod.py", "--kee"], "--kee"),
        (["status", "inventories/prod.py", "--js"], "--js"),
        (["sandbox", "up", "dev", "--hosts", "web1", "--inv", "inventories/dev.yml"], "--inv"),
        (["sandbox", "up", "dev", "--host", "web1"], "--host"),  # --hosts is the option
    ],
)
def test_a_shortened_or_mistyped_option_is_refused_naming_it(argv, typo, capsys):
    with pytest.raises(SystemExit) as exit_status:
        cli.parser().parse_args(argv)

    assert exit_status.value.code == 2
    assert f"unrecognized arguments: {typo}" in capsys.readouterr().err


def test_whole_option_names_are_taken():
    arguments = cli.parser().parse_args(["drill", "inventories/prod.py", "--dumps", "--keep"])

    assert arguments.dumps and arguments.keep and arguments.inventory == "inventories/prod.py"


@pytest.mark.parametrize(
    "program,argv,typo",
    [
        # would have been read as --keep-within-hours 1: a retention that keeps one hour of runs
        (vault, ["retain", "--keep", "1"], "--keep"),
        (vault, ["check", "--ne"], "--ne"),
        (backup_job, ["restore-db", "db", "--run", "r1", "--forc"], "--forc"),
        (backup_job, ["run", "db", "--trig", "manual"], "--trig"),
    ],
)
def test_the_server_programs_refuse_a_shortened_option_naming_it(program, argv, typo, capsys):
    with pytest.raises(SystemExit) as exit_status:
        program.parser().parse_args(argv)

    assert exit_status.value.code == 2
    assert f"unrecognized arguments: {typo}" in capsys.readouterr().err
