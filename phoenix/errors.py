"""The one exception type Phoenix tooling raises for problems a user can fix, and the one way a run stops on one."""

from __future__ import annotations

import sys
from typing import NoReturn

REFUSED_EXIT_CODE = 2  # documented: a refused run exits 2 (docs/flags.md, docs/recovery.md)


class PhoenixError(Exception):
    """A problem with the user's input or machine, with a message that says what and where."""


def refuse(message: str) -> NoReturn:
    """Prints `message` to stderr as it is and stops the run with exit code 2, no traceback.

    Used by deploy files, roles and inventories while pyinfra loads them, before any host is changed.
    Not pyinfra's DeployError: pyinfra 3.10 prints that as `--> pyinfra error in FILE line N: MESSAGE`
    (naming a line of Phoenix's code rather than the user's input) and exits 1, where Phoenix documents 2.
    """
    print(message, file=sys.stderr, flush=True)
    raise SystemExit(REFUSED_EXIT_CODE)
