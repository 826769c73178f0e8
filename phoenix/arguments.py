"""The argument parser every Phoenix command line uses, on the control machine and on the servers."""

from __future__ import annotations

import argparse


class StrictParser(argparse.ArgumentParser):
    """An argument parser that takes options by their whole name only: argparse would read a typo such as
    `--dump` or `--kee` as the option it begins (`phoenix-vault retain --keep 1` as --keep-within-hours 1).
    Its subcommands' parsers are StrictParsers too."""

    def __init__(self, *arguments, **options):
        super().__init__(*arguments, allow_abbrev=False, **options)
