"""The `phoenix` command's options: whole names only, so a typo is an error, not another option."""

from __future__ import annotations

import pytest

from phoenix import cli


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
