"""pyinfra's --limit with the inventory's short host names (`--limit web1`), and no silent no-op.

pyinfra names a sandbox host `@sandbox/phx-sandbox-web1`, so `--limit web1` matched no host and
pyinfra ran nothing and exited 0. pyinfra matches --limit against group names too, so each host
gets a group named after its short name; a --limit that matches no host is refused.
"""

from __future__ import annotations

import ast
from fnmatch import fnmatch
from pathlib import Path

from phoenix.errors import PhoenixError


def short_name_groups(connection_names: dict[str, str], taken: set[str]) -> dict[str, list[str]]:
    """Given {short name: pyinfra host name}, returns a pyinfra group per short name.

    Names in `taken` (the inventory file's own variables, pyinfra's "all") keep their meaning.
    """
    return {name: [connection] for name, connection in connection_names.items() if name not in taken | {"all"}}


def limit_patterns(argv: list[str]) -> list[str]:
    """Given pyinfra's command line, returns the values of its --limit options."""
    patterns = []
    arguments = iter(argv[1:])
    for argument in arguments:
        if argument == "--":
            break
        if argument == "--limit":
            patterns.append(next(arguments, ""))
        elif argument.startswith("--limit="):
            patterns.append(argument.removeprefix("--limit="))
    return patterns


def file_groups(inventory_file: str) -> set[str]:
    """Returns the group names pyinfra makes of an inventory file: its stem and its top-level variables."""
    path = Path(inventory_file)
    if path.suffix != ".py":
        return {path.stem, "all"}
    tree = ast.parse(path.read_text(), filename=str(path))
    names = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name) and not target.id.startswith("_")
    }
    return names | {path.stem, "all"}


def unmatched_limit_errors(
    patterns: list[str], connection_names: dict[str, str], groups: set[str], inventory_file: str
) -> list[str]:
    """Returns one message per --limit pattern that matches no host as pyinfra matches it.

    pyinfra takes a pattern as a group name when such a group exists, else as a glob on host names.
    """
    other_groups = ", ".join(sorted(groups - connection_names.keys()))
    expected = f"a host's short name ({', '.join(connection_names)}), a group ({other_groups})"
    renamed = [connection for name, connection in connection_names.items() if connection != name]
    if renamed:
        expected += f" or a pyinfra host name ({', '.join(renamed)})"
    return [
        f"--limit {pattern!r} matches no host of {inventory_file}: expected {expected}"
        for pattern in patterns
        if pattern not in groups and not any(fnmatch(name, pattern) for name in connection_names.values())
    ]


def check_limit(argv: list[str], inventory_file: str, connection_names: dict[str, str]) -> dict[str, list[str]]:
    """Returns the short-name groups for an inventory file; raises PhoenixError when a --limit matches no host."""
    taken = file_groups(inventory_file)
    groups = short_name_groups(connection_names, taken)
    connectors = {name.split("/")[0] for name in connection_names.values() if name.startswith("@")}  # pyinfra's too
    known = taken | groups.keys() | connectors
    errors = unmatched_limit_errors(limit_patterns(argv), connection_names, known, inventory_file)
    if errors:
        raise PhoenixError("\n".join(errors))
    return groups
